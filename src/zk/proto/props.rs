//! Property tests of what the ZooKeeper client decodes from the network: the frame
//! decoder and every record decoder take any bytes without panicking, and every record
//! comes back as it was sent, however the stream is cut.

use std::fmt::Debug;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

use super::acl::{Acl, Id};
use super::codec::{Decode, Encode, decode_exact};
use super::codes::{CreateMode, EventType, KeeperState, OpCode};
use super::frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode_frame};
use super::handshake::*;
use super::records::*;
use super::requests::*;

/// Many cases: each is a decode of a few hundred bytes. `PROPTEST_CASES` overrides the
/// count for a longer hunt.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        // A failure is reported (minimised) in the test output; no file is written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Decodes `bytes` as every record, and as a reply with every body. Only that each
/// answers (`Ok` or `Err`) matters; a panic fails the property.
fn decode_everything(bytes: &[u8]) {
    let _ = decode_exact::<ConnectRequest>(bytes);
    let _ = decode_exact::<ConnectResponse>(bytes);
    let _ = decode_exact::<RequestHeader>(bytes);
    let _ = decode_exact::<ReplyHeader>(bytes);
    let _ = decode_exact::<AuthPacket>(bytes);
    let _ = decode_exact::<SetWatches>(bytes);
    let _ = decode_exact::<CreateRequest>(bytes);
    let _ = decode_exact::<DeleteRequest>(bytes);
    let _ = decode_exact::<PathWatchRequest>(bytes);
    let _ = decode_exact::<SetDataRequest>(bytes);
    let _ = decode_exact::<Acl>(bytes);
    if let Ok(reply) = Reply::parse(bytes) {
        let _ = reply.decode::<()>();
        let _ = reply.decode::<Stat>();
        let _ = reply.decode::<WatcherEvent>();
        let _ = reply.decode::<CreateResponse>();
        let _ = reply.decode::<Create2Response>();
        let _ = reply.decode::<GetDataResponse>();
        let _ = reply.decode::<GetChildrenResponse>();
        let _ = reply.decode::<GetChildren2Response>();
    }
}

/// Pieces of what a ZooKeeper stream holds: small ints (lengths, counts, -1 for
/// null, codes), longs, text, single bytes. Glued at random they often get past the
/// first length, which random bytes seldom do.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (-2i32..24).prop_map(|n| n.to_be_bytes().to_vec()),
        any::<i32>().prop_map(|n| n.to_be_bytes().to_vec()),
        any::<i64>().prop_map(|n| n.to_be_bytes().to_vec()),
        select(vec!["/", "/a", "world", "anyone", "digest", "\u{e9}"])
            .prop_map(|s| s.as_bytes().to_vec()),
        Just(vec![0xED, 0xA0, 0xBD]),
        any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |((czxid, mzxid, ctime, mtime), (version, cversion, aversion), rest)| {
                let (ephemeral_owner, data_length, num_children, pzxid) = rest;
                Stat {
                    czxid,
                    mzxid,
                    ctime,
                    mtime,
                    version,
                    cversion,
                    aversion,
                    ephemeral_owner,
                    data_length,
                    num_children,
                    pzxid,
                }
            },
        )
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), text(), text())
        .prop_map(|(perms, scheme, id)| Acl::new(perms, Id::new(scheme, id)))
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..5)
}

/// `value` framed, the stream cut at `cut`, pushed in two parts, decoded: the same.
/// Each strict prefix of the body is refused, if `whole_only` (a record whose last
/// field is mandatory).
fn round_trip<T>(value: &T, cut: Index, whole_only: bool) -> Result<(), TestCaseError>
where
    T: Encode + Decode + PartialEq + Debug,
{
    let stream = encode_frame(&[value], DEFAULT_MAX_FRAME).expect("a small record");
    let cut = cut.index(stream.len() + 1);
    let mut decoder = FrameDecoder::new();
    decoder.push(&stream[..cut]);
    if cut < stream.len() {
        prop_assert_eq!(decoder.next_frame(), Ok(None));
    }
    decoder.push(&stream[cut..]);
    let body = decoder
        .next_frame()
        .expect("a valid frame")
        .expect("a whole frame");
    prop_assert_eq!(decoder.buffered(), 0);
    let decoded = decode_exact::<T>(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, value);
    if whole_only {
        for end in 0..body.len() {
            prop_assert!(
                decode_exact::<T>(&body[..end]).is_err(),
                "{} of {} bytes",
                end,
                body.len()
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_frame_decoder_takes_any_bytes_in_any_pieces(
        stream in vec(any::<u8>(), 0..600),
        cuts in vec(any::<Index>(), 0..6),
        limit in prop_oneof![0usize..64, Just(DEFAULT_MAX_FRAME)],
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::with_limit(limit);
        let (mut frames, mut failed, mut from) = (Vec::new(), None, 0);
        'stream: for to in cuts {
            decoder.push(&stream[from..to]);
            from = to;
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= limit);
                        decode_everything(&frame);
                        frames.push(frame);
                    }
                    Ok(None) => break,
                    Err(err) => {
                        failed = Some(err);
                        break 'stream;
                    }
                }
            }
        }
        // What came out, framed again, is the start of the stream.
        let mut reframed = Vec::new();
        for frame in &frames {
            reframed.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            reframed.extend_from_slice(frame);
        }
        prop_assert!(stream.starts_with(&reframed));
        if failed.is_none() {
            prop_assert_eq!(reframed.len() + decoder.buffered(), stream.len());
        }
    }

    #[test]
    fn records_take_any_bytes(bytes in vec(any::<u8>(), 0..300)) {
        decode_everything(&bytes);
    }

    #[test]
    fn records_take_almost_valid_bytes(pieces in vec(piece(), 0..40)) {
        decode_everything(&pieces.concat());
    }

    #[test]
    fn the_handshake_round_trips(
        (version, zxid, timeout, session) in (any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>()),
        password in bytes(),
        read_only in any::<Option<bool>>(),
        cut in any::<Index>(),
    ) {
        let request = ConnectRequest {
            protocol_version: version,
            last_zxid_seen: zxid,
            timeout_ms: timeout,
            session_id: session,
            password: password.clone(),
            read_only,
        };
        round_trip(&request, cut, false)?;
        let response = ConnectResponse {
            protocol_version: version,
            timeout_ms: timeout,
            session_id: session,
            password,
            read_only,
        };
        round_trip(&response, cut, false)?;
    }

    #[test]
    fn session_records_round_trip(
        (xid, zxid, err) in (any::<i32>(), any::<i64>(), any::<i32>()),
        op in select(OpCode::KNOWN),
        (event, state, path) in (any::<i32>(), any::<i32>(), text()),
        (scheme, auth) in (text(), bytes()),
        (data, exist, child) in (texts(), texts(), texts()),
        stat in stat(),
        cut in any::<Index>(),
    ) {
        round_trip(&RequestHeader { xid, op }, cut, true)?;
        round_trip(&ReplyHeader { xid, zxid, err }, cut, true)?;
        round_trip(&stat, cut, true)?;
        let event = WatcherEvent {
            event_type: EventType::from_code(event),
            state: KeeperState::from_code(state),
            path,
        };
        round_trip(&event, cut, true)?;
        round_trip(&AuthPacket { auth_type: xid, scheme, auth }, cut, true)?;
        let watches = SetWatches {
            relative_zxid: zxid,
            data_watches: data,
            exist_watches: exist,
            child_watches: child,
        };
        round_trip(&watches, cut, true)?;
    }

    #[test]
    fn operation_records_round_trip(
        (path, data, version, watch) in (text(), bytes(), any::<i32>(), any::<bool>()),
        acls in vec(acl(), 0..4),
        mode in select(CreateMode::KNOWN),
        children in texts(),
        stat in stat(),
        cut in any::<Index>(),
    ) {
        let create = CreateRequest { path: path.clone(), data: data.clone(), acl: acls, mode };
        round_trip(&create, cut, true)?;
        round_trip(&CreateResponse { path: path.clone() }, cut, true)?;
        round_trip(&Create2Response { path: path.clone(), stat }, cut, true)?;
        round_trip(&DeleteRequest { path: path.clone(), version }, cut, true)?;
        round_trip(&PathWatchRequest { path: path.clone(), watch }, cut, true)?;
        let set = SetDataRequest { path, data: data.clone(), version };
        round_trip(&set, cut, true)?;
        round_trip(&GetDataResponse { data, stat }, cut, true)?;
        round_trip(&GetChildrenResponse { children: children.clone() }, cut, true)?;
        round_trip(&GetChildren2Response { children, stat }, cut, true)?;
    }

    #[test]
    fn a_reply_splits_into_its_header_and_body(
        (xid, zxid) in (any::<i32>(), any::<i64>()),
        children in texts(),
        stat in stat(),
    ) {
        let header = ReplyHeader { xid, zxid, err: 0 };
        let body = GetChildren2Response { children, stat };
        let stream = encode_frame(&[&header, &body], DEFAULT_MAX_FRAME).unwrap();
        let reply = Reply::parse(&stream[4..]).unwrap();
        prop_assert_eq!(reply.header, header);
        prop_assert_eq!(reply.decode::<GetChildren2Response>(), Ok(body));
    }
}
