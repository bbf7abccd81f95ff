//! `ProtoError`: why bytes from the network are not a valid frame or record.

use std::fmt;

/// Why a frame or a record could not be decoded (or a frame not encoded).
///
/// Every decode in [`proto`](super) returns one of these instead of panicking, and none
/// allocates more than the bytes it was given. After any of them the stream is out of
/// step: the session drops the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtoError {
    /// A field needs `needed` bytes and only `remaining` are left in the record.
    Truncated { needed: usize, remaining: usize },
    /// A frame of `len` bytes is over the limit of `max`.
    TooLong { len: usize, max: usize },
    /// A frame length, or a buffer, string or vector length under -1 (-1 is null).
    NegativeLength(i32),
    /// A `ustring` is neither UTF-8 nor the Java writer's form of it (see
    /// [`Reader::read_ustring`](super::codec::Reader::read_ustring)).
    BadUtf8,
    /// `count` bytes are left after a record that must end its frame.
    TrailingBytes(usize),
    /// A field whose value decides how the rest is read holds none of the known values.
    UnknownValue { field: &'static str, value: i32 },
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, remaining } => write!(
                f,
                "truncated ZooKeeper record: a field needs {needed} bytes, {remaining} are left"
            ),
            Self::TooLong { len, max } => {
                write!(
                    f,
                    "ZooKeeper frame of {len} bytes is over the limit of {max}"
                )
            }
            Self::NegativeLength(len) => write!(f, "negative length {len} in a ZooKeeper frame"),
            Self::BadUtf8 => f.write_str("ZooKeeper string is not UTF-8"),
            Self::TrailingBytes(count) => {
                write!(f, "{count} unexpected bytes after a ZooKeeper record")
            }
            Self::UnknownValue { field, value } => {
                write!(f, "unknown ZooKeeper {field} {value}")
            }
        }
    }
}

impl std::error::Error for ProtoError {}
