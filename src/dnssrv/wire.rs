//! The DNS wire format, on simple-dns: the query to send, and what a packet that came
//! back says about it. No I/O.
//!
//! A packet is weighed against the query it may answer: a reply must carry the
//! query's id, the QR bit and exactly its question (name compared without regard to
//! ASCII case, type, class IN). Anything else is [`Reply::NotOurs`], for the caller to
//! drop (a late answer to an earlier query, a stray or spoofed datagram) and keep
//! waiting. Only a packet that claims to be ours (its id) and does not decode is
//! [`Reply::Malformed`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use simple_dns::rdata::{OPT, RData};
use simple_dns::{CLASS, Label, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, TYPE};

use super::resolver::Srv;
use crate::{BoxError, DnsErrorKind};

/// The EDNS0 UDP payload size advertised by default: 1232 bytes, the DNS Flag Day
/// 2020 value, which fits the IPv6 minimum MTU without fragmenting.
pub(crate) const DEFAULT_UDP_PAYLOAD: u16 = 1232;

/// The longest name on the wire, length bytes and root included (RFC 1035 2.3.4).
const MAX_NAME: usize = 255;
/// The longest label (RFC 1035 2.3.4).
const MAX_LABEL: usize = 63;

const QR: u16 = 0x8000;
const TC: u16 = 0x0200;
const OPCODE: u16 = 0x7800;
const RCODE: u16 = 0x000f;

const NOERROR: u16 = 0;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;
const REFUSED: u16 = 5;

/// The record types waypost asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordType {
    Srv,
    A,
    Aaaa,
}

impl RecordType {
    /// Its name, as [`DnsError::record_type`](crate::DnsError::record_type) holds it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecordType::Srv => "SRV",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }

    fn wire(self) -> TYPE {
        match self {
            RecordType::Srv => TYPE::SRV,
            RecordType::A => TYPE::A,
            RecordType::Aaaa => TYPE::AAAA,
        }
    }
}

/// Why a name cannot be asked: the `source` of a
/// [`DnsErrorKind::InvalidName`] error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidName(&'static str);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidName {}

/// `name` without its trailing dot, if it can be asked: not empty, no empty label, no
/// label over 63 bytes, at most 255 bytes on the wire.
pub(crate) fn check_name(name: &str) -> Result<&str, InvalidName> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(InvalidName("empty name"));
    }
    let mut wire_len = 1; // the root label
    for label in name.split('.') {
        if label.is_empty() {
            return Err(InvalidName("empty label"));
        }
        if label.len() > MAX_LABEL {
            return Err(InvalidName("label longer than 63 bytes"));
        }
        wire_len += 1 + label.len();
    }
    if wire_len > MAX_NAME {
        return Err(InvalidName("name longer than 255 bytes"));
    }
    Ok(name)
}

/// One query: its bytes, and what a reply to it must carry.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    id: u16,
    name: String,
    record_type: RecordType,
    bytes: Vec<u8>,
}

impl Query {
    /// A query for the `record_type` records of `name` with a random id, recursion
    /// desired, and an EDNS0 OPT record advertising `udp_payload_size`.
    pub(crate) fn new(
        name: &str,
        record_type: RecordType,
        udp_payload_size: u16,
    ) -> Result<Query, InvalidName> {
        let name = check_name(name)?;
        let id = crate::internal::rand::next_u64() as u16;
        let labels: Vec<Label<'_>> = name
            .split('.')
            .map(|label| Label::new_unchecked(label.as_bytes()))
            .collect();
        let mut packet = Packet::new_query(id);
        packet.set_flags(PacketFlag::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            Name::new_with_labels(&labels),
            QTYPE::TYPE(record_type.wire()),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        *packet.opt_mut() = Some(OPT {
            opt_codes: Vec::new(),
            udp_packet_size: udp_payload_size,
            version: 0,
        });
        // Writing into a Vec fails only on a name simple-dns cannot encode, which
        // check_name has already refused.
        let bytes = packet
            .build_bytes_vec()
            .map_err(|_| InvalidName("cannot be encoded"))?;
        Ok(Query {
            id,
            name: name.to_owned(),
            record_type,
            bytes,
        })
    }

    /// The bytes to send (over TCP, after a 2-byte length).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// What `packet` says about this query.
    pub(crate) fn parse_reply(&self, packet: &[u8]) -> Reply {
        let Some(&[id0, id1]) = packet.get(..2) else {
            return Reply::NotOurs("shorter than an id");
        };
        if u16::from_be_bytes([id0, id1]) != self.id {
            return Reply::NotOurs("another id");
        }
        let Some(&[f0, f1]) = packet.get(2..4) else {
            return Reply::Malformed("shorter than a header".into());
        };
        // Header bits are read from the bytes: simple-dns folds the rcode with the
        // OPT record's, and refuses a packet whose reserved Z bit is set.
        let flags = u16::from_be_bytes([f0, f1]);
        if flags & QR == 0 {
            return Reply::NotOurs("not a response");
        }
        if flags & OPCODE != 0 {
            return Reply::NotOurs("another opcode");
        }
        let rcode = flags & RCODE;
        let truncated = flags & TC != 0;
        let parsed = match Packet::parse(packet) {
            Ok(parsed) => parsed,
            // A server may cut a truncated packet anywhere; it is retried over TCP.
            Err(_) if truncated => return Reply::Truncated,
            Err(e) => return Reply::Malformed(Box::new(e)),
        };
        match parsed.questions.as_slice() {
            [question] if self.asks(question) => {}
            // Some servers answer FORMERR, NOTIMP or REFUSED without the question.
            [] if rcode != NOERROR && rcode != NXDOMAIN => return failure(rcode),
            _ => return Reply::NotOurs("another question"),
        }
        if truncated {
            return Reply::Truncated;
        }
        match rcode {
            NOERROR => Reply::Answer(self.answer(&parsed)),
            NXDOMAIN => Reply::Answer(negative(&parsed)),
            _ => failure(rcode),
        }
    }

    fn asks(&self, question: &Question<'_>) -> bool {
        question.qtype == QTYPE::TYPE(self.record_type.wire())
            && question.qclass == QCLASS::CLASS(CLASS::IN)
            && question.qname.get_labels().len() == self.name.split('.').count()
            && question
                .qname
                .as_bytes()
                .zip(self.name.split('.'))
                .all(|(got, asked)| got.eq_ignore_ascii_case(asked.as_bytes()))
    }

    /// A NOERROR reply: the records of the asked type in the answer section (those
    /// of a CNAME chain's end included), and for SRV the addresses of the additional
    /// section. No record is a negative answer.
    fn answer(&self, packet: &Packet<'_>) -> Answer {
        let mut answer = Answer::default();
        for record in packet.answers.iter().filter(|r| r.class == CLASS::IN) {
            let used = match (&record.rdata, self.record_type) {
                (RData::SRV(srv), RecordType::Srv) => {
                    let target = name_to_string(&srv.target);
                    answer
                        .srv
                        .push(Srv::new(srv.priority, srv.weight, srv.port, target));
                    true
                }
                (RData::A(a), RecordType::A) => {
                    answer.ips.push(IpAddr::V4(Ipv4Addr::from(a.address)));
                    true
                }
                (RData::AAAA(a), RecordType::Aaaa) => {
                    answer.ips.push(IpAddr::V6(Ipv6Addr::from(a.address)));
                    true
                }
                _ => false,
            };
            if used {
                answer.lower_ttl(record.ttl);
            }
        }
        if answer.is_negative() {
            return negative(packet);
        }
        if self.record_type == RecordType::Srv {
            for record in packet.additional_records.iter() {
                let ip = match (&record.rdata, record.class) {
                    (RData::A(a), CLASS::IN) => IpAddr::V4(Ipv4Addr::from(a.address)),
                    (RData::AAAA(a), CLASS::IN) => IpAddr::V6(Ipv6Addr::from(a.address)),
                    _ => continue,
                };
                let target = name_to_string(&record.name);
                answer.addresses.push((target, ip));
                answer.lower_ttl(record.ttl);
            }
        }
        answer
    }
}

/// What a packet says about a [`Query`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// Not a reply to the query (another id, not a response, another question):
    /// dropped. The reason is for a debug log.
    NotOurs(&'static str),
    /// Our id, but the packet does not decode.
    Malformed(BoxError),
    /// TC=1: the answer did not fit; ask again over TCP, never use it.
    Truncated,
    /// An error response code: `kind` is `ServerFailure`, `Refused` or `Rcode`.
    Failed { kind: DnsErrorKind, rcode: u16 },
    /// A positive answer, or a negative one (no records): NXDOMAIN or NODATA.
    Answer(Answer),
}

/// A positive or negative answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// SRV records, for an SRV query.
    pub(crate) srv: Vec<Srv>,
    /// Addresses, for an A or AAAA query.
    pub(crate) ips: Vec<IpAddr>,
    /// The addresses of targets in the additional section of an SRV answer.
    pub(crate) addresses: Vec<(String, IpAddr)>,
    /// The lowest TTL of the records used; for a negative answer, the SOA's negative
    /// TTL (RFC 2308: the lower of its TTL and its MINIMUM) when the server sent one.
    pub(crate) ttl: Option<Duration>,
}

impl Answer {
    /// True for NXDOMAIN or NODATA: no record of the asked type.
    pub(crate) fn is_negative(&self) -> bool {
        self.srv.is_empty() && self.ips.is_empty()
    }

    fn lower_ttl(&mut self, ttl: u32) {
        // RFC 2181 8: a TTL with the top bit set is read as zero.
        let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
        let ttl = Duration::from_secs(u64::from(ttl));
        self.ttl = Some(self.ttl.map_or(ttl, |old| old.min(ttl)));
    }
}

fn negative(packet: &Packet<'_>) -> Answer {
    let mut answer = Answer::default();
    for record in packet.name_servers.iter() {
        if let RData::SOA(soa) = &record.rdata {
            answer.lower_ttl(record.ttl.min(soa.minimum));
        }
    }
    answer
}

fn failure(rcode: u16) -> Reply {
    let kind = match rcode {
        SERVFAIL => DnsErrorKind::ServerFailure,
        REFUSED => DnsErrorKind::Refused,
        _ => DnsErrorKind::Rcode,
    };
    Reply::Failed { kind, rcode }
}

/// A name as text, without the trailing dot; the root is `"."`.
fn name_to_string(name: &Name<'_>) -> String {
    let mut text = String::new();
    for label in name.as_bytes() {
        if !text.is_empty() {
            text.push('.');
        }
        text.push_str(&String::from_utf8_lossy(label));
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use simple_dns::rdata::{A, AAAA, SOA, SRV};
    use simple_dns::{RCODE, ResourceRecord};

    const NAME: &str = "_api._tcp.example.test";

    fn srv_query() -> Query {
        Query::new(NAME, RecordType::Srv, DEFAULT_UDP_PAYLOAD).unwrap()
    }

    /// A reply to `query` (same id and question), for the test to fill.
    fn reply_to(query: &Query) -> Packet<'_> {
        Packet::parse(query.bytes()).unwrap().into_reply()
    }

    fn record<'a>(name: &'a str, ttl: u32, rdata: RData<'a>) -> ResourceRecord<'a> {
        ResourceRecord::new(Name::new_unchecked(name), CLASS::IN, ttl, rdata)
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData<'_> {
        RData::SRV(SRV {
            priority,
            weight,
            port,
            target: Name::new_unchecked(target),
        })
    }

    fn a(ip: [u8; 4]) -> RData<'static> {
        RData::A(A::from(Ipv4Addr::from(ip)))
    }

    fn soa(minimum: u32) -> RData<'static> {
        RData::SOA(SOA {
            mname: Name::new_unchecked("ns.example.test"),
            rname: Name::new_unchecked("admin.example.test"),
            serial: 1,
            refresh: 60,
            retry: 60,
            expire: 600,
            minimum,
        })
    }

    fn bytes(packet: &Packet<'_>) -> Vec<u8> {
        packet.build_bytes_vec_compressed().unwrap()
    }

    fn answer(reply: Reply) -> Answer {
        match reply {
            Reply::Answer(answer) => answer,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn a_query_has_a_random_id_rd_one_question_and_an_opt_record() {
        let query = Query::new("Host.Example.Test.", RecordType::Aaaa, 1400).unwrap();
        let packet = Packet::parse(query.bytes()).unwrap();
        assert_eq!(packet.id(), query.id);
        assert!(packet.has_flags(PacketFlag::RECURSION_DESIRED));
        assert!(!packet.has_flags(PacketFlag::RESPONSE));
        assert_eq!(packet.questions.len(), 1);
        let question = &packet.questions[0];
        assert_eq!(question.qname.to_string(), "Host.Example.Test");
        assert_eq!(question.qtype, QTYPE::TYPE(TYPE::AAAA));
        assert_eq!(question.qclass, QCLASS::CLASS(CLASS::IN));
        assert_eq!(packet.opt().map(|o| o.udp_packet_size), Some(1400));
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| srv_query().id).collect();
        assert!(ids.len() > 50, "ids repeat: {ids:?}");
    }

    #[test]
    fn names_that_cannot_be_asked_are_refused() {
        let long_label = "a".repeat(64);
        let long_name = vec!["a".repeat(63); 4].join("."); // 4 * 64 + 1 = 257 bytes
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
            assert!(Query::new(bad, RecordType::A, 512).is_err());
        }
        let longest = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "a".repeat(61));
        assert_eq!(check_name(&longest), Ok(longest.as_str()), "255 bytes");
        assert_eq!(check_name("a.b."), Ok("a.b"));
        assert_eq!(check_name(&"a".repeat(63)).map(str::len), Ok(63));
    }

    #[test]
    fn an_srv_answer_gives_records_addresses_and_the_lowest_ttl() {
        let query = srv_query();
        let mut reply = reply_to(&query);
        reply
            .answers
            .push(record(NAME, 30, srv(10, 60, 8080, "a.example.test.")));
        reply
            .answers
            .push(record(NAME, 20, srv(20, 0, 8081, "b.example.test")));
        reply
            .answers
            .push(record(NAME, 1, RData::A(A { address: 1 }))); // another type: unused
        reply
            .additional_records
            .push(record("a.example.test", 40, a([10, 0, 0, 1])));
        reply.additional_records.push(record(
            "b.example.test",
            25,
            RData::AAAA(AAAA::from(Ipv6Addr::LOCALHOST)),
        ));
        let got = answer(query.parse_reply(&bytes(&reply)));
        assert_eq!(
            got.srv,
            vec![
                Srv::new(10, 60, 8080, "a.example.test"),
                Srv::new(20, 0, 8081, "b.example.test")
            ]
        );
        assert_eq!(
            got.addresses,
            vec![
                ("a.example.test".to_owned(), IpAddr::from([10, 0, 0, 1])),
                ("b.example.test".to_owned(), IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ]
        );
        assert_eq!(got.ttl, Some(Duration::from_secs(20)));
        assert!(!got.is_negative());
    }

    #[test]
    fn an_address_answer_keeps_its_type_only_and_follows_a_cname() {
        let query = Query::new("www.example.test", RecordType::A, 512).unwrap();
        let mut reply = reply_to(&query);
        reply.answers.push(record(
            "www.example.test",
            300,
            RData::CNAME(simple_dns::rdata::CNAME(Name::new_unchecked(
                "web.example.test",
            ))),
        ));
        reply
            .answers
            .push(record("web.example.test", 60, a([127, 0, 0, 7])));
        reply.answers.push(record(
            "web.example.test",
            5,
            RData::AAAA(AAAA::from(Ipv6Addr::LOCALHOST)),
        ));
        let got = answer(query.parse_reply(&bytes(&reply)));
        assert_eq!(got.ips, vec![IpAddr::from([127, 0, 0, 7])]);
        assert_eq!(got.ttl, Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_root_target_and_a_huge_ttl_read_as_such() {
        let query = srv_query();
        let mut reply = reply_to(&query);
        reply
            .answers
            .push(record(NAME, u32::MAX, srv(0, 0, 0, ".")));
        let got = answer(query.parse_reply(&bytes(&reply)));
        assert!(got.srv[0].is_unavailable());
        assert_eq!(got.srv[0].target, ".");
        assert_eq!(got.ttl, Some(Duration::ZERO));
    }

    #[test]
    fn negative_answers_take_the_soa_negative_ttl() {
        let query = srv_query();
        let mut nxdomain = reply_to(&query);
        *nxdomain.rcode_mut() = RCODE::NameError;
        nxdomain
            .name_servers
            .push(record("example.test", 300, soa(30)));
        let got = answer(query.parse_reply(&bytes(&nxdomain)));
        assert!(got.is_negative());
        assert_eq!(got.ttl, Some(Duration::from_secs(30)));

        let mut nodata = reply_to(&query);
        nodata
            .name_servers
            .push(record("example.test", 10, soa(30)));
        nodata.answers.push(record(NAME, 50, a([127, 0, 0, 1]))); // not the asked type
        let got = answer(query.parse_reply(&bytes(&nodata)));
        assert!(got.is_negative());
        assert_eq!(got.ttl, Some(Duration::from_secs(10)));

        let bare = reply_to(&query);
        assert_eq!(answer(query.parse_reply(&bytes(&bare))), Answer::default());
    }

    #[test]
    fn error_codes_are_failures_with_their_number() {
        let query = srv_query();
        for (rcode, kind, number) in [
            (RCODE::ServerFailure, DnsErrorKind::ServerFailure, 2),
            (RCODE::Refused, DnsErrorKind::Refused, 5),
            (RCODE::NotImplemented, DnsErrorKind::Rcode, 4),
            (RCODE::FormatError, DnsErrorKind::Rcode, 1),
        ] {
            let mut reply = reply_to(&query);
            *reply.rcode_mut() = rcode;
            match query.parse_reply(&bytes(&reply)) {
                Reply::Failed { kind: k, rcode: n } => assert_eq!((k, n), (kind, number)),
                other => panic!("{rcode:?}: {other:?}"),
            }
            // Without the question, an error code is still ours.
            reply.questions.clear();
            assert!(matches!(
                query.parse_reply(&bytes(&reply)),
                Reply::Failed { .. }
            ));
        }
    }

    #[test]
    fn truncation_wins_even_over_a_cut_packet() {
        let query = srv_query();
        let mut reply = reply_to(&query);
        reply.set_flags(PacketFlag::TRUNCATION);
        reply
            .answers
            .push(record(NAME, 30, srv(1, 1, 1, "a.example.test")));
        let full = bytes(&reply);
        assert!(matches!(query.parse_reply(&full), Reply::Truncated));
        assert!(matches!(
            query.parse_reply(&full[..full.len() - 3]),
            Reply::Truncated
        ));
    }

    #[test]
    fn packets_that_are_not_our_reply_are_not_ours() {
        let query = srv_query();
        let reply = bytes(&reply_to(&query));
        let mut other_id = reply.clone();
        other_id[1] ^= 1;
        assert!(matches!(query.parse_reply(&other_id), Reply::NotOurs(_)));
        assert!(matches!(query.parse_reply(&reply[..1]), Reply::NotOurs(_)));
        assert!(matches!(
            query.parse_reply(query.bytes()),
            Reply::NotOurs(_)
        ));

        for (name, qtype, qclass) in [
            ("_web._tcp.example.test", TYPE::SRV, CLASS::IN),
            ("_api._tcp.example", TYPE::SRV, CLASS::IN),
            ("_api._tcp.example.test.more", TYPE::SRV, CLASS::IN),
            (NAME, TYPE::A, CLASS::IN),
            (NAME, TYPE::SRV, CLASS::CH),
        ] {
            let mut other = reply_to(&query);
            other.questions[0] = Question::new(
                Name::new_unchecked(name),
                QTYPE::TYPE(qtype),
                QCLASS::CLASS(qclass),
                false,
            );
            let got = query.parse_reply(&bytes(&other));
            assert!(
                matches!(got, Reply::NotOurs(_)),
                "{name} {qtype:?}: {got:?}"
            );
        }
        let mut two = reply_to(&query);
        two.questions.push(two.questions[0].clone());
        assert!(matches!(query.parse_reply(&bytes(&two)), Reply::NotOurs(_)));

        let mut shouting = reply_to(&query);
        shouting.questions[0].qname = Name::new_unchecked("_API._TCP.EXAMPLE.TEST");
        assert!(matches!(
            query.parse_reply(&bytes(&shouting)),
            Reply::Answer(_)
        ));
    }

    #[test]
    fn our_id_on_bytes_that_do_not_decode_is_malformed() {
        let query = srv_query();
        let reply = bytes(&reply_to(&query));
        let id = query.id.to_be_bytes();
        let mut garbage = vec![id[0], id[1], 0x81, 0x80, 0, 1, 0, 5];
        garbage.extend_from_slice(&[0xff; 20]);
        for bad in [&garbage[..], &reply[..3], &reply[..reply.len() - 1]] {
            assert!(
                matches!(query.parse_reply(bad), Reply::Malformed(_)),
                "{bad:?}"
            );
        }
    }

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(512);
        ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn full_reply(query: &Query) -> Vec<u8> {
        let mut reply = reply_to(query);
        reply
            .answers
            .push(record(NAME, 30, srv(10, 60, 8080, "a.example.test")));
        reply
            .answers
            .push(record(NAME, 20, srv(20, 5, 8081, "b.example.test")));
        reply
            .additional_records
            .push(record("a.example.test", 40, a([10, 0, 0, 1])));
        reply.name_servers.push(record("example.test", 10, soa(3)));
        bytes(&reply)
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_never_panic(packet in proptest::collection::vec(any::<u8>(), 0..600)) {
            let query = srv_query();
            let _ = query.parse_reply(&packet);
        }

        #[test]
        fn any_bytes_under_our_id_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..600),
            flags in any::<u16>(),
        ) {
            let query = srv_query();
            let mut packet = query.id.to_be_bytes().to_vec();
            packet.extend_from_slice(&(flags | QR).to_be_bytes());
            packet.extend_from_slice(&tail);
            let _ = query.parse_reply(&packet);
        }

        #[test]
        fn a_mutated_reply_never_panics(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
        ) {
            let query = srv_query();
            let mut packet = full_reply(&query);
            for (at, byte) in edits {
                let at = at.index(packet.len());
                packet[at] = byte;
            }
            if let Some(cut) = cut {
                packet.truncate(cut.index(packet.len() + 1));
            }
            let _ = query.parse_reply(&packet);
        }
    }
}
