//! Peak memory of a large health answer: a ~62 MiB body of entries shaped exactly as
//! Consul 1.8.7 sends them (every field, two checks each), pretty-printed as 1.8.7
//! sends it and compact as a proxy or a later Consul may, served by a tiny HTTP server
//! thread from one buffer made before the measurement starts. A counting global
//! allocator records the peak of live heap bytes; the target is a peak at most 3x the
//! body size above the baseline, for the client's decoding alone and for an
//! instancer's whole first answer (decoding, instances, the published set).
//!
//! Its own test binary with one test, so no other test allocates during the
//! measurement. Run with `-- --nocapture` to see the figures.
#![cfg(feature = "consul")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use waypost::Event;
use waypost::consul::{Client, HealthQuery, HttpClient, Instancer};

// ---- an allocator that counts live bytes and their peak, over every thread ----

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are atomics,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the old and the new block side by side, as a moving realloc
            // holds them: the peak is never under-reported.
            grew(new_size);
            shrank(layout.size());
        }
        new
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live bytes now, and the peak restarted from here.
fn baseline() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

const MIB: f64 = 1024.0 * 1024.0;

// ---- the body ----

/// One entry as `GET /v1/health/service/web` on a Consul 1.8.7 dev agent answers it for
/// a service registered with two tags, two meta keys and a TTL check (captured from the
/// real agent; only the numbered parts vary).
fn entry(n: usize) -> String {
    let (a, b, c) = ((n >> 16) & 255, (n >> 8) & 255, n & 255);
    let node = format!("node-{}", n / 4);
    let id = format!("web-10.{a}.{b}.{c}-8080");
    format!(
        r#"    {{
        "Node": {{
            "ID": "830ac50a-5dc2-d8c0-5a0c-{n:012x}",
            "Node": "{node}",
            "Address": "192.0.{b}.{c}",
            "Datacenter": "dc1",
            "TaggedAddresses": {{
                "lan": "192.0.{b}.{c}",
                "lan_ipv4": "192.0.{b}.{c}",
                "wan": "192.0.{b}.{c}",
                "wan_ipv4": "192.0.{b}.{c}"
            }},
            "Meta": {{
                "consul-network-segment": ""
            }},
            "CreateIndex": 11,
            "ModifyIndex": 12
        }},
        "Service": {{
            "ID": "{id}",
            "Service": "web",
            "Tags": [
                "v2",
                "blue"
            ],
            "Address": "10.{a}.{b}.{c}",
            "TaggedAddresses": {{
                "lan_ipv4": {{
                    "Address": "10.{a}.{b}.{c}",
                    "Port": 8080
                }},
                "wan_ipv4": {{
                    "Address": "10.{a}.{b}.{c}",
                    "Port": 8080
                }}
            }},
            "Meta": {{
                "team": "payments",
                "version": "2.1.0"
            }},
            "Port": 8080,
            "Weights": {{
                "Passing": 1,
                "Warning": 1
            }},
            "EnableTagOverride": false,
            "Proxy": {{
                "MeshGateway": {{}},
                "Expose": {{}}
            }},
            "Connect": {{}},
            "CreateIndex": 13,
            "ModifyIndex": 13
        }},
        "Checks": [
            {{
                "Node": "{node}",
                "CheckID": "serfHealth",
                "Name": "Serf Health Status",
                "Status": "passing",
                "Notes": "",
                "Output": "Agent alive and reachable",
                "ServiceID": "",
                "ServiceName": "",
                "ServiceTags": [],
                "Type": "",
                "Definition": {{}},
                "CreateIndex": 11,
                "ModifyIndex": 11
            }},
            {{
                "Node": "{node}",
                "CheckID": "service:{id}",
                "Name": "web health",
                "Status": "passing",
                "Notes": "",
                "Output": "",
                "ServiceID": "{id}",
                "ServiceName": "web",
                "ServiceTags": [
                    "v2",
                    "blue"
                ],
                "Type": "ttl",
                "Definition": {{}},
                "CreateIndex": 13,
                "ModifyIndex": 14
            }}
        ]
    }}"#
    )
}

/// `[entry, entry, ...]` of at least `bytes`, pretty or compact, and how many entries
/// it holds.
fn body(bytes: usize, compact: bool) -> (Vec<u8>, usize) {
    let mut body = Vec::with_capacity(bytes + 8192);
    body.extend_from_slice(b"[\n");
    let mut n = 0;
    while body.len() < bytes {
        if n > 0 {
            body.extend_from_slice(b",\n");
        }
        let entry = entry(n);
        if compact {
            // The template has no escapes: white space outside quotes goes.
            let mut quoted = false;
            for byte in entry.bytes() {
                quoted ^= byte == b'"';
                if quoted || !byte.is_ascii_whitespace() {
                    body.push(byte);
                }
            }
        } else {
            body.extend_from_slice(entry.as_bytes());
        }
        n += 1;
    }
    body.extend_from_slice(b"\n]");
    (body, n)
}

// ---- a server that answers every request with the same bytes ----

/// Answers every request on 127.0.0.1 with `body`, written from the one shared buffer:
/// the server allocates nothing per request but a small header line. A blocking query
/// (one with an `index`) is held, as Consul holds it while nothing changes, until the
/// client goes: an instancer's next query cannot decode a second answer during the
/// measurement.
fn serve(body: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                loop {
                    // One request per read: the client sends a small GET at once.
                    let n = match stream.read(&mut request) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if request[..n].windows(6).any(|w| w == b"index=") {
                        while let Ok(1..) = stream.read(&mut request) {}
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         X-Consul-Index: 7\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).is_err()
                        || stream.write_all(&body).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The figures of one measurement.
struct Peak {
    what: &'static str,
    bytes: usize,
}

impl Peak {
    fn check(&self, body: usize) {
        assert!(
            self.bytes <= 3 * body,
            "{} peaked at {:.1} MiB for a {:.1} MiB body",
            self.what,
            self.bytes as f64 / MIB,
            body as f64 / MIB
        );
    }
}

fn client(addr: SocketAddr) -> HttpClient {
    HttpClient::builder()
        .address(format!("http://{addr}"))
        .request_timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// The client's decoding alone: from the request to the decoded answer.
fn health_service(addr: SocketAddr, size: usize, entries: usize) -> Peak {
    let client = client(addr);
    let base = baseline();
    let started = Instant::now();
    let health = client
        .health_service("web", &HealthQuery::default())
        .unwrap();
    let took = started.elapsed();
    let peak = peak() - base;
    let kept = LIVE.load(Ordering::Relaxed) - base;
    assert_eq!(health.entries.len(), entries);
    println!(
        "  health_service: peak {:.1} MiB above baseline ({:.2}x the body), \
         {:.1} MiB kept in the answer, {took:.2?}",
        peak as f64 / MIB,
        peak as f64 / size as f64,
        kept as f64 / MIB,
    );
    Peak {
        what: "health_service",
        bytes: peak,
    }
}

/// An instancer's whole first answer: decoding, instances, the published set.
fn instancer(addr: SocketAddr, size: usize, entries: usize) -> Peak {
    let client = client(addr);
    let base = baseline();
    let started = Instant::now();
    let instancer = Instancer::builder(&client, "web")
        .first_fetch_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    instancer.subscribe(tx);
    match rx.recv_timeout(Duration::from_secs(120)).expect("the set") {
        Event::Instances(set) => assert_eq!(set.len(), entries),
        Event::Error(err) => panic!("expected the set: {err}"),
    }
    let took = started.elapsed();
    let peak = peak() - base;
    instancer.stop();
    println!(
        "  instancer, first set: peak {:.1} MiB above baseline ({:.2}x the body), {took:.2?}",
        peak as f64 / MIB,
        peak as f64 / size as f64,
    );
    Peak {
        what: "the instancer",
        bytes: peak,
    }
}

#[test]
fn a_62_mib_answer_peaks_under_three_times_its_size() {
    for compact in [false, true] {
        let (body, entries) = body(62 << 20, compact);
        let size = body.len();
        let addr = serve(Arc::new(body));
        println!(
            "{} body, {:.1} MiB, {entries} entries:",
            if compact { "compact" } else { "pretty-printed" },
            size as f64 / MIB
        );
        let mut peaks = vec![instancer(addr, size, entries)];
        if !compact {
            // The compact body decodes the same way; once is enough for this figure.
            peaks.push(health_service(addr, size, entries));
        }
        for peak in peaks {
            peak.check(size);
        }
    }
}
