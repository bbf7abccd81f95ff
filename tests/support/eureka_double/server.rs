//! The double's HTTP/1.1 serving: an accept thread on a loopback port, a thread per
//! connection (keep-alive unless the client says `Connection: close` or speaks 1.0),
//! and a stop that closes the port, cuts every open connection and joins the threads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::Shared;
use super::routes::{Reply, reason};
use crate::support::fake_http::Seen;

/// One connection being served: a handle on its socket (to cut it) and its thread.
struct Conn {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

/// The serving threads of one start.
pub struct Serving {
    port: u16,
    stopping: Arc<AtomicBool>,
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl Serving {
    /// Serves on `127.0.0.1:port` (0: a free port).
    pub fn start(port: u16, shared: Arc<Shared>) -> Serving {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("eureka double: bind 127.0.0.1:{port}: {e}"));
        let port = listener.local_addr().expect("local addr").port();
        let stopping = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let accept = {
            let (stopping, conns) = (stopping.clone(), conns.clone());
            std::thread::Builder::new()
                .name("eureka-double".into())
                .spawn(move || accept_loop(&listener, &stopping, &conns, &shared))
                .expect("spawn the accept thread")
        };
        Serving {
            port,
            stopping,
            accept,
            conns,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the port and every connection; joins every thread.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes accept()
        let _ = self.accept.join();
        let conns = std::mem::take(&mut *self.conns.lock());
        for conn in &conns {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for conn in conns {
            let _ = conn.thread.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stopping: &AtomicBool,
    conns: &Mutex<Vec<Conn>>,
    shared: &Arc<Shared>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("eureka-double-conn".into())
            .spawn(move || serve(stream, &shared))
            .expect("spawn a connection thread");
        let mut conns = conns.lock();
        conns.retain(|c| !c.thread.is_finished());
        conns.push(Conn {
            stream: handle,
            thread,
        });
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    // As servlet containers do: without it a reply's second segment waits for the
    // client's delayed ACK (40 ms on Linux) after the first.
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while let Some((seen, keep_alive)) = read_request(&mut reader) {
        let Some(reply) = shared.answer(seen) else {
            break;
        };
        if write_reply(&mut out, &reply, keep_alive).is_err() || !keep_alive {
            break;
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}

fn write_reply(out: &mut TcpStream, reply: &Reply, keep_alive: bool) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if let Some(content_type) = &reply.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if reply.status != 204 {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.push_str(&reply.body);
    out.write_all(head.as_bytes())?;
    out.flush()
}

/// One request, and whether the connection stays open after it.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Seen, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let version = parts.next().unwrap_or("HTTP/1.0").to_owned();
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
    let header = |name: &str| crate::support::fake_http::header(&headers, name);
    let len = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0usize);
    let connection = header("connection").map(str::to_ascii_lowercase);
    let keep_alive = match connection.as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    let seen = Seen {
        method,
        path,
        query,
        headers,
        body,
    };
    Some((seen, keep_alive))
}
