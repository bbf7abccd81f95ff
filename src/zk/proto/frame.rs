//! Frames: every packet, both ways, is an int32 byte count and that many bytes.
//!
//! [`FrameDecoder`] takes bytes as the socket gives them and hands out whole frames; it
//! never reserves room for a length the peer claims, only for bytes that arrived, and
//! refuses a length over its limit at once. [`encode_frame`] writes records as one
//! frame.

use super::codec::{Encode, Writer};
use super::error::ProtoError;

/// The default frame limit: 4 MiB. ZooKeeper's own `jute.maxbuffer` is 1 MiB less one
/// byte by default, so a server that keeps its default never sends a larger packet;
/// the margin is for servers configured above it.
pub(crate) const DEFAULT_MAX_FRAME: usize = 4 << 20;

/// No limit can be over what the int32 prefix can say.
const LARGEST_LIMIT: usize = i32::MAX as usize;

/// Capacity kept between frames; a decoder that held one large frame gives the rest
/// back once it is empty.
const KEEP_CAPACITY: usize = 64 << 10;

/// Writes `records` one after another as the body of one frame, behind its length.
/// A body over `max` (at most `i32::MAX`) is [`ProtoError::TooLong`]: ZooKeeper would
/// close the connection without a reply.
pub(crate) fn encode_frame(records: &[&dyn Encode], max: usize) -> Result<Vec<u8>, ProtoError> {
    let max = max.min(LARGEST_LIMIT);
    let mut w = Writer::new();
    w.write_int(0);
    for record in records {
        record.encode(&mut w);
    }
    let len = w.len() - 4;
    // Under `max`, so under i32::MAX: the conversion cannot fail.
    let prefix = match i32::try_from(len) {
        Ok(prefix) if len <= max => prefix,
        _ => return Err(ProtoError::TooLong { len, max }),
    };
    w.as_mut_bytes()[..4].copy_from_slice(&prefix.to_be_bytes());
    Ok(w.into_bytes())
}

/// Splits a byte stream into frames, incrementally.
///
/// [`push`](Self::push) what the socket read, then call [`next_frame`](Self::next_frame)
/// until it answers `Ok(None)` (more bytes needed). A length over the limit or under
/// zero is an error, and the decoder keeps answering it: the stream cannot be trusted
/// past it.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    /// Where the bytes not yet handed out begin in `buf`.
    start: usize,
    failed: Option<ProtoError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [default limit](DEFAULT_MAX_FRAME).
    pub(crate) fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_FRAME)
    }

    /// A decoder refusing frames over `max` bytes (at most `i32::MAX`), length prefix
    /// not counted.
    pub(crate) fn with_limit(max: usize) -> Self {
        Self {
            max: max.min(LARGEST_LIMIT),
            buf: Vec::new(),
            start: 0,
            failed: None,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.max
    }

    /// Bytes pushed and not yet handed out in a frame.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends bytes as they arrive.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Most of the buffer was handed out: move the rest to the front.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame's body, `Ok(None)` if its bytes have not all arrived.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>, ProtoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let pending = &self.buf[self.start..];
        let Some((prefix, rest)) = pending.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let claimed = i32::from_be_bytes(*prefix);
        let len = match usize::try_from(claimed) {
            Ok(len) if len <= self.max => len,
            Ok(len) => return Err(self.fail(ProtoError::TooLong { len, max: self.max })),
            Err(_) => return Err(self.fail(ProtoError::NegativeLength(claimed))),
        };
        let Some(body) = rest.get(..len) else {
            return Ok(None);
        };
        let frame = body.to_vec();
        self.start += 4 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.buf.shrink_to(KEEP_CAPACITY);
            self.start = 0;
        }
        Ok(Some(frame))
    }

    fn fail(&mut self, err: ProtoError) -> ProtoError {
        self.failed = Some(err.clone());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Raw(&'static [u8]);
    impl Encode for Raw {
        fn encode(&self, w: &mut Writer) {
            for &b in self.0 {
                w.write_bool(b != 0);
            }
        }
    }

    fn frames(decoder: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(frame) = decoder.next_frame().unwrap() {
            out.push(frame);
        }
        out
    }

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_split() {
        let stream = [0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        for split in 0..=stream.len() {
            let mut d = FrameDecoder::new();
            d.push(&stream[..split]);
            let mut got = frames(&mut d);
            d.push(&stream[split..]);
            got.extend(frames(&mut d));
            assert_eq!(got, [vec![7, 8], vec![], vec![9]], "split at {split}");
            assert_eq!(d.buffered(), 0);
        }
        // One byte at a time.
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for b in stream {
            d.push(&[b]);
            got.extend(frames(&mut d));
        }
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_huge_claim_is_refused_at_once_and_nothing_is_reserved_for_it() {
        let mut d = FrameDecoder::with_limit(1024);
        d.push(&[0, 0, 4, 0]);
        d.push(&[1; 100]);
        assert_eq!(d.next_frame(), Ok(None), "exactly the limit is allowed");
        assert!(d.buf.capacity() < 1024);
        let mut d = FrameDecoder::with_limit(1024);
        d.push(&[0, 0, 4, 1, 1]);
        let err = ProtoError::TooLong {
            len: 1025,
            max: 1024,
        };
        assert_eq!(d.next_frame(), Err(err.clone()));
        assert_eq!(d.next_frame(), Err(err), "the decoder stays failed");
        let mut d = FrameDecoder::new();
        d.push(&[0x7F, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            d.next_frame(),
            Err(ProtoError::TooLong {
                len: i32::MAX as usize,
                max: DEFAULT_MAX_FRAME
            })
        );
    }

    #[test]
    fn a_negative_length_is_refused() {
        let mut d = FrameDecoder::new();
        d.push(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(d.next_frame(), Err(ProtoError::NegativeLength(-1)));
    }

    #[test]
    fn the_buffer_gives_back_a_large_frames_room() {
        let mut d = FrameDecoder::new();
        let mut stream = (1u32 << 20).to_be_bytes().to_vec();
        stream.resize(4 + (1 << 20), 5);
        d.push(&stream);
        assert_eq!(d.next_frame().unwrap().map(|f| f.len()), Some(1 << 20));
        assert!(d.buf.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn encode_frame_writes_the_length_and_refuses_over_the_limit() {
        let frame = encode_frame(&[&Raw(&[1, 0]), &Raw(&[1])], 3).unwrap();
        assert_eq!(frame, [0, 0, 0, 3, 1, 0, 1]);
        assert_eq!(
            encode_frame(&[&Raw(&[1, 1, 1, 1])], 3),
            Err(ProtoError::TooLong { len: 4, max: 3 })
        );
        let mut d = FrameDecoder::new();
        d.push(&frame);
        assert_eq!(d.next_frame(), Ok(Some(vec![1, 0, 1])));
    }
}
