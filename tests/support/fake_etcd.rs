//! A fake etcd JSON gateway on [`FakeHttp`](super::fake_http::FakeHttp), for the real
//! `waypost::etcd::HttpClient`: a tiny store (revision, keys, leases, history) behind
//! the `/v3/` routes the client calls (`kv/range`, `kv/put`, `kv/deleterange`,
//! `lease/grant`, `lease/keepalive`, `lease/revoke`, `watch`, `auth/authenticate`),
//! answering in the gateway's JSON (base64 bytes, int64 as strings).
//!
//! A watch is a chunked stream: a `created` line, a line with the changes since the
//! start revision, then a line per change. The test can script what the next watches
//! answer instead ([`Gateway::script_watch`]), take an open stream to write into or
//! cut ([`Gateway::take_stream`]), put a key without telling the streams (only a new list
//! finds it), serve only `/v3beta/` (an etcd 3.3 gateway), and turn authentication
//! on: `auth/authenticate` issues tokens, other calls need one in `Authorization`,
//! and [`Gateway::expire_tokens`] makes every token issued so far invalid.
#![cfg(feature = "etcd")]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::fake_http::{Answer, FakeHttp, Pacer, Piece, Seen, paced};

/// Standard base64, as the gateway writes keys and values (the harness's own).
pub use super::etcd_wire::{b64, b64_decode as unb64};

#[derive(Debug, Clone)]
struct Kv {
    value: Vec<u8>,
    mod_revision: i64,
    lease: i64,
}

/// One change, as the history keeps it.
#[derive(Debug, Clone)]
struct Change {
    key: Vec<u8>,
    /// `None`: a delete.
    value: Option<Vec<u8>>,
    revision: i64,
}

struct Stream {
    key: Vec<u8>,
    range_end: Vec<u8>,
    pacer: Pacer,
}

#[derive(Default)]
struct State {
    revision: i64,
    kvs: BTreeMap<Vec<u8>, Kv>,
    history: Vec<Change>,
    leases: BTreeMap<i64, i64>,
    next_lease: i64,
    streams: Vec<Stream>,
    /// What the next watches answer instead of following the store.
    scripted: VecDeque<Answer>,
    /// Serve `/v3beta/` only: `/v3/` is "404 page not found".
    beta_only: bool,
    /// (user, password) when authentication is on.
    auth: Option<(String, String)>,
    /// Tokens that are valid now, and every one issued.
    valid: Vec<String>,
    issued: Vec<String>,
}

/// The gateway: a [`FakeHttp`] and the store behind it.
pub struct Gateway {
    state: Arc<Mutex<State>>,
    server: FakeHttp,
}

fn header(revision: i64) -> Value {
    json!({"cluster_id": "14841639068965178418", "member_id": "10276657743932975437",
           "revision": revision.to_string(), "raft_term": "2"})
}

/// An error answer of etcd's gateway: `{"error","message","code"}`.
pub fn grpc_error(status: u16, code: i64, message: &str) -> Answer {
    let body = json!({"error": message, "message": message, "code": code});
    Answer::with_type(status, "application/json", body.to_string())
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    key >= start && (end == [0] || key < end)
}

fn line(value: Value) -> String {
    format!("{value}\n")
}

fn events_json(changes: &[&Change]) -> Vec<Value> {
    changes
        .iter()
        .map(|c| match &c.value {
            Some(value) => json!({"kv": {"key": b64(&c.key), "value": b64(value),
                "create_revision": c.revision.to_string(),
                "mod_revision": c.revision.to_string(), "version": "1"}}),
            None => json!({"type": "DELETE", "kv": {"key": b64(&c.key),
                "mod_revision": c.revision.to_string()}}),
        })
        .collect()
}

impl State {
    fn commit(&mut self, key: &[u8], value: Option<&[u8]>, lease: i64, tell: bool) {
        self.revision += 1;
        let change = Change {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            revision: self.revision,
        };
        match value {
            Some(value) => {
                let kv = Kv {
                    value: value.to_vec(),
                    mod_revision: self.revision,
                    lease,
                };
                self.kvs.insert(key.to_vec(), kv);
            }
            None => {
                self.kvs.remove(key);
            }
        }
        if tell {
            let message = json!({"result": {"header": header(self.revision),
                "events": events_json(&[&change])}});
            for s in &self.streams {
                if in_range(key, &s.key, &s.range_end) {
                    s.pacer.send(&line(message.clone()));
                }
            }
        }
        self.history.push(change);
    }

    fn delete(&mut self, key: &[u8]) {
        if self.kvs.contains_key(key) {
            self.commit(key, None, 0, true);
        }
    }

    fn token_ok(&self, seen: &Seen) -> bool {
        self.auth.is_none()
            || seen
                .header("authorization")
                .is_some_and(|t| self.valid.iter().any(|v| v == t))
    }
}

fn field<'a>(body: &'a Value, name: &str) -> &'a Value {
    body.get(name).unwrap_or(&Value::Null)
}

fn bytes(body: &Value, name: &str) -> Vec<u8> {
    field(body, name)
        .as_str()
        .and_then(unb64)
        .unwrap_or_default()
}

fn int(body: &Value, name: &str) -> i64 {
    match field(body, name) {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

impl Gateway {
    /// A gateway on a free loopback port, with an empty store at revision 1.
    pub fn start() -> Gateway {
        let state = Arc::new(Mutex::new(State {
            revision: 1,
            next_lease: 7_587_800_000_000_000_000,
            ..State::default()
        }));
        let server = {
            let state = state.clone();
            FakeHttp::start(move |seen| answer(&state, seen))
        };
        Gateway { state, server }
    }

    pub fn base(&self) -> String {
        self.server.base()
    }

    pub fn server(&self) -> &FakeHttp {
        &self.server
    }

    /// Serve `/v3beta/` only, as etcd 3.3's gateway.
    pub fn beta_only(&self) {
        self.state.lock().beta_only = true;
    }

    /// Turns authentication on for `user` with `password`.
    pub fn auth(&self, user: &str, password: &str) {
        self.state.lock().auth = Some((user.into(), password.into()));
    }

    /// Every token issued so far stops being valid (etcd's token TTL passed).
    pub fn expire_tokens(&self) {
        self.state.lock().valid.clear();
    }

    /// Every token issued so far.
    pub fn tokens(&self) -> Vec<String> {
        self.state.lock().issued.clone()
    }

    /// Puts `key` = `value`, telling the open watch streams.
    pub fn put(&self, key: &str, value: &str) {
        (self.state.lock()).commit(key.as_bytes(), Some(value.as_bytes()), 0, true);
    }

    /// Puts `key` = `value` without telling the open streams: as if it happened while
    /// they were cut off; only a new list (or a new watch) finds it.
    pub fn put_unseen(&self, key: &str, value: &str) {
        (self.state.lock()).commit(key.as_bytes(), Some(value.as_bytes()), 0, false);
    }

    pub fn delete(&self, key: &str) {
        self.state.lock().delete(key.as_bytes());
    }

    /// The value of `key` and its lease.
    pub fn get(&self, key: &str) -> Option<(String, i64)> {
        let state = self.state.lock();
        let kv = state.kvs.get(key.as_bytes())?;
        Some((String::from_utf8_lossy(&kv.value).into_owned(), kv.lease))
    }

    /// The next watch answers `answer` instead of following the store (several queue
    /// up, in order).
    pub fn script_watch(&self, answer: Answer) {
        self.state.lock().scripted.push_back(answer);
    }

    /// Waits (bounded) for a watch stream to be open, and hands it to the test: the
    /// gateway forgets it (and every older one), so changes no longer reach it, and
    /// the stream lives as long as the returned pacer.
    /// Waits (bounded) until a watch stream is open, so that a [`put`](Self::put)
    /// reaches it.
    pub fn wait_stream(&self) {
        super::wait_until("a watch stream", || !self.state.lock().streams.is_empty());
    }

    pub fn take_stream(&self) -> Pacer {
        super::wait_until("a watch stream", || !self.state.lock().streams.is_empty());
        let mut state = self.state.lock();
        let stream = state.streams.pop().expect("waited for");
        state.streams.clear();
        stream.pacer
    }

    /// How many watch streams were asked for.
    pub fn watches(&self) -> usize {
        self.paths()
            .iter()
            .filter(|p| p.ends_with("/watch"))
            .count()
    }

    /// The paths of every request so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.server.requests().into_iter().map(|s| s.path).collect()
    }
}

/// A watch answer whose body is these lines, written at once, then `end` if any
/// ([`Piece::Cut`]: the connection closes there). The body stays open while the
/// returned pacer lives (drop it to end the body cleanly).
pub fn watch_lines(lines: &[&str], end: Option<Piece>) -> (Answer, Pacer) {
    let (pacer, pieces) = paced();
    for l in lines {
        pacer.send(l);
    }
    match end {
        Some(Piece::Cut) => pacer.cut(),
        Some(Piece::Data(data)) => pacer.send(&String::from_utf8_lossy(&data)),
        None => {}
    }
    (Answer::chunked(pieces), pacer)
}

fn answer(state: &Mutex<State>, seen: &Seen) -> Answer {
    let mut state = state.lock();
    let op = match (
        seen.path.strip_prefix("/v3/"),
        seen.path.strip_prefix("/v3beta/"),
    ) {
        (Some(_), _) if state.beta_only => {
            return Answer::with_type(404, "text/plain; charset=utf-8", "404 page not found");
        }
        (Some(op), _) | (None, Some(op)) => op.to_owned(),
        (None, None) => {
            return Answer::with_type(404, "text/plain; charset=utf-8", "404 page not found");
        }
    };
    let body: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    if op == "auth/authenticate" {
        let given = (
            field(&body, "name").as_str(),
            field(&body, "password").as_str(),
        );
        return match &state.auth {
            None => grpc_error(400, 9, "etcdserver: authentication is not enabled"),
            Some((user, password)) if given == (Some(user.as_str()), Some(password.as_str())) => {
                let token = format!("tok{}.secret{}", state.issued.len(), state.revision);
                state.valid.push(token.clone());
                state.issued.push(token.clone());
                let reply = json!({"header": header(state.revision), "token": token});
                Answer::json(reply.to_string())
            }
            Some(_) => grpc_error(
                400,
                3,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
        };
    }
    if !state.token_ok(seen) {
        return grpc_error(401, 16, "etcdserver: invalid auth token");
    }
    let revision = state.revision;
    match op.as_str() {
        "kv/range" => {
            let (start, end) = (bytes(&body, "key"), bytes(&body, "range_end"));
            let kvs: Vec<Value> = (state.kvs.iter())
                .filter(|(k, _)| in_range(k, &start, &end))
                .map(|(k, kv)| {
                    json!({"key": b64(k), "value": b64(&kv.value),
                       "create_revision": kv.mod_revision.to_string(),
                       "mod_revision": kv.mod_revision.to_string(), "version": "1",
                       "lease": kv.lease.to_string()})
                })
                .collect();
            let count = kvs.len().to_string();
            let reply = json!({"header": header(revision), "kvs": kvs, "count": count});
            Answer::json(reply.to_string())
        }
        "kv/put" => {
            let lease = int(&body, "lease");
            if lease != 0 && !state.leases.contains_key(&lease) {
                return grpc_error(404, 5, "etcdserver: requested lease not found");
            }
            let (key, value) = (bytes(&body, "key"), bytes(&body, "value"));
            state.commit(&key, Some(&value), lease, true);
            Answer::json(json!({"header": header(state.revision)}).to_string())
        }
        "kv/deleterange" => {
            let key = bytes(&body, "key");
            let deleted = u8::from(state.kvs.contains_key(&key));
            state.delete(&key);
            let reply = json!({"header": header(state.revision), "deleted": deleted.to_string()});
            Answer::json(reply.to_string())
        }
        "lease/grant" => {
            state.next_lease += 1;
            let (id, ttl) = (state.next_lease, int(&body, "TTL").max(1));
            state.leases.insert(id, ttl);
            let reply = json!({"header": header(revision), "ID": id.to_string(),
                               "TTL": ttl.to_string()});
            Answer::json(reply.to_string())
        }
        "lease/keepalive" => {
            let id = int(&body, "ID");
            let result = match state.leases.get(&id) {
                Some(ttl) => json!({"header": header(revision), "ID": id.to_string(),
                                    "TTL": ttl.to_string()}),
                None => json!({"header": header(revision), "ID": id.to_string()}),
            };
            Answer::json(line(json!({ "result": result })))
        }
        "lease/revoke" => {
            let id = int(&body, "ID");
            if state.leases.remove(&id).is_none() {
                return grpc_error(404, 5, "etcdserver: requested lease not found");
            }
            let keys: Vec<Vec<u8>> = (state.kvs.iter())
                .filter(|(_, kv)| kv.lease == id)
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                state.delete(&key);
            }
            Answer::json(json!({"header": header(state.revision)}).to_string())
        }
        "watch" => {
            if let Some(scripted) = state.scripted.pop_front() {
                return scripted;
            }
            let create = field(&body, "create_request");
            let (key, range_end) = (bytes(create, "key"), bytes(create, "range_end"));
            let start = int(create, "start_revision");
            let (pacer, pieces) = paced();
            pacer.send(&line(
                json!({"result": {"header": header(revision), "created": true}}),
            ));
            let missed: Vec<&Change> = (state.history.iter())
                .filter(|c| c.revision >= start && in_range(&c.key, &key, &range_end))
                .collect();
            if !missed.is_empty() {
                let message = json!({"result": {"header": header(revision),
                    "events": events_json(&missed)}});
                pacer.send(&line(message));
            }
            state.streams.push(Stream {
                key,
                range_end,
                pacer,
            });
            Answer::chunked(pieces)
        }
        _ => grpc_error(404, 12, "unknown method"),
    }
}
