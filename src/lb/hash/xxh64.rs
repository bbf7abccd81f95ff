//! XXH64, written from its specification: the hash of every key and of every point of
//! the tables.
//!
//! # Algorithm
//! Yann Collet's XXH64 as the xxHash specification (`doc/xxhash_spec.md` of the xxHash
//! repository, version 0.1.1) defines it: inputs of 32 bytes or more are consumed in
//! 32-byte stripes by four accumulators, which are then merged; the rest is consumed
//! in 8-byte, then 4-byte, then 1-byte lanes; a final avalanche mixes every bit. All
//! reads are little-endian, so the value is the same on every platform.

/// The five 64-bit primes of the specification.
const PRIME_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME_5: u64 = 0x27D4_EB2F_1656_67C5;

/// The little-endian u64 at the start of `bytes` (at least 8 long).
#[inline(always)]
fn u64_at(bytes: &[u8]) -> u64 {
    let mut lane = [0; 8];
    lane.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(lane)
}

/// The little-endian u32 at the start of `bytes` (at least 4 long), widened.
#[inline(always)]
fn u32_at(bytes: &[u8]) -> u64 {
    let mut lane = [0; 4];
    lane.copy_from_slice(&bytes[..4]);
    u64::from(u32::from_le_bytes(lane))
}

/// One accumulator's step over one 8-byte lane.
#[inline(always)]
fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(PRIME_2))
        .rotate_left(31)
        .wrapping_mul(PRIME_1)
}

/// Folds accumulator `value` into the converged `acc`.
#[inline(always)]
fn merge(acc: u64, value: u64) -> u64 {
    (acc ^ round(0, value))
        .wrapping_mul(PRIME_1)
        .wrapping_add(PRIME_4)
}

/// XXH64 of `input` with `seed`.
pub(crate) fn xxh64(input: &[u8], seed: u64) -> u64 {
    let mut rest = input;
    let mut acc = if input.len() >= 32 {
        let mut v = [
            seed.wrapping_add(PRIME_1).wrapping_add(PRIME_2),
            seed.wrapping_add(PRIME_2),
            seed,
            seed.wrapping_sub(PRIME_1),
        ];
        while rest.len() >= 32 {
            for (k, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, u64_at(&rest[8 * k..]));
            }
            rest = &rest[32..];
        }
        let converged = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        v.iter().fold(converged, |acc, &value| merge(acc, value))
    } else {
        seed.wrapping_add(PRIME_5)
    };
    acc = acc.wrapping_add(input.len() as u64);
    while rest.len() >= 8 {
        acc = (acc ^ round(0, u64_at(rest)))
            .rotate_left(27)
            .wrapping_mul(PRIME_1)
            .wrapping_add(PRIME_4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        acc = (acc ^ u32_at(rest).wrapping_mul(PRIME_1))
            .rotate_left(23)
            .wrapping_mul(PRIME_2)
            .wrapping_add(PRIME_3);
        rest = &rest[4..];
    }
    for &byte in rest {
        acc = (acc ^ u64::from(byte).wrapping_mul(PRIME_5))
            .rotate_left(11)
            .wrapping_mul(PRIME_1);
    }
    acc ^= acc >> 33;
    acc = acc.wrapping_mul(PRIME_2);
    acc ^= acc >> 29;
    acc = acc.wrapping_mul(PRIME_3);
    acc ^ (acc >> 32)
}

#[cfg(test)]
mod tests {
    use super::xxh64;

    /// The xxHash sanity check's input: byte i is the top byte of
    /// `2654435761 * 11400714785074694797^i` (mod 2^64).
    fn sanity_buffer(len: usize) -> Vec<u8> {
        let mut generator: u64 = 2_654_435_761;
        (0..len)
            .map(|_| {
                let byte = (generator >> 56) as u8;
                generator = generator.wrapping_mul(11_400_714_785_074_694_797);
                byte
            })
            .collect()
    }

    /// The XXH64 vectors of xxHash's own sanity check (`cli/xsum_sanity_check.c` of
    /// Cyan4973/xxHash, `XSUM_XXH64_testdata`): lengths 0, 1, 4, 14 and 222 of the
    /// generated buffer, seeds 0 and 2654435761. 222 bytes take every path: six
    /// stripes, three 8-byte lanes, one 4-byte lane, two single bytes.
    #[test]
    fn xxhash_sanity_check_vectors() {
        let buffer = sanity_buffer(222);
        let seed = 2_654_435_761;
        for (len, seed, want) in [
            (0, 0, 0xEF46_DB37_51D8_E999),
            (0, seed, 0xAC75_FDA2_929B_17EF),
            (1, 0, 0xE934_A84A_DB05_2768),
            (1, seed, 0x5014_6076_43A9_B4C3),
            (4, 0, 0x9136_A0DC_A574_57EE),
            (14, 0, 0x8282_DCC4_994E_35C8),
            (14, seed, 0xC3BD_6BF6_3DEB_6DF0),
            (222, 0, 0xB641_AE8C_B691_C174),
            (222, seed, 0x20CB_8AB7_AE10_C14A),
        ] {
            assert_eq!(
                xxh64(&buffer[..len], seed),
                want,
                "{len} bytes, seed {seed}"
            );
        }
    }

    /// Text vectors with seed 0. From the tests of the Go implementation
    /// cespare/xxhash (`xxhash_test.go`, `TestSum`): "", "a", "as", "asd", "asdf"
    /// and a 63-byte sentence ("exercises all code paths"). The 14-, 26-, 62- and
    /// 80-byte ones ("message digest", the alphabet, the alphanumerics, "1234567890"
    /// eight times) are the usual digest test strings, with the values python-xxhash
    /// gives, as a public test file records them.
    #[test]
    fn text_vectors() {
        let digits = "1234567890".repeat(8);
        for (input, want) in [
            ("", 0xEF46_DB37_51D8_E999),
            ("a", 0xD24E_C4F1_A98C_6E5B),
            ("as", 0x1C33_0FB2_D66B_E179),
            ("asd", 0x631C_37CE_72A9_7393),
            ("asdf", 0x4158_72F5_99CE_A71E),
            (
                "Call me Ishmael. Some years ago--never mind how long precisely-",
                0x02A2_E854_70D6_FD96,
            ),
            ("abc", 0x44BC_2CF5_AD77_0999),
            ("message digest", 0x066E_D728_FCEE_B3BE),
            ("abcdefghijklmnopqrstuvwxyz", 0xCFE1_F278_FA89_835C),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                0xAAA4_6907_D304_7814,
            ),
            (&digits, 0xE04A_477F_19EE_145D),
        ] {
            assert_eq!(xxh64(input.as_bytes(), 0), want, "{input:?}");
        }
    }

    /// Lengths on each side of the lane and stripe sizes (7, 8, 15, 16, 31, 32, 33,
    /// 63, 64, 65, 255, 256, 1000) over the bytes `i % 251`, seed 0, with the values
    /// the reference library gives, as a public test file records them.
    #[test]
    fn boundary_lengths() {
        let bytes: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
        for (len, want) in [
            (3, 0xE5C7_BB45_33BC_65DD),
            (4, 0xFFCE_D860_4453_CC1E),
            (7, 0x14CC_643F_630C_72D2),
            (8, 0x884A_1736_14B8_1B8D),
            (15, 0xA948_F5F0_F6AB_AC2D),
            (16, 0x44B6_EF2F_B841_69F7),
            (31, 0xC346_D2B5_9B4D_8EE1),
            (32, 0xCBF5_9C51_16FF_32B4),
            (33, 0x0C53_5D1A_CAFB_8EAD),
            (63, 0xE26A_A9E2_A95F_8E4F),
            (64, 0xF7C6_7301_DB67_13F0),
            (65, 0xC31E_B63B_2AE4_465B),
            (255, 0x566D_96B8_32B9_67C1),
            (256, 0xF339_4434_3EE8_5824),
            (1000, 0xF306_F04A_A88B_54D3),
        ] {
            assert_eq!(xxh64(&bytes[..len], 0), want, "{len} bytes");
        }
    }
}
