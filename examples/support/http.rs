//! What the examples share: a tiny HTTP server on loopback, and an HTTP client for one
//! instance whose requests are bounded by a retry's deadline.
#![allow(dead_code)] // each example uses a different part

use std::error::Error;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use waypost::Instance;
use waypost::lb::Deadline;

/// A minimal HTTP/1.1 server on its own thread: answers every request with `200` and a
/// body naming the server, then closes the connection. `stop` (or drop) ends the
/// thread and joins it; the listening socket closes with it, so connections to its
/// port are then refused.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Requests answered.
    pub served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(name: &'static str) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stopping, count) = (stop.clone(), served.clone());
        let thread = thread::Builder::new()
            .name(format!("server-{name}"))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break; // woken by `shutdown`'s own connection
                    }
                    match stream.and_then(|stream| answer(stream, name)) {
                        Ok(()) => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("{name}: {e}"),
                    }
                }
            })?;
        Ok(Server {
            name,
            addr,
            served,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        // `accept` blocks; one connection of our own wakes it up to see the flag.
        if let Err(e) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)) {
            eprintln!("waking {} failed: {e}", self.name);
        }
        if thread.join().is_err() {
            eprintln!("{} panicked", self.name);
        }
        println!(
            "stopped    {} (port {} closed)",
            self.name,
            self.addr.port()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads one request (the request line and headers; a GET has no body) and answers it.
fn answer(stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let body = format!("hello from {name}");
    // One write: `write!` on the bare stream would make a system call for each piece
    // of the format string.
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    (&stream).write_all(response.as_bytes())
}

/// A plain-HTTP client for one instance: what the examples' factories make. Cloning it
/// is cheap (the agent is shared).
#[derive(Clone, Debug)]
pub struct Client {
    pub name: Arc<str>,
    pub url: Arc<str>,
    pub agent: ureq::Agent,
}

impl Client {
    /// A client for `instance`, named by its `name` metadata if it has one; every
    /// request is bounded by `timeout` at most.
    pub fn new(instance: &Instance, timeout: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_millis(200)))
            .timeout_global(Some(timeout))
            .build();
        let name = instance.metadata().and_then(|m| m.get("name"));
        Client {
            name: name.unwrap_or(instance.addr()).into(),
            url: format!("http://{instance}").into(),
            agent: config.new_agent(),
        }
    }

    /// `GET path`, given up at `deadline`: the retry's deadline bounds every attempt.
    pub fn get(&self, path: &str, deadline: Deadline<'_>) -> Result<String, CallError> {
        let url = format!("{}{path}", self.url);
        let result = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(deadline.remaining()))
            .build()
            .call()
            .and_then(|mut response| response.body_mut().read_to_string());
        result.map_err(|source| CallError { url, source })
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.url)
    }
}

/// A failed request, with the URL it went to.
#[derive(Debug)]
pub struct CallError {
    url: String,
    source: ureq::Error,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GET {} failed: {}", self.url, self.source)
    }
}

impl Error for CallError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}
