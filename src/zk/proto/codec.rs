//! Jute's binary encoding: big-endian primitives, length-prefixed bytes and strings,
//! counted vectors. [`Reader`] is bounded by the slice it reads; [`Writer`] appends.

use super::error::ProtoError;

/// A record that can be written (requests; replies too, for fake servers in tests).
pub(crate) trait Encode {
    /// Appends this record's fields, in jute order.
    fn encode(&self, w: &mut Writer);
}

/// A record that can be read (replies; requests too, for fake servers in tests).
pub(crate) trait Decode: Sized {
    /// Reads this record's fields, in jute order, leaving what follows.
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError>;
}

/// A reply with no body (delete, ping, auth, setWatches, closeSession): zero bytes.
impl Decode for () {
    fn decode(_: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(())
    }
}

/// A request with no body (ping, closeSession): zero bytes.
impl Encode for () {
    fn encode(&self, _: &mut Writer) {}
}

/// Decodes one `T` that must fill `bytes` exactly.
pub(crate) fn decode_exact<T: Decode>(bytes: &[u8]) -> Result<T, ProtoError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Reads jute fields from a slice. Every read checks what is left first, so a length or
/// count a peer claims is never allocated before its bytes are there.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// `Ok` if everything was read: a record that ends a frame must end it exactly.
    pub(crate) fn finish(&self) -> Result<(), ProtoError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }

    fn truncated(&self, needed: usize) -> ProtoError {
        ProtoError::Truncated {
            needed,
            remaining: self.bytes.len(),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated(N))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.bytes.len() {
            return Err(self.truncated(n));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// jute `int`: 4 bytes, big-endian.
    pub(crate) fn read_int(&mut self) -> Result<i32, ProtoError> {
        self.array().map(i32::from_be_bytes)
    }

    /// jute `long`: 8 bytes, big-endian.
    pub(crate) fn read_long(&mut self) -> Result<i64, ProtoError> {
        self.array().map(i64::from_be_bytes)
    }

    /// jute `boolean`: one byte; any byte but 0 is true, as Java's `readBoolean` has it.
    pub(crate) fn read_bool(&mut self) -> Result<bool, ProtoError> {
        self.array::<1>().map(|[b]| b != 0)
    }

    /// The int32 length of a buffer, string or vector: `None` for -1 (null).
    fn read_len(&mut self) -> Result<Option<usize>, ProtoError> {
        match self.read_int()? {
            -1 => Ok(None),
            // Non-negative: the conversion cannot fail.
            len if len >= 0 => Ok(Some(len.unsigned_abs() as usize)),
            len => Err(ProtoError::NegativeLength(len)),
        }
    }

    /// jute `buffer`: int32 length (-1 = null) and that many bytes, borrowed.
    pub(crate) fn read_buffer(&mut self) -> Result<Option<&'a [u8]>, ProtoError> {
        match self.read_len()? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }

    /// jute `ustring`: int32 length (-1 = null) and that many bytes of text.
    ///
    /// ZooKeeper's Java writer encodes each UTF-16 unit on its own, so a character
    /// outside the Basic Multilingual Plane arrives as two 3-byte surrogates (CESU-8)
    /// instead of UTF-8's 4 bytes. Paths cannot hold one (the server refuses them), but
    /// an ACL's id or an auth scheme can. Both forms are read; any other invalid
    /// sequence, or a lone surrogate, is [`ProtoError::BadUtf8`].
    pub(crate) fn read_ustring(&mut self) -> Result<Option<String>, ProtoError> {
        match self.read_buffer()? {
            None => Ok(None),
            Some(bytes) => decode_text(bytes).map(Some),
        }
    }

    /// A `buffer` where null and empty mean the same (node data, passwords).
    pub(crate) fn read_bytes(&mut self) -> Result<Vec<u8>, ProtoError> {
        Ok(self.read_buffer()?.unwrap_or_default().to_vec())
    }

    /// A `ustring` where null and empty mean the same (paths, schemes).
    pub(crate) fn read_str(&mut self) -> Result<String, ProtoError> {
        Ok(self.read_ustring()?.unwrap_or_default())
    }

    /// jute `vector<T>`: int32 count (-1 = null) and that many items, each read by
    /// `item` and taking at least `min_item` bytes (at least 1). A count that cannot fit
    /// in what is left is refused before anything is allocated.
    pub(crate) fn read_vec<T>(
        &mut self,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, ProtoError>,
    ) -> Result<Option<Vec<T>>, ProtoError> {
        let Some(count) = self.read_len()? else {
            return Ok(None);
        };
        let min_item = min_item.max(1);
        if count > self.bytes.len() / min_item {
            return Err(self.truncated(count.saturating_mul(min_item)));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(Some(items))
    }

    /// A `vector<ustring>`, null read as empty.
    pub(crate) fn read_strings(&mut self) -> Result<Vec<String>, ProtoError> {
        let strings = self.read_vec(4, Self::read_str)?;
        Ok(strings.unwrap_or_default())
    }
}

/// UTF-8, or the Java writer's CESU-8 for characters past U+FFFF.
fn decode_text(bytes: &[u8]) -> Result<String, ProtoError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                return Ok(out);
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).map_err(|_| ProtoError::BadUtf8)?);
                let (pair, after) = bad.split_first_chunk::<6>().ok_or(ProtoError::BadUtf8)?;
                out.push(surrogate_pair(pair).ok_or(ProtoError::BadUtf8)?);
                rest = after;
            }
        }
    }
}

/// The character a high and a low surrogate, each as 3 bytes, stand for.
fn surrogate_pair(b: &[u8; 6]) -> Option<char> {
    let unit = |lead: u8, mid: u8, last: u8, range: std::ops::RangeInclusive<u8>| {
        let ok = lead == 0xED && range.contains(&mid) && (0x80..=0xBF).contains(&last);
        ok.then(|| (u32::from(mid & 0x3F) << 6) | u32::from(last & 0x3F))
    };
    // ED A0..AF xx is D800..DBFF (high), ED B0..BF xx is DC00..DFFF (low); the 10 bits
    // a surrogate adds are the low 4 of the middle byte and the low 6 of the last.
    let high = unit(b[0], b[1], b[2], 0xA0..=0xAF)? & 0x3FF;
    let low = unit(b[3], b[4], b[5], 0xB0..=0xBF)? & 0x3FF;
    char::from_u32(0x10000 + (high << 10) + low)
}

/// Appends jute fields to a byte vector.
///
/// A length that does not fit an int32 is written as `i32::MAX`: such a field cannot
/// be in a frame under the limit (at most `i32::MAX`), so
/// [`encode_frame`](super::frame::encode_frame) refuses the frame it would be part of.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub(crate) fn write_int(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn write_long(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    fn write_len(&mut self, len: usize) {
        self.write_int(i32::try_from(len).unwrap_or(i32::MAX));
    }

    /// -1: a null buffer, string or vector.
    pub(crate) fn write_null(&mut self) {
        self.write_int(-1);
    }

    pub(crate) fn write_buffer(&mut self, bytes: &[u8]) {
        self.write_len(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// Real UTF-8, which ZooKeeper's Java reader decodes for every character.
    pub(crate) fn write_ustring(&mut self, text: &str) {
        self.write_buffer(text.as_bytes());
    }

    pub(crate) fn write_vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.write_len(items.len());
        for it in items {
            item(self, it);
        }
    }

    /// A `vector<ustring>`.
    pub(crate) fn write_strings(&mut self, strings: &[String]) {
        self.write_vec(strings, |w, s| w.write_ustring(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_big_endian() {
        let mut w = Writer::new();
        w.write_int(0x0102_0304);
        w.write_long(-2);
        w.write_bool(true);
        w.write_bool(false);
        let bytes = w.into_bytes();
        assert_eq!(
            bytes,
            [
                1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 1, 0
            ]
        );
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_int(), Ok(0x0102_0304));
        assert_eq!(r.read_long(), Ok(-2));
        assert_eq!(r.read_bool(), Ok(true));
        assert_eq!(r.read_bool(), Ok(false));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(
            r.read_int(),
            Err(ProtoError::Truncated {
                needed: 4,
                remaining: 0
            })
        );
        // Java's readBoolean: any non-zero byte is true.
        assert_eq!(Reader::new(&[7]).read_bool(), Ok(true));
    }

    #[test]
    fn buffers_and_strings_carry_a_length_and_minus_one_is_null() {
        let mut w = Writer::new();
        w.write_buffer(b"ab");
        w.write_ustring("");
        w.write_null();
        w.write_ustring("/é");
        let bytes = w.into_bytes();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 3, b'/', 0xC3,
                0xA9
            ]
        );
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_buffer(), Ok(Some(&b"ab"[..])));
        assert_eq!(r.read_ustring(), Ok(Some(String::new())));
        assert_eq!(r.read_ustring(), Ok(None));
        assert_eq!(r.read_ustring(), Ok(Some("/é".to_owned())));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn lengths_are_checked_before_anything_is_taken() {
        // Claims 2 GiB with 3 bytes present.
        let mut r = Reader::new(&[0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(
            r.read_buffer(),
            Err(ProtoError::Truncated {
                needed: i32::MAX as usize,
                remaining: 3
            })
        );
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFE]).read_ustring(),
            Err(ProtoError::NegativeLength(-2))
        );
        assert_eq!(
            Reader::new(&[0x80, 0, 0, 0]).read_strings(),
            Err(ProtoError::NegativeLength(i32::MIN))
        );
        // A vector of a billion strings in 8 bytes: refused by the count alone.
        let mut r = Reader::new(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            r.read_strings(),
            Err(ProtoError::Truncated { remaining: 8, .. })
        ));
    }

    #[test]
    fn vectors_count_items_and_minus_one_is_null() {
        let mut w = Writer::new();
        w.write_strings(&["a".to_owned(), String::new()]);
        w.write_null();
        let bytes = w.into_bytes();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF
            ]
        );
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_strings(), Ok(vec!["a".to_owned(), String::new()]));
        assert_eq!(r.read_vec(4, Reader::read_int), Ok(None));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn text_is_utf8_or_the_java_writers_surrogate_pairs() {
        let read = |bytes: &[u8]| {
            let mut w = Writer::new();
            w.write_buffer(bytes);
            Reader::new(&w.into_bytes()).read_ustring()
        };
        // U+1F600 as UTF-8, and as Java's writer sends it: D83D DE00, 3 bytes each.
        let emoji = "/a\u{1F600}b";
        assert_eq!(read(emoji.as_bytes()), Ok(Some(emoji.to_owned())));
        let java = [b'/', b'a', 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80, b'b'];
        assert_eq!(read(&java), Ok(Some(emoji.to_owned())));
        // A lone high surrogate, a low one first, a stray byte, a cut sequence.
        for bad in [
            &[0xED, 0xA0, 0xBD, b'x'][..],
            &[0xED, 0xB8, 0x80, 0xED, 0xA0, 0xBD],
            &[b'a', 0xFF],
            &[0xC3],
        ] {
            assert_eq!(read(bad), Err(ProtoError::BadUtf8), "{bad:x?}");
        }
    }

    #[test]
    fn decode_exact_refuses_trailing_bytes() {
        assert_eq!(decode_exact::<()>(&[]), Ok(()));
        assert_eq!(decode_exact::<()>(&[0]), Err(ProtoError::TrailingBytes(1)));
    }
}
