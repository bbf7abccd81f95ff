//! Byte-exact encodings, worked out by hand from the field tables of `zookeeper.jute`
//! and the measurements against ZooKeeper 3.8.0, and the replies as a server sends them.

use super::acl::{Acl, Id, perms};
use super::codec::{Encode, decode_exact};
use super::codes::{CreateMode, ErrorCode, EventType, KeeperState, OpCode, xid};
use super::error::ProtoError;
use super::frame::{DEFAULT_MAX_FRAME, FrameDecoder, encode_frame};
use super::handshake::*;
use super::records::*;
use super::requests::*;

/// Concatenates byte pieces: the expected encodings are written field by field.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

fn frame(records: &[&dyn Encode]) -> Vec<u8> {
    encode_frame(records, DEFAULT_MAX_FRAME).unwrap()
}

/// The one frame in `bytes`, through the decoder, which must then be empty.
fn unframe(bytes: &[u8]) -> Vec<u8> {
    let mut d = FrameDecoder::new();
    d.push(bytes);
    let body = d.next_frame().unwrap().expect("a whole frame");
    assert_eq!(d.buffered(), 0);
    body
}

const SID: i64 = 0x0100_000b_63bc_0014;
const SID_BYTES: [u8; 8] = [0x01, 0x00, 0x00, 0x0b, 0x63, 0xbc, 0x00, 0x14];
const PASSWORD: [u8; 16] = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xA, 0xB, 0xC, 0xD, 0xE, 0xF];

#[test]
fn a_new_sessions_connect_request_is_44_bytes_and_the_read_only_flag() {
    let bytes = frame(&[&ConnectRequest::new_session(10_000)]);
    let expected = cat(&[
        &[0, 0, 0, 45],      // frame length
        &[0, 0, 0, 0],       // protocolVersion
        &[0; 8],             // lastZxidSeen
        &[0, 0, 0x27, 0x10], // timeOut 10000
        &[0; 8],             // sessionId 0: a new session
        &[0, 0, 0, 16],      // passwd length
        &[0; 16],            // passwd
        &[0],                // readOnly false
    ]);
    assert_eq!(bytes, expected);
    assert_eq!(bytes.len(), 4 + ConnectRequest::SIZE);
    let body = unframe(&bytes);
    assert_eq!(
        decode_exact::<ConnectRequest>(&body),
        Ok(ConnectRequest::new_session(10_000))
    );
    // Without the flag (an old client) it is the bare jute record.
    let old = decode_exact::<ConnectRequest>(&body[..44]).unwrap();
    assert_eq!(old.read_only, None);
}

#[test]
fn a_reconnect_carries_the_session_and_the_last_zxid() {
    let request = ConnectRequest::resume(SID, PASSWORD.to_vec(), 0x36, 2000);
    let expected = cat(&[
        &[0, 0, 0, 45],
        &[0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0x36],
        &[0, 0, 0x07, 0xD0],
        &SID_BYTES,
        &[0, 0, 0, 16],
        &PASSWORD,
        &[0],
    ]);
    assert_eq!(frame(&[&request]), expected);
    let shown = format!("{request:?}");
    assert!(
        shown.contains("<16 bytes>") && !shown.contains("9, 8, 7"),
        "{shown}"
    );
}

#[test]
fn a_connect_response_is_36_bytes_or_37_with_the_flag() {
    let jute = cat(&[
        &[0, 0, 0, 0],
        &[0, 0, 0x27, 0x10],
        &SID_BYTES,
        &[0, 0, 0, 16],
        &PASSWORD,
    ]);
    assert_eq!(jute.len(), ConnectResponse::SIZE);
    let plain = decode_exact::<ConnectResponse>(&jute).unwrap();
    assert_eq!(
        plain,
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: 10_000,
            session_id: SID,
            password: PASSWORD.to_vec(),
            read_only: None,
        }
    );
    assert!(!plain.is_expired());
    let flagged = decode_exact::<ConnectResponse>(&cat(&[&jute, &[0]])).unwrap();
    assert_eq!(flagged.read_only, Some(false));
    assert_eq!(
        decode_exact::<ConnectResponse>(&cat(&[&jute, &[0, 0]])),
        Err(ProtoError::TrailingBytes(1))
    );
    assert!(matches!(
        decode_exact::<ConnectResponse>(&jute[..35]),
        Err(ProtoError::Truncated { .. })
    ));
    let mut encoded = Vec::new();
    encoded.extend(frame(&[&flagged]));
    assert_eq!(encoded, cat(&[&[0, 0, 0, 37], &jute, &[0]]));
}

#[test]
fn an_expired_session_is_answered_with_timeout_zero() {
    // Measured: timeOut 0, sessionId 0, 16 zero bytes, then the server closes.
    let expired = cat(&[&[0; 4], &[0; 4], &[0; 8], &[0, 0, 0, 16], &[0; 16], &[0]]);
    let response = decode_exact::<ConnectResponse>(&expired).unwrap();
    assert!(response.is_expired());
    assert_eq!(response.session_id, 0);
    let negative = cat(&[&[0; 4], &[0xFF; 4], &[0; 8], &[0, 0, 0, 0]]);
    assert!(
        decode_exact::<ConnectResponse>(&negative)
            .unwrap()
            .is_expired()
    );
}

#[test]
fn requests_are_a_header_and_a_body() {
    let get = PathWatchRequest {
        path: "/wire".to_owned(),
        watch: true,
    };
    let header = RequestHeader {
        xid: 1,
        op: OpCode::GetData,
    };
    let expected = cat(&[
        &[0, 0, 0, 18],
        &[0, 0, 0, 1],
        &[0, 0, 0, 4],
        &[0, 0, 0, 5],
        b"/wire",
        &[1],
    ]);
    assert_eq!(frame(&[&header, &get]), expected);

    let ping = RequestHeader {
        xid: xid::PING,
        op: OpCode::Ping,
    };
    assert_eq!(
        frame(&[&ping, &()]),
        [0, 0, 0, 8, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 0, 11]
    );
    let close = RequestHeader {
        xid: 9,
        op: OpCode::CloseSession,
    };
    assert_eq!(
        frame(&[&close]),
        [0, 0, 0, 8, 0, 0, 0, 9, 0xFF, 0xFF, 0xFF, 0xF5]
    );

    let delete = DeleteRequest {
        path: "/a".to_owned(),
        version: ANY_VERSION,
    };
    let header = RequestHeader {
        xid: 2,
        op: OpCode::Delete,
    };
    assert_eq!(
        frame(&[&header, &delete]),
        cat(&[
            &[0, 0, 0, 18],
            &[0, 0, 0, 2],
            &[0, 0, 0, 2],
            &[0, 0, 0, 2],
            b"/a",
            &[0xFF; 4]
        ])
    );

    // A fake server reads the header, then the body its opcode names.
    let body = unframe(&frame(&[&header, &delete]));
    let mut r = super::codec::Reader::new(&body);
    assert_eq!(super::codec::Decode::decode(&mut r), Ok(header));
    assert_eq!(super::codec::Decode::decode(&mut r), Ok(delete));
    assert_eq!(r.finish(), Ok(()));
    assert_eq!(
        decode_exact::<RequestHeader>(&[0, 0, 0, 1, 0, 0, 0, 6]),
        Err(ProtoError::UnknownValue {
            field: "OpCode",
            value: 6
        })
    );
}

#[test]
fn a_create_carries_path_data_acl_and_flags() {
    let create = CreateRequest {
        path: "/wire/e-".to_owned(),
        data: b"10.0.0.1:80".to_vec(),
        acl: Acl::open(),
        mode: CreateMode::EphemeralSequential,
    };
    let header = RequestHeader {
        xid: 3,
        op: OpCode::Create2,
    };
    let body = cat(&[
        &[0, 0, 0, 3],
        &[0, 0, 0, 15],
        &[0, 0, 0, 8],
        b"/wire/e-",
        &[0, 0, 0, 11],
        b"10.0.0.1:80",
        &[0, 0, 0, 1], // one ACL
        &[0, 0, 0, 31],
        &[0, 0, 0, 5],
        b"world",
        &[0, 0, 0, 6],
        b"anyone",
        &[0, 0, 0, 3], // flags: ephemeral sequential
    ]);
    let bytes = frame(&[&header, &create]);
    assert_eq!(bytes[..4], (body.len() as u32).to_be_bytes());
    assert_eq!(bytes[4..], body[..]);
    assert_eq!(decode_exact::<CreateRequest>(&body[8..]), Ok(create));
    // Containers and TTL nodes are not modelled: refused, not misread.
    let mut container = body[8..].to_vec();
    let last = container.len() - 1;
    container[last] = 4;
    assert_eq!(
        decode_exact::<CreateRequest>(&container),
        Err(ProtoError::UnknownValue {
            field: "CreateMode",
            value: 4
        })
    );

    let digest = Acl::new(perms::READ | perms::WRITE, Id::digest("user", "pass"));
    let acl_only = CreateRequest {
        path: "/s".to_owned(),
        data: Vec::new(),
        acl: vec![digest.clone()],
        mode: CreateMode::Persistent,
    };
    let body = unframe(&frame(&[&acl_only]));
    assert_eq!(decode_exact::<CreateRequest>(&body).unwrap().acl, [digest]);
}

fn stat() -> (Stat, Vec<u8>) {
    let stat = Stat {
        czxid: 0x36,
        mzxid: 0x37,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_000_001,
        version: 1,
        cversion: 2,
        aversion: 3,
        ephemeral_owner: SID,
        data_length: 11,
        num_children: 0,
        pzxid: 0x36,
    };
    let ctime = 1_700_000_000_000_i64.to_be_bytes();
    let mtime = 1_700_000_000_001_i64.to_be_bytes();
    let bytes = cat(&[
        &[0, 0, 0, 0, 0, 0, 0, 0x36],
        &[0, 0, 0, 0, 0, 0, 0, 0x37],
        &ctime,
        &mtime,
        &[0, 0, 0, 1],
        &[0, 0, 0, 2],
        &[0, 0, 0, 3],
        &SID_BYTES,
        &[0, 0, 0, 11],
        &[0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 0x36],
    ]);
    (stat, bytes)
}

#[test]
fn a_stat_is_68_bytes_in_jute_order() {
    let (stat, bytes) = stat();
    assert_eq!(bytes.len(), Stat::SIZE);
    assert_eq!(unframe(&frame(&[&stat])), bytes);
    assert_eq!(decode_exact::<Stat>(&bytes), Ok(stat));
    assert_eq!(
        decode_exact::<Stat>(&bytes[..67]),
        Err(ProtoError::Truncated {
            needed: 8,
            remaining: 7
        })
    );
}

fn reply_header(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
    cat(&[&xid.to_be_bytes(), &zxid.to_be_bytes(), &err.to_be_bytes()])
}

#[test]
fn an_error_reply_has_no_body() {
    // Measured: create of an existing node answers err -110 and 0 body bytes.
    let bytes = reply_header(1, 0x36, -110);
    let reply = Reply::parse(&bytes).unwrap();
    assert_eq!(reply.header.error(), Some(ErrorCode::NodeExists));
    assert!(reply.body.is_empty());
    let with_body = cat(&[&bytes, b"x"]);
    assert_eq!(Reply::parse(&with_body), Err(ProtoError::TrailingBytes(1)));
    assert_eq!(
        Reply::parse(&bytes[..15]),
        Err(ProtoError::Truncated {
            needed: 16,
            remaining: 15
        })
    );
    let unknown = reply_header(2, 0x36, -109);
    assert_eq!(
        Reply::parse(&unknown).unwrap().header.error(),
        Some(ErrorCode::Other(-109))
    );
}

#[test]
fn successful_replies_carry_their_bodies() {
    let (stat, stat_bytes) = stat();
    // create2: path and Stat.
    let bytes = cat(&[
        &reply_header(3, 0x36, 0),
        &[0, 0, 0, 18],
        b"/wire/e-0000000000",
        &stat_bytes,
    ]);
    let reply = Reply::parse(&bytes).unwrap();
    assert_eq!(
        reply.header,
        ReplyHeader {
            xid: 3,
            zxid: 0x36,
            err: 0
        }
    );
    assert_eq!(reply.header.error(), None);
    let created = reply.decode::<Create2Response>().unwrap();
    assert_eq!(created.path, "/wire/e-0000000000");
    assert_eq!(created.stat.ephemeral_owner, SID);
    // The same body is not a create's: its Stat is left over.
    assert_eq!(
        reply.decode::<CreateResponse>(),
        Err(ProtoError::TrailingBytes(68))
    );

    // getChildren2: names and the parent's Stat.
    let bytes = cat(&[
        &reply_header(4, 0x38, 0),
        &[0, 0, 0, 2],
        &[0, 0, 0, 1],
        b"a",
        &[0, 0, 0, 2],
        b"bc",
        &stat_bytes,
    ]);
    let children = Reply::parse(&bytes)
        .unwrap()
        .decode::<GetChildren2Response>()
        .unwrap();
    assert_eq!(children.children, ["a", "bc"]);
    assert_eq!(children.stat, stat);
    let bytes = cat(&[&reply_header(4, 0x38, 0), &[0, 0, 0, 0]]);
    let empty = Reply::parse(&bytes)
        .unwrap()
        .decode::<GetChildrenResponse>()
        .unwrap();
    assert!(empty.children.is_empty());

    // getData: null data (-1) reads as empty.
    let bytes = cat(&[&reply_header(5, 0x38, 0), &[0xFF; 4], &stat_bytes]);
    let data = Reply::parse(&bytes)
        .unwrap()
        .decode::<GetDataResponse>()
        .unwrap();
    assert_eq!(
        data,
        GetDataResponse {
            data: Vec::new(),
            stat
        }
    );

    // exists and setData: a bare Stat. delete, ping, auth: nothing.
    let bytes = cat(&[&reply_header(6, 0x38, 0), &stat_bytes]);
    assert_eq!(Reply::parse(&bytes).unwrap().decode::<Stat>(), Ok(stat));
    let ping = reply_header(xid::PING, 0x38, 0);
    assert_eq!(Reply::parse(&ping).unwrap().decode::<()>(), Ok(()));
}

#[test]
fn a_notification_is_xid_minus_one_and_a_watcher_event() {
    let bytes = cat(&[
        &reply_header(xid::NOTIFICATION, -1, 0),
        &[0, 0, 0, 4],
        &[0, 0, 0, 3],
        &[0, 0, 0, 5],
        b"/wire",
    ]);
    let reply = Reply::parse(&bytes).unwrap();
    assert_eq!(reply.header.xid, xid::NOTIFICATION);
    assert_eq!(
        reply.decode::<WatcherEvent>(),
        Ok(WatcherEvent {
            event_type: EventType::NodeChildrenChanged,
            state: KeeperState::SyncConnected,
            path: "/wire".to_owned(),
        })
    );
}

#[test]
fn addauth_is_type_scheme_and_credentials_and_never_shown() {
    let auth = AuthPacket::digest("user", "pass");
    let header = RequestHeader {
        xid: xid::AUTH,
        op: OpCode::Auth,
    };
    let expected = cat(&[
        &[0, 0, 0, 35],
        &[0xFF, 0xFF, 0xFF, 0xFC],
        &[0, 0, 0, 100],
        &[0, 0, 0, 0],
        &[0, 0, 0, 6],
        b"digest",
        &[0, 0, 0, 9],
        b"user:pass",
    ]);
    assert_eq!(frame(&[&header, &auth]), expected);
    assert_eq!(
        decode_exact::<AuthPacket>(&expected[12..]),
        Ok(auth.clone())
    );
    let shown = format!("{auth:?}");
    assert!(!shown.contains("pass"), "{shown}");
}

#[test]
fn set_watches_is_a_zxid_and_three_path_vectors() {
    let watches = SetWatches {
        relative_zxid: 0x36,
        data_watches: vec!["/sw".to_owned()],
        exist_watches: Vec::new(),
        child_watches: vec!["/a".to_owned(), "/b".to_owned()],
    };
    let header = RequestHeader {
        xid: xid::SET_WATCHES,
        op: OpCode::SetWatches,
    };
    let body = cat(&[
        &[0xFF, 0xFF, 0xFF, 0xF8],
        &[0, 0, 0, 101],
        &[0, 0, 0, 0, 0, 0, 0, 0x36],
        &[0, 0, 0, 1],
        &[0, 0, 0, 3],
        b"/sw",
        &[0, 0, 0, 0],
        &[0, 0, 0, 2],
        &[0, 0, 0, 2],
        b"/a",
        &[0, 0, 0, 2],
        b"/b",
    ]);
    assert_eq!(unframe(&frame(&[&header, &watches])), body);
    assert_eq!(decode_exact::<SetWatches>(&body[8..]), Ok(watches));
    // A null vector (-1) reads as empty.
    let nulls = cat(&[&[0; 8], &[0xFF; 4], &[0xFF; 4], &[0xFF; 4]]);
    assert_eq!(
        decode_exact::<SetWatches>(&nulls),
        Ok(SetWatches::default())
    );
}

#[test]
fn set_data_is_path_data_version_and_answers_a_stat() {
    let set = SetDataRequest {
        path: "/n".to_owned(),
        data: vec![1, 2],
        version: 0,
    };
    let body = cat(&[&[0, 0, 0, 2], b"/n", &[0, 0, 0, 2], &[1, 2], &[0, 0, 0, 0]]);
    assert_eq!(unframe(&frame(&[&set])), body);
    assert_eq!(decode_exact::<SetDataRequest>(&body), Ok(set));
}

#[test]
fn an_oversize_request_is_refused_before_it_is_sent() {
    // The server would close the connection without a word (jute.maxbuffer).
    let set = SetDataRequest {
        path: "/n".to_owned(),
        data: vec![0; 0x10_0000],
        version: ANY_VERSION,
    };
    let header = RequestHeader {
        xid: 7,
        op: OpCode::SetData,
    };
    assert_eq!(
        encode_frame(&[&header, &set], 0xF_FFFF),
        Err(ProtoError::TooLong {
            len: 0x10_0000 + 22,
            max: 0xF_FFFF
        })
    );
}
