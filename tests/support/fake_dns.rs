//! A scripted DNS server on loopback for tests: UDP, and optionally TCP on the same
//! port. Each query (parsed) goes to the test's handler, which returns what to send
//! back: replies to the query's source, datagrams from another socket, raw bytes, or
//! nothing (a silent server). Every query is also sent on [`FakeDns::seen`], so a test
//! waits for "the server saw the query" on a channel. Packets are built with
//! `simple_dns`, through [`Answer`].
#![cfg(feature = "dnssrv")]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;
use simple_dns::rdata::{A, AAAA, RData, SOA, SRV};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord};

/// Record type numbers, as [`Seen::qtype`] holds them.
pub const QTYPE_A: u16 = 1;
pub const QTYPE_AAAA: u16 = 28;
pub const QTYPE_SRV: u16 = 33;

/// One query as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: u16,
    /// The question's name, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    /// The client's address and port.
    pub from: SocketAddr,
    /// True when it came over TCP.
    pub tcp: bool,
}

/// What the server sends for a query.
#[derive(Debug, Clone)]
pub enum Out {
    /// Bytes sent to the query's source (over TCP, after a 2-byte length).
    Reply(Vec<u8>),
    /// Bytes sent to the query's source from another UDP socket on loopback.
    FromElsewhere(Vec<u8>),
    /// Bytes written as they are, no length (TCP); as `Reply` over UDP.
    Raw(Vec<u8>),
}

type Handler = Box<dyn FnMut(&Seen) -> Vec<Out> + Send>;

/// The server; stops and joins its threads on drop.
pub struct FakeDns {
    addr: SocketAddr,
    seen: Receiver<Seen>,
    stop: Arc<AtomicBool>,
    tcp: bool,
    threads: Vec<JoinHandle<()>>,
}

impl FakeDns {
    /// A UDP-only server on 127.0.0.1, on a port the OS picks.
    pub fn udp(handler: impl FnMut(&Seen) -> Vec<Out> + Send + 'static) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        FakeDns::start(socket, None, Box::new(handler))
    }

    /// A server on UDP and TCP on the same port of 127.0.0.1; one handler answers
    /// both ([`Seen::tcp`] tells them apart).
    pub fn udp_and_tcp(handler: impl FnMut(&Seen) -> Vec<Out> + Send + 'static) -> FakeDns {
        FakeDns::udp_and_tcp_on(Ipv4Addr::LOCALHOST, 0, handler)
    }

    /// As [`udp_and_tcp`](Self::udp_and_tcp) on `ip`, on `port` (0: any free
    /// one; another: that one, the test's retry if it is taken).
    pub fn udp_and_tcp_on(
        ip: Ipv4Addr,
        port: u16,
        handler: impl FnMut(&Seen) -> Vec<Out> + Send + 'static,
    ) -> FakeDns {
        for _ in 0..50 {
            let socket = UdpSocket::bind((ip, port)).unwrap();
            let port = socket.local_addr().unwrap().port();
            if let Ok(listener) = TcpListener::bind((ip, port)) {
                return FakeDns::start(socket, Some(listener), Box::new(handler));
            }
        }
        panic!("no port free on both UDP and TCP");
    }

    /// A UDP and TCP server on `ip` and `port` if both are free.
    pub fn try_on(
        ip: Ipv4Addr,
        port: u16,
        handler: impl FnMut(&Seen) -> Vec<Out> + Send + 'static,
    ) -> Option<FakeDns> {
        let socket = UdpSocket::bind((ip, port)).ok()?;
        let listener = TcpListener::bind((ip, port)).ok()?;
        Some(FakeDns::start(socket, Some(listener), Box::new(handler)))
    }

    fn start(socket: UdpSocket, listener: Option<TcpListener>, handler: Handler) -> FakeDns {
        let addr = socket.local_addr().unwrap();
        let handler = Arc::new(Mutex::new(handler));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_tx, seen) = unbounded();
        let mut threads = Vec::new();
        let tcp = listener.is_some();
        {
            let (handler, stop, seen_tx) = (handler.clone(), stop.clone(), seen_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("fake-dns-udp".into())
                    .spawn(move || serve_udp(socket, &handler, &stop, &seen_tx))
                    .unwrap(),
            );
        }
        if let Some(listener) = listener {
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("fake-dns-tcp".into())
                    .spawn(move || serve_tcp(listener, &handler, &stop, &seen_tx))
                    .unwrap(),
            );
        }
        FakeDns {
            addr,
            seen,
            stop,
            tcp,
            threads,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every query seen, in order.
    pub fn seen(&self) -> &Receiver<Seen> {
        &self.seen
    }

    /// The next query seen, waited for within `bound`; panics without one.
    pub fn next_seen(&self, bound: Duration) -> Seen {
        self.seen
            .recv_timeout(bound)
            .unwrap_or_else(|_| panic!("the fake server at {} saw no query", self.addr))
    }

    /// The queries seen so far, without waiting.
    pub fn seen_now(&self) -> Vec<Seen> {
        self.seen.try_iter().collect()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking receive and accept; each loop then sees the flag.
        if let Ok(waker) = UdpSocket::bind((self.addr.ip(), 0)) {
            let _ = waker.send_to(b"", self.addr);
        }
        if self.tcp {
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn parse_query(bytes: &[u8], from: SocketAddr, tcp: bool) -> Option<Seen> {
    let packet = Packet::parse(bytes).ok()?;
    let question = packet.questions.first()?;
    Some(Seen {
        id: packet.id(),
        name: question.qname.to_string(),
        qtype: u16::from(question.qtype),
        from,
        tcp,
    })
}

fn serve_udp(
    socket: UdpSocket,
    handler: &Mutex<Handler>,
    stop: &AtomicBool,
    seen_tx: &Sender<Seen>,
) {
    let mut buf = vec![0; 65_535];
    loop {
        let received = socket.recv_from(&mut buf);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((len, from)) = received else { continue };
        let Some(seen) = parse_query(&buf[..len], from, false) else {
            continue;
        };
        let outs = (handler.lock())(&seen);
        let _ = seen_tx.send(seen);
        for out in outs {
            match out {
                Out::Reply(bytes) | Out::Raw(bytes) => {
                    let _ = socket.send_to(&bytes, from);
                }
                Out::FromElsewhere(bytes) => {
                    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let _ = other.send_to(&bytes, from);
                }
            }
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    handler: &Mutex<Handler>,
    stop: &AtomicBool,
    seen_tx: &Sender<Seen>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let from = stream.peer_addr().unwrap();
        let mut len = [0; 2];
        if stream.read_exact(&mut len).is_err() {
            continue;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).is_err() {
            continue;
        }
        let Some(seen) = parse_query(&query, from, true) else {
            continue;
        };
        let outs = (handler.lock())(&seen);
        let _ = seen_tx.send(seen);
        for out in outs {
            let bytes = match out {
                Out::Reply(bytes) | Out::FromElsewhere(bytes) => {
                    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&bytes);
                    framed
                }
                Out::Raw(bytes) => bytes,
            };
            let _ = stream.write_all(&bytes);
        }
    }
}

/// A reply to build: by default, NOERROR to the query seen, with no records.
#[derive(Debug, Clone)]
pub struct Answer {
    id: u16,
    name: String,
    qtype: u16,
    rcode: u16,
    truncated: bool,
    ttl: u32,
    srv: Vec<(u16, u16, u16, String, u32)>,
    ips: Vec<(IpAddr, u32)>,
    additional: Vec<(String, IpAddr, u32)>,
    soa: Option<(u32, u32)>,
}

impl Answer {
    /// An empty NOERROR reply to `seen` (same id and question), TTL 60.
    pub fn to(seen: &Seen) -> Answer {
        Answer {
            id: seen.id,
            name: seen.name.clone(),
            qtype: seen.qtype,
            rcode: 0,
            truncated: false,
            ttl: 60,
            srv: Vec::new(),
            ips: Vec::new(),
            additional: Vec::new(),
            soa: None,
        }
    }

    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Another question in the reply.
    pub fn question(mut self, name: &str, qtype: u16) -> Self {
        self.name = name.to_owned();
        self.qtype = qtype;
        self
    }

    pub fn rcode(mut self, rcode: u16) -> Self {
        self.rcode = rcode;
        self
    }

    /// TC=1.
    pub fn truncated(mut self) -> Self {
        self.truncated = true;
        self
    }

    /// The TTL of the records added after this call.
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// An SRV record (the question's name) in the answer section.
    pub fn srv(mut self, priority: u16, weight: u16, port: u16, target: &str) -> Self {
        self.srv
            .push((priority, weight, port, target.to_owned(), self.ttl));
        self
    }

    /// An A or AAAA record (the question's name) in the answer section.
    pub fn ip(mut self, ip: impl Into<IpAddr>) -> Self {
        self.ips.push((ip.into(), self.ttl));
        self
    }

    /// An A or AAAA record of `name` in the additional section.
    pub fn additional(mut self, name: &str, ip: impl Into<IpAddr>) -> Self {
        self.additional.push((name.to_owned(), ip.into(), self.ttl));
        self
    }

    /// An SOA in the authority section, with this TTL and MINIMUM.
    pub fn soa(mut self, ttl: u32, minimum: u32) -> Self {
        self.soa = Some((ttl, minimum));
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut packet = Packet::new_reply(self.id);
        packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        if self.truncated {
            packet.set_flags(PacketFlag::TRUNCATION);
        }
        *packet.rcode_mut() = RCODE::from(self.rcode);
        let qtype = QTYPE::try_from(self.qtype).unwrap();
        packet.questions.push(Question::new(
            Name::new_unchecked(&self.name),
            qtype,
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let name = Name::new_unchecked(&self.name);
        for (priority, weight, port, target, ttl) in &self.srv {
            let rdata = RData::SRV(SRV {
                priority: *priority,
                weight: *weight,
                port: *port,
                target: Name::new_unchecked(target),
            });
            packet
                .answers
                .push(ResourceRecord::new(name.clone(), CLASS::IN, *ttl, rdata));
        }
        for (ip, ttl) in &self.ips {
            packet.answers.push(ResourceRecord::new(
                name.clone(),
                CLASS::IN,
                *ttl,
                ip_rdata(*ip),
            ));
        }
        for (host, ip, ttl) in &self.additional {
            packet.additional_records.push(ResourceRecord::new(
                Name::new_unchecked(host),
                CLASS::IN,
                *ttl,
                ip_rdata(*ip),
            ));
        }
        if let Some((ttl, minimum)) = self.soa {
            let rdata = RData::SOA(SOA {
                mname: Name::new_unchecked("ns.example.test"),
                rname: Name::new_unchecked("admin.example.test"),
                serial: 1,
                refresh: 60,
                retry: 60,
                expire: 600,
                minimum,
            });
            packet.name_servers.push(ResourceRecord::new(
                Name::new_unchecked("example.test"),
                CLASS::IN,
                ttl,
                rdata,
            ));
        }
        packet.build_bytes_vec_compressed().unwrap()
    }

    /// As [`bytes`](Self::bytes), wrapped to send.
    pub fn reply(&self) -> Out {
        Out::Reply(self.bytes())
    }
}

fn ip_rdata(ip: IpAddr) -> RData<'static> {
    match ip {
        IpAddr::V4(ip) => RData::A(A::from(ip)),
        IpAddr::V6(ip) => RData::AAAA(AAAA::from(ip)),
    }
}
