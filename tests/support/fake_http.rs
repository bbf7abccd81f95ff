//! A tiny HTTP/1.1 server on 127.0.0.1 for tests: each request goes to a handler that
//! returns an [`Answer`]: a normal response, a wrong one, one cut mid-body, a body
//! streamed in pieces the test paces (chunked, as etcd's watch, or ended by a close),
//! or none at all. Connections are kept alive; the handler may block to hold a request
//! (a long poll).
//!
//! Shared by the crate's unit tests (through `#[path]`) and the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, select, unbounded};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The raw query string (no `?`), empty when none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// A header by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Every raw value of query parameter `key` (a bare `key` gives "").
    pub fn query_values(&self, key: &str) -> Vec<String> {
        self.query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == key).then(|| v.to_owned())
            })
            .collect()
    }

    /// The first value of query parameter `key`.
    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query_values(key).into_iter().next()
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers announcing `declared` body bytes, then `body` (shorter), then close.
    CutShort { declared: usize, body: Vec<u8> },
    /// Close the connection without answering.
    Close,
    /// The status and headers at once, then the body piece by piece as the test sends
    /// [`Piece`]s (see [`paced`]), each written as it comes: as one chunk when
    /// `chunked` (`Transfer-Encoding: chunked`), else raw, the body ending with the
    /// connection. When the test drops its sender the body ends properly (the last
    /// chunk, or a close); [`Piece::Cut`] closes at once, wherever the body is.
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        chunked: bool,
        pieces: Receiver<Piece>,
    },
    /// Never answer: hold the connection open until the server is dropped.
    Hang,
}

/// A piece of a [`Answer::Stream`] body.
#[derive(Debug, Clone)]
pub enum Piece {
    Data(Vec<u8>),
    /// Close the connection here, without ending the body.
    Cut,
}

/// The test's end of a streamed body: each `send` is written at once.
#[derive(Debug, Clone)]
pub struct Pacer(Sender<Piece>);

impl Pacer {
    /// Writes `text` as the next piece (a chunk of its own when chunked).
    pub fn send(&self, text: &str) {
        let _ = self.0.send(Piece::Data(text.as_bytes().to_vec()));
    }

    /// Cuts the connection where the body is now.
    pub fn cut(&self) {
        let _ = self.0.send(Piece::Cut);
    }
}

/// A pacer and the pieces it sends, for [`Answer::chunked`] or [`Answer::streamed`].
/// Dropping every clone of the pacer ends the body.
pub fn paced() -> (Pacer, Receiver<Piece>) {
    let (tx, rx) = unbounded();
    (Pacer(tx), rx)
}

impl Answer {
    /// 200 with a JSON body.
    pub fn json(body: impl Into<String>) -> Answer {
        Answer::with_type(200, "application/json", body)
    }

    /// A status with a body of the given content type.
    pub fn with_type(status: u16, content_type: &str, body: impl Into<String>) -> Answer {
        Answer::Full {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into().into_bytes(),
        }
    }

    /// 200, JSON, the body in chunks as `pieces` come (`Transfer-Encoding: chunked`).
    pub fn chunked(pieces: Receiver<Piece>) -> Answer {
        Answer::stream(pieces, true)
    }

    /// 200, JSON, the body raw as `pieces` come, ended by closing the connection.
    pub fn streamed(pieces: Receiver<Piece>) -> Answer {
        Answer::stream(pieces, false)
    }

    fn stream(pieces: Receiver<Piece>, chunked: bool) -> Answer {
        Answer::Stream {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            chunked,
            pieces,
        }
    }

    /// 200 announcing all of `body` (JSON), of which only the first `sent` bytes come
    /// before the connection closes: an answer cut mid-object.
    pub fn cut(body: &str, sent: usize) -> Answer {
        Answer::CutShort {
            declared: body.len(),
            body: body.as_bytes()[..sent].to_vec(),
        }
    }

    /// Adds a header to a full or streamed answer.
    pub fn header(mut self, name: &str, value: impl ToString) -> Answer {
        if let Answer::Full { headers, .. } | Answer::Stream { headers, .. } = &mut self {
            headers.push((name.into(), value.to_string()));
        }
        self
    }
}

/// The first of `headers` named `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;
type Requests = Arc<Mutex<Vec<Seen>>>;

/// The server; stops accepting when dropped, and ends held and streamed answers.
pub struct FakeHttp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// Dropped with the server: wakes connections that hang or wait for a piece.
    _closing: Sender<()>,
    requests: Requests,
}

impl FakeHttp {
    /// Starts a server on a free loopback port.
    pub fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (closing, closed) = crossbeam_channel::bounded(0);
        let requests = Requests::default();
        let accept = {
            let requests = requests.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("fake-http".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (handler, closed) = (handler.clone(), closed.clone());
                        let requests = requests.clone();
                        let _ = std::thread::Builder::new()
                            .name("fake-http-conn".into())
                            .spawn(move || serve(stream, &*handler, &closed, &requests));
                    }
                })
                .expect("spawn")
        };
        FakeHttp {
            addr,
            stop,
            accept: Some(accept),
            _closing: closing,
            requests,
        }
    }

    /// A server that accepts connections and reads requests, and never answers.
    pub fn silent() -> FakeHttp {
        FakeHttp::start(|_| Answer::Hang)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in the order the handler got them.
    pub fn requests(&self) -> Vec<Seen> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A base URL on which nothing listens (connections are refused).
pub fn refused_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

fn serve(stream: TcpStream, handler: &Handler, closed: &Receiver<()>, requests: &Requests) {
    // A reply written in pieces must not wait for the client's delayed ACK.
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    while let Some(seen) = read_request(&mut reader) {
        let answer = handler(&seen);
        requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(seen);
        let ok = match answer {
            Answer::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                out.write_all(head.as_bytes()).is_ok() && out.write_all(&body).is_ok()
            }
            Answer::CutShort { declared, body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(&body);
                false
            }
            Answer::Close => false,
            Answer::Stream {
                status,
                headers,
                chunked,
                pieces,
            } => stream_body(&mut out, status, headers, chunked, &pieces, closed),
            Answer::Hang => {
                let _ = closed.recv();
                false
            }
        };
        if !ok || out.flush().is_err() {
            break;
        }
    }
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// Writes a streamed answer; true when the connection can serve another request.
fn stream_body(
    out: &mut TcpStream,
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    pieces: &Receiver<Piece>,
    closed: &Receiver<()>,
) -> bool {
    let framing = match chunked {
        true => "Transfer-Encoding: chunked",
        false => "Connection: close",
    };
    let mut head = format!("HTTP/1.1 {status} X\r\n{framing}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if out
        .write_all(head.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return false;
    }
    loop {
        let piece = select! {
            recv(pieces) -> piece => piece,
            recv(closed) -> _ => return false,
        };
        let written = match piece {
            Ok(Piece::Data(data)) if chunked => {
                let size = format!("{:x}\r\n", data.len());
                out.write_all(size.as_bytes())
                    .and_then(|_| out.write_all(&data))
                    .and_then(|_| out.write_all(b"\r\n"))
            }
            Ok(Piece::Data(data)) => out.write_all(&data),
            Ok(Piece::Cut) => return false,
            Err(_) => return chunked && out.write_all(b"0\r\n\r\n").is_ok(),
        };
        if written.and_then(|_| out.flush()).is_err() {
            return false;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Seen {
        method,
        path,
        query,
        headers,
        body,
    })
}
