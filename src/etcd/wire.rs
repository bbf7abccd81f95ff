//! The JSON shapes of etcd's v3 gateway: requests, answers, watch lines.

use serde::{Deserialize, Serialize};

use super::client::{KeyValue, WatchEvent, WatchResponse};
use crate::internal::http::encoding::{base64, int64};

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Header {
    #[serde(with = "int64")]
    pub(super) revision: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RangeAnswer {
    pub(super) header: Header,
    pub(super) kvs: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LeaseAnswer {
    #[serde(rename = "ID", with = "int64")]
    pub(super) id: i64,
    #[serde(rename = "TTL", with = "int64")]
    pub(super) ttl: i64,
    pub(super) error: String,
}

#[derive(Deserialize)]
pub(super) struct KeepAliveLine {
    pub(super) result: LeaseAnswer,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct WatchResult {
    pub(super) header: Header,
    pub(super) created: bool,
    pub(super) canceled: bool,
    #[serde(with = "int64")]
    pub(super) compact_revision: i64,
    pub(super) cancel_reason: String,
    pub(super) events: Vec<WatchEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatchLine {
    pub(super) result: WatchResult,
}

/// Decodes one line of a watch stream: `{"result":{...}}`. An error line is refused
/// by the shared HTTP stream reader before it gets here.
pub(crate) fn decode_watch_line(line: &[u8]) -> std::result::Result<WatchResponse, String> {
    let WatchLine { result } = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    Ok(WatchResponse {
        revision: result.header.revision,
        created: result.created,
        canceled: result.canceled,
        compact_revision: result.compact_revision,
        cancel_reason: result.cancel_reason,
        events: result.events,
    })
}

#[derive(Serialize)]
pub(super) struct RangeRequest {
    #[serde(with = "base64")]
    pub(super) key: Vec<u8>,
    #[serde(with = "base64")]
    pub(super) range_end: Vec<u8>,
}

#[derive(Serialize)]
pub(super) struct PutRequest<'a> {
    #[serde(serialize_with = "bytes")]
    pub(super) key: &'a [u8],
    #[serde(serialize_with = "bytes")]
    pub(super) value: &'a [u8],
    #[serde(with = "int64")]
    pub(super) lease: i64,
}

#[derive(Serialize)]
pub(super) struct KeyRequest<'a> {
    #[serde(serialize_with = "bytes")]
    pub(super) key: &'a [u8],
}

#[derive(Serialize)]
pub(super) struct IdRequest {
    #[serde(rename = "ID", with = "int64")]
    pub(super) id: i64,
}

#[derive(Serialize)]
pub(super) struct WatchCreate {
    pub(super) create_request: WatchCreateRequest,
}

#[derive(Serialize)]
pub(super) struct WatchCreateRequest {
    #[serde(with = "base64")]
    pub(super) key: Vec<u8>,
    #[serde(with = "base64")]
    pub(super) range_end: Vec<u8>,
    #[serde(with = "int64")]
    pub(super) start_revision: i64,
    pub(super) progress_notify: bool,
}

pub(super) fn bytes<S: serde::Serializer>(
    bytes: &&[u8],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    base64::serialize(bytes, s)
}

/// The end of the range of keys that start with `prefix`: the prefix with its last
/// byte below 0xff incremented (what follows dropped); "\0" (every key) when there is
/// no such byte.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The gRPC code a watch's `cancel_reason` names (`"rpc error: code = PermissionDenied
/// desc = ..."`), as its number.
pub(crate) fn grpc_code(reason: &str) -> Option<i64> {
    let name = reason.split("code = ").nth(1)?.split_whitespace().next()?;
    let codes = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    codes.iter().position(|c| *c == name).map(|n| n as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::EventKind;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/svc/"), b"/svc0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn watch_lines_decode_with_defaults_omitted() {
        let created = br#"{"result":{"header":{"cluster_id":"1","revision":"8","raft_term":"2"},"created":true}}"#;
        let m = decode_watch_line(created).unwrap();
        assert!(m.created && !m.canceled && m.events.is_empty());
        assert_eq!(m.revision, 8);

        let events = br#"{"result":{"header":{"revision":"11"},"events":[{"kv":{"key":"L3N2Yy9h","create_revision":"7","mod_revision":"7","version":"1","value":"MQ=="}},{"type":"DELETE","kv":{"key":"L3N2Yy9h","mod_revision":"11"},"prev_kv":{"key":"L3N2Yy9h","value":"MQ=="}}]}}"#;
        let m = decode_watch_line(events).unwrap();
        assert_eq!(m.revision, 11);
        assert_eq!(m.events.len(), 2);
        assert_eq!(m.events[0].kind, EventKind::Put);
        assert_eq!(m.events[0].kv.key, b"/svc/a");
        assert_eq!(m.events[0].kv.value, b"1");
        assert_eq!(m.events[1].kind, EventKind::Delete);
        assert_eq!(m.events[1].kv.mod_revision, 11);

        let compacted = br#"{"result":{"header":{"cluster_id":"1","member_id":"2","raft_term":"2"},"canceled":true,"compact_revision":"12"}}"#;
        let m = decode_watch_line(compacted).unwrap();
        assert!(m.canceled);
        assert_eq!((m.compact_revision, m.revision), (12, 0));

        let denied = br#"{"result":{"header":{},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = PermissionDenied desc = etcdserver: permission denied"}}"#;
        let m = decode_watch_line(denied).unwrap();
        assert!(m.canceled && m.cancel_reason.contains("permission denied"));

        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"result\":1}",
            b"{\"other\":{}}",
            b"{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}",
        ] {
            assert!(
                decode_watch_line(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn grpc_codes_of_cancel_reasons() {
        let denied = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
        assert_eq!(grpc_code(denied), Some(7));
        let token = "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token";
        assert_eq!(grpc_code(token), Some(16));
        assert_eq!(grpc_code("no code here"), None);
        assert_eq!(grpc_code("code = Nonsense"), None);
    }
}
