//! `resolv.conf`, read as glibc reads it, and the names a search list makes of a
//! name.
//!
//! Understood: `nameserver` (IPv4 or IPv6, port 53, at most 3; an IPv6 scope must
//! be numeric), `domain` and `search` (the last of the two wins), and the options
//! `ndots:N` (default 1, at most 15), `timeout:N` (seconds, default 5, 1 to 30),
//! `attempts:N` (default 2, 1 to 5) and `rotate`. A `#` or `;` starts a comment;
//! other lines and options are ignored, and a bad address is skipped with a debug
//! log. With no usable `nameserver`, the server is `127.0.0.1:53`, as glibc's
//! default. Not read: the `LOCALDOMAIN` and `RES_OPTIONS` environment variables,
//! and the host name's domain glibc searches when there is no `search` line.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use log::debug;

const LOG: &str = "waypost::dnssrv";

/// glibc's `MAXNS`: the name servers after the third are ignored.
const MAX_NAMESERVERS: usize = 3;
const DNS_PORT: u16 = 53;

/// What a resolv.conf says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvConf {
    /// The name servers, in order; never empty.
    pub(crate) nameservers: Vec<SocketAddr>,
    /// The search domains, without trailing dots.
    pub(crate) search: Vec<String>,
    /// A name with at least this many dots is tried as is before the search list.
    pub(crate) ndots: u8,
    /// The time one attempt waits for an answer.
    pub(crate) timeout: Duration,
    /// How many rounds over the servers a query makes.
    pub(crate) attempts: u32,
    /// Start each query at the next server rather than the first.
    pub(crate) rotate: bool,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![SocketAddr::from(([127, 0, 0, 1], DNS_PORT))],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        }
    }
}

impl ResolvConf {
    /// Reads the text of a resolv.conf. Never fails: what is not understood is
    /// ignored.
    pub(crate) fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        let mut nameservers = Vec::new();
        for line in text.lines() {
            let line = match line.find(['#', ';']) {
                Some(at) => &line[..at],
                None => line,
            };
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => match words.next().and_then(parse_nameserver) {
                    Some(_) if nameservers.len() == MAX_NAMESERVERS => {
                        debug!(target: LOG, "resolv.conf: more than {MAX_NAMESERVERS} name servers, {line:?} ignored");
                    }
                    Some(server) => nameservers.push(server),
                    None => debug!(target: LOG, "resolv.conf: bad name server skipped: {line:?}"),
                },
                Some("domain") => {
                    conf.search = words.next().into_iter().filter_map(domain).collect();
                }
                Some("search") => conf.search = words.filter_map(domain).collect(),
                Some("options") => words.for_each(|option| conf.option(option)),
                _ => {}
            }
        }
        if !nameservers.is_empty() {
            conf.nameservers = nameservers;
        }
        conf
    }

    fn option(&mut self, option: &str) {
        let (name, value) = match option.split_once(':') {
            Some((name, value)) => (name, value.parse::<u32>().ok()),
            None => (option, None),
        };
        match (name, value) {
            ("ndots", Some(n)) => self.ndots = n.min(15) as u8,
            ("timeout", Some(n)) => self.timeout = Duration::from_secs(n.clamp(1, 30).into()),
            ("attempts", Some(n)) => self.attempts = n.clamp(1, 5),
            ("rotate", None) => self.rotate = true,
            _ => debug!(target: LOG, "resolv.conf: option {option:?} ignored"),
        }
    }

    /// The names to ask for `name`, in order (glibc's `res_search`): a name ending
    /// in `.` alone; a name with at least `ndots` dots as is, then with each search
    /// domain; one with fewer, with each search domain, then as is.
    pub(crate) fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') || self.search.is_empty() {
            return vec![name.to_owned()];
        }
        let searched = self.search.iter().map(|domain| format!("{name}.{domain}"));
        let dots = name.bytes().filter(|&b| b == b'.').count();
        if dots >= usize::from(self.ndots) {
            std::iter::once(name.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_owned())).collect()
        }
    }
}

fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    let (ip, scope) = text.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope: u32 = scope.parse().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope)))
}

fn domain(text: &str) -> Option<String> {
    let text = text.strip_suffix('.').unwrap_or(text);
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_glibc_s_default() {
        let conf = ResolvConf::parse("");
        assert_eq!(conf, ResolvConf::default());
        assert_eq!(conf.nameservers, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts, conf.rotate),
            (1, Duration::from_secs(5), 2, false)
        );
    }

    #[test]
    fn nameservers_keep_their_order_up_to_three_and_skip_bad_ones() {
        let conf = ResolvConf::parse(
            "# a comment\n\
             ; another\n\
             nameserver 10.0.0.1\n\
             nameserver not-an-address\n\
             nameserver\n\
             nameserver 2001:db8::1 # trailing comment\n\
             nameserver\tfe80::1%2\n\
             nameserver fe80::1%eth0\n\
             nameserver 10.0.0.4\n\
             nameservers 10.0.0.5\n",
        );
        let want: Vec<SocketAddr> = vec![
            "10.0.0.1:53".parse().unwrap(),
            "[2001:db8::1]:53".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2)),
        ];
        assert_eq!(conf.nameservers, want);
    }

    #[test]
    fn the_last_of_domain_and_search_wins() {
        let conf = ResolvConf::parse("search a.test b.test.\ndomain c.test\n");
        assert_eq!(conf.search, ["c.test"]);
        let conf = ResolvConf::parse("domain c.test\nsearch a.test b.test. ; x.test\n");
        assert_eq!(conf.search, ["a.test", "b.test"]);
        let conf = ResolvConf::parse("search a.test\nsearch\n");
        assert!(conf.search.is_empty());
    }

    #[test]
    fn options_are_read_and_capped() {
        let conf = ResolvConf::parse("options ndots:3 timeout:2 attempts:4 rotate edns0 ndots:x\n");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts, conf.rotate),
            (3, Duration::from_secs(2), 4, true)
        );
        let conf = ResolvConf::parse("options ndots:99 timeout:99 attempts:99\n");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (15, Duration::from_secs(30), 5)
        );
        let conf = ResolvConf::parse("options timeout:0 attempts:0 ndots:0\noptions rotate:1");
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts, conf.rotate),
            (0, Duration::from_secs(1), 1, false)
        );
    }

    #[test]
    fn candidates_follow_ndots_and_the_search_list() {
        let mut conf = ResolvConf::parse("search a.test b.test\noptions ndots:2\n");
        assert_eq!(
            conf.candidates("api"),
            ["api.a.test", "api.b.test", "api"],
            "fewer dots: the search list first"
        );
        assert_eq!(
            conf.candidates("_api._tcp.svc"),
            [
                "_api._tcp.svc",
                "_api._tcp.svc.a.test",
                "_api._tcp.svc.b.test"
            ],
            "enough dots: as is first"
        );
        assert_eq!(conf.candidates("api.svc."), ["api.svc."], "absolute");
        conf.ndots = 0;
        assert_eq!(conf.candidates("api")[0], "api");
        conf.search.clear();
        assert_eq!(conf.candidates("api"), ["api"]);
    }
}
