//! Raw pieces of etcd's JSON gateway for the harness and for tests that look at etcd
//! without waypost's client: standard base64, a prefix's `range_end`, reading a field
//! out of a reply, and a watch stream read line by line over a plain `TcpStream`.
//!
//! The test binaries are also built without serde_json (no-default-features), so the
//! JSON here is read by [`json_field`], which is enough for the flat fields of etcd's
//! replies and is no parser.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as etcd's gateway wants keys and values.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of standard base64 text (padding optional); `None` if it is not base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The `range_end` that makes a range or watch cover every key starting with `prefix`:
/// the prefix with its last byte below 0xff raised by one (trailing 0xff bytes
/// dropped); `[0]` (every key) for an empty or all-0xff prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The body of `POST /v3/watch` for every key under `prefix`, from now on.
pub fn watch_body(prefix: &str) -> String {
    format!(
        r#"{{"create_request":{{"key":"{}","range_end":"{}"}}}}"#,
        b64(prefix),
        b64(prefix_end(prefix.as_bytes()))
    )
}

/// Every value of `"key":` in `json`, in order, as text: a string's contents (escapes
/// left as they are) or a bare number, `true`, `false` or `null`. Nested objects and
/// arrays are not values here; their own fields are found by their keys.
pub fn json_fields(json: &str, key: &str) -> Vec<String> {
    let needle = format!("\"{key}\":");
    json.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = json[at + needle.len()..].trim_start();
            if let Some(string) = rest.strip_prefix('"') {
                let mut escaped = false;
                let end = string.find(|c| {
                    let end = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })?;
                Some(string[..end].to_owned())
            } else {
                let end = rest
                    .find(|c: char| matches!(c, ',' | '}' | ']') || c.is_whitespace())
                    .unwrap_or(rest.len());
                let value = &rest[..end];
                (!value.is_empty() && !value.starts_with(['{', '['])).then(|| value.to_owned())
            }
        })
        .collect()
}

/// The first value of `"key":` in `json` (see [`json_fields`]).
pub fn json_field(json: &str, key: &str) -> Option<String> {
    json_fields(json, key).into_iter().next()
}

/// A watch (or any streaming POST) on etcd's gateway read over a plain `TcpStream`:
/// the status and headers, then one JSON object at a time.
pub struct RawWatch {
    reader: BufReader<TcpStream>,
    status: u16,
    /// Bytes of the body not yet returned as a message.
    pending: Vec<u8>,
    /// A chunk-size line read in part before a timeout.
    size_line: Vec<u8>,
    /// The last chunk (size 0) came: the server ended the body.
    ended: bool,
}

impl RawWatch {
    /// Sends `POST path` with `body` and `headers` to `addr` and reads the reply's
    /// head (within `bound`). Messages come from [`next`](Self::next).
    pub fn open(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        bound: Duration,
    ) -> io::Result<RawWatch> {
        let stream = TcpStream::connect_timeout(&addr, bound)?;
        stream.set_read_timeout(Some(bound))?;
        stream.set_write_timeout(Some(bound))?;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request += &format!("{name}: {value}\r\n");
        }
        request += "\r\n";
        request += body;
        (&stream).write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("status {line:?}"))
            })?;
        let mut chunked = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            chunked |= header == "transfer-encoding: chunked";
        }
        if !chunked {
            let why = "the stream is not chunked (no streaming reply)";
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        Ok(RawWatch {
            reader,
            status,
            pending: Vec::new(),
            size_line: Vec::new(),
            ended: false,
        })
    }

    /// The reply's HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The next message, waiting at most `bound`: one line of the body, or the last
    /// bytes before the body's end (etcd's closing `{"error":…}` has no newline).
    /// `Ok(None)` once the server ended the body cleanly; `Err` of kind
    /// `UnexpectedEof` when the connection was cut without that end, `WouldBlock` or
    /// `TimedOut` when nothing came within `bound`.
    pub fn next(&mut self, bound: Duration) -> io::Result<Option<String>> {
        self.reader.get_ref().set_read_timeout(Some(bound))?;
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line).trim().to_owned();
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.ended {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.pending);
                return Ok(Some(String::from_utf8_lossy(&rest).trim().to_owned()));
            }
            self.read_chunk()?;
        }
    }

    /// Appends one chunk of the body to `pending`; sets `ended` at the last chunk.
    fn read_chunk(&mut self) -> io::Result<()> {
        // Bytes read before a timeout stay in `size_line` for the next call.
        self.reader.read_until(b'\n', &mut self.size_line)?;
        if self.size_line.last() != Some(&b'\n') {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.size_line)).into_owned();
        let hex = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(hex, 16).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidData, format!("chunk size {line:?}"))
        })?;
        // The data and its CRLF come in the same write as the size line.
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk)?;
        chunk.truncate(size);
        self.pending.extend_from_slice(&chunk);
        self.ended = size == 0;
        Ok(())
    }

    /// Reads messages until one contains `needle`, within `bound` each; panics with
    /// what came when the stream ends or falls silent first.
    pub fn expect(&mut self, needle: &str, bound: Duration) -> String {
        let mut seen = Vec::new();
        loop {
            match self.next(bound) {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(line)) => seen.push(line),
                other => panic!("no message with {needle:?} (got {other:?}); before: {seen:?}"),
            }
        }
    }
}
