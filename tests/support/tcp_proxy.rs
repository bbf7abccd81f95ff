//! A loopback TCP proxy a test puts between a client and a server, to break the path
//! between them without touching either process:
//!
//! - [`cut`](TcpProxy::cut) closes every current connection (both sides see the end)
//!   and goes on forwarding new ones: a dropped stream the client can re-open at once.
//! - [`pause`](TcpProxy::pause) cuts them too, and holds every new connection: the
//!   kernel accepts it, nothing is forwarded and nothing answers, so a client's watch
//!   is broken and its reconnects hang until their own timeouts.
//!   [`resume`](TcpProxy::resume) forwards the held connections (whatever their
//!   clients already sent goes through) and the new ones again.
//!
//! One named thread accepts (`tcp-proxy-accept`); each forwarded connection has one
//! (`tcp-proxy-conn-N`) plus a scoped one for its other direction (`tcp-proxy-up-N`).
//! Drop cuts everything, closes held connections, and joins every thread.

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

/// Longest wait for the upstream server to accept a forwarded connection.
const CONNECT_BOUND: Duration = Duration::from_secs(2);

/// See the module docs.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    accepted: AtomicUsize,
}

#[derive(Default)]
struct State {
    paused: bool,
    stopping: bool,
    next_id: usize,
    /// Forwarded connections: their client and upstream sockets, to cut them.
    open: Vec<(usize, TcpStream, TcpStream)>,
    /// Connections accepted while paused, not yet forwarded.
    held: Vec<TcpStream>,
    /// The connections' threads, joined when finished or on drop.
    threads: Vec<JoinHandle<()>>,
}

impl TcpProxy {
    /// A proxy on a free port of 127.0.0.1 that forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            accepted: AtomicUsize::new(0),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("tcp-proxy-accept".into())
            .spawn(move || accept(&listener, &accepting))
            .expect("spawn the proxy's acceptor");
        TcpProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect: 127.0.0.1 and the proxy's port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server it forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Closes every current connection, client and upstream side; new connections are
    /// forwarded as before. The clients' sockets have their end when this returns.
    pub fn cut(&self) {
        cut_all(&mut self.shared.state.lock());
    }

    /// Cuts every current connection and holds new ones until [`resume`](Self::resume).
    pub fn pause(&self) {
        let mut state = self.shared.state.lock();
        state.paused = true;
        cut_all(&mut state);
    }

    /// Forwards the held connections and new ones again.
    pub fn resume(&self) {
        let mut state = self.shared.state.lock();
        state.paused = false;
        for client in std::mem::take(&mut state.held) {
            forward(&self.shared, &mut state, client);
        }
    }

    pub fn is_paused(&self) -> bool {
        self.shared.state.lock().paused
    }

    /// Connections accepted since the start, forwarded or held.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections being forwarded now.
    pub fn open(&self) -> usize {
        self.shared.state.lock().open.len()
    }

    /// Connections held by a pause.
    pub fn held(&self) -> usize {
        self.shared.state.lock().held.len()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock();
            state.stopping = true;
            cut_all(&mut state);
            state.held.clear();
        }
        // Wakes the acceptor, which sees `stopping` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_BOUND);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let threads = std::mem::take(&mut self.shared.state.lock().threads);
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("paused", &self.is_paused())
            .finish()
    }
}

/// The acceptor thread: every connection is forwarded, or held while paused.
fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        let mut state = shared.state.lock();
        if state.stopping {
            return;
        }
        let Ok(client) = client else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if state.paused {
            state.held.push(client);
        } else {
            forward(shared, &mut state, client);
        }
    }
}

/// Starts a thread that connects `client` to the upstream server and pumps both ways.
fn forward(shared: &Arc<Shared>, state: &mut State, client: TcpStream) {
    let id = state.next_id;
    state.next_id += 1;
    // Reap the threads of connections that ended.
    let (done, running) = std::mem::take(&mut state.threads)
        .into_iter()
        .partition(|t: &JoinHandle<()>| t.is_finished());
    state.threads = running;
    for thread in done {
        let _ = thread.join();
    }
    let shared = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name(format!("tcp-proxy-conn-{id}"))
        .spawn(move || connection(&shared, id, client))
        .expect("spawn a proxy connection thread");
    state.threads.push(thread);
}

/// One forwarded connection, on its own thread until both directions end.
fn connection(shared: &Shared, id: usize, client: TcpStream) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, CONNECT_BOUND) else {
        return; // dropping `client` closes it: the server is not there
    };
    let (Ok(client_reader), Ok(upstream_reader)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut state = shared.state.lock();
        if state.stopping {
            return;
        }
        if state.paused {
            // Paused while connecting: hold it as if it came now.
            state.held.push(client);
            return;
        }
        let (Ok(c), Ok(u)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        state.open.push((id, c, u));
    }
    std::thread::scope(|scope| {
        let up = std::thread::Builder::new()
            .name(format!("tcp-proxy-up-{id}"))
            .spawn_scoped(scope, || pump(client_reader, &upstream, &client));
        if up.is_err() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        pump(upstream_reader, &client, &upstream);
    });
    shared.state.lock().open.retain(|(i, _, _)| *i != id);
}

/// Copies `from` into `to` until `from` ends; then passes the end on (half-close) or,
/// on an error either side, closes both connections' sockets.
fn pump(mut from: TcpStream, mut to: &TcpStream, from_socket: &TcpStream) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from_socket.shutdown(Shutdown::Both);
        }
    }
}

fn cut_all(state: &mut State) {
    for (_, client, upstream) in state.open.drain(..) {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
}
