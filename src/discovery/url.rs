//! Discovery URLs read into a [`Target`]; the grammar is in the module docs.

use std::path::PathBuf;

use crate::{Error, Result};

/// What a discovery URL names: a registry, its addresses, and what to watch there.
/// Made by [`Target::parse`]; see the [module docs](super) for the grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `consul://` or `consul+https://`.
    Consul {
        /// Agent addresses as `http://host:port` (`https://` for `consul+https`).
        addresses: Vec<String>,
        /// The service.
        service: String,
        /// Tags every instance must have (`tag=`, repeatable).
        tags: Vec<String>,
        /// Only instances passing their checks (`passing=`, default true).
        passing: bool,
        /// The datacenter (`dc=`), if not the agent's own.
        datacenter: Option<String>,
    },
    /// `etcd://` or `etcd+https://`.
    Etcd {
        /// Member addresses as `http://host:port` (`https://` for `etcd+https`).
        endpoints: Vec<String>,
        /// The key prefix, from the path: leading `/` kept, a trailing `/` added when
        /// missing, so that `/services/billing` neither lists `/services/billing-v2/..`
        /// nor registers `/services/billing10.0.0.1:80`.
        prefix: String,
    },
    /// `zk://`.
    Zk {
        /// Servers as `host:port`.
        servers: Vec<String>,
        /// The parent node whose children are the instances.
        path: String,
        /// Children hold Curator's service-discovery JSON (`format=curator`).
        curator: bool,
    },
    /// `dns+srv://`: the SRV records of a name.
    DnsSrv {
        /// The name server as `host:port`, or `None` for the system's.
        server: Option<String>,
        /// The SRV name (`_service._proto.domain`).
        name: String,
    },
    /// `dns://`: the A/AAAA records of a host, with a port.
    DnsHost {
        /// The name server as `host:port`, or `None` for the system's.
        server: Option<String>,
        /// The host name.
        host: String,
        /// The port every address gets.
        port: u16,
    },
    /// `eureka://` or `eureka+https://`.
    Eureka {
        /// Service URLs as `http://host:port/BASE` (`https://` for `eureka+https`).
        service_urls: Vec<String>,
        /// The application name.
        app: String,
    },
    /// `file://`.
    File {
        /// The instances file.
        path: PathBuf,
    },
    /// `memory://`: a process-wide named registry.
    Memory {
        /// The registry's name.
        name: String,
    },
}

impl Target {
    /// Reads a discovery URL (see the [module docs](super)).
    ///
    /// ```
    /// use waypost::discovery::Target;
    /// let target = Target::parse("file:///etc/waypost/billing%20v2.txt")?;
    /// assert_eq!(target, Target::File { path: "/etc/waypost/billing v2.txt".into() });
    /// // Backends' URLs parse the same way, in a build with their feature.
    /// let err = Target::parse("consul://alice:secret@agent/billing").unwrap_err();
    /// assert!(!err.to_string().contains("secret"));
    /// # Ok::<(), waypost::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<Target> {
        let url = Parts::split(url)?;
        match url.scheme.as_str() {
            "consul" | "consul+https" => consul(&url),
            "etcd" | "etcd+https" => etcd(&url),
            "zk" => zk(&url),
            "dns+srv" => dns_srv(&url),
            "dns" => dns_host(&url),
            "eureka" | "eureka+https" => eureka(&url),
            "file" => file(&url),
            "memory" => memory(&url),
            other => Err(Error::invalid_config(
                "url scheme",
                format!(
                    "unknown scheme {other:?}: expected consul, consul+https, etcd, etcd+https, \
                     zk, dns+srv, dns, eureka, eureka+https, file or memory"
                ),
            )),
        }
    }

    /// The cargo feature this target's backend needs, if any.
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            Target::Consul { .. } => Some("consul"),
            Target::Etcd { .. } => Some("etcd"),
            Target::Zk { .. } => Some("zk"),
            Target::DnsSrv { .. } | Target::DnsHost { .. } => Some("dnssrv"),
            Target::Eureka { .. } => Some("eureka"),
            Target::File { .. } | Target::Memory { .. } => None,
        }
    }
}

/// A URL cut into its parts, before any scheme's rules.
struct Parts {
    scheme: String,
    /// The authority, split at commas; empty for `scheme:///path`.
    hosts: Vec<String>,
    /// The path, percent-decoded, leading `/` kept.
    path: String,
    /// The query's pairs, percent-decoded, in order.
    query: Vec<(String, String)>,
}

impl Parts {
    fn split(url: &str) -> Result<Parts> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(Error::invalid_config(
                "url scheme",
                "no `scheme://`: expected e.g. consul://127.0.0.1:8500/SERVICE",
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        if rest.contains('#') {
            return Err(Error::invalid_config(
                "url",
                "a fragment (`#...`) means nothing here",
            ));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            // Not echoed: it may hold a password.
            return Err(Error::invalid_config(
                "url userinfo",
                "credentials do not belong in a URL (URLs end up in logs); \
                 give them through the options or the environment",
            ));
        }
        let hosts = match authority {
            "" => Vec::new(),
            authority => authority.split(',').map(str::to_owned).collect(),
        };
        let query = (query.split('&').filter(|pair| !pair.is_empty()))
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((decode(key, "url query")?, decode(value, "url query")?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Parts {
            scheme,
            hosts,
            path: decode(path, "url path")?,
            query,
        })
    }

    fn https(&self) -> bool {
        self.scheme.ends_with("+https")
    }

    /// Every host as `host:port`, `default` where none is given; at least one.
    fn hosts(&self, default: u16) -> Result<Vec<String>> {
        if self.hosts.is_empty() {
            return Err(Error::invalid_config(
                "url host",
                format!("{}:// needs at least one host", self.scheme),
            ));
        }
        self.hosts.iter().map(|h| host_port(h, default)).collect()
    }

    /// The hosts as `http(s)://host:port`.
    fn urls(&self, default: u16) -> Result<Vec<String>> {
        let scheme = if self.https() { "https" } else { "http" };
        Ok((self.hosts(default)?.into_iter())
            .map(|h| format!("{scheme}://{h}"))
            .collect())
    }

    /// At most one host: the optional server of a DNS URL.
    fn server(&self, default: u16) -> Result<Option<String>> {
        match self.hosts.as_slice() {
            [] => Ok(None),
            [one] => host_port(one, default).map(Some),
            _ => Err(Error::invalid_config(
                "url host",
                "a DNS URL names at most one server",
            )),
        }
    }

    /// The path without its leading `/`, which must not be empty.
    fn name(&self, what: &str) -> Result<&str> {
        match self.path.trim_start_matches('/') {
            "" => Err(Error::invalid_config(
                "url path",
                format!("{}:// needs {what} as its path", self.scheme),
            )),
            name => Ok(name),
        }
    }

    /// Refuses any query key not in `known` (and says why for `token`).
    fn only(&self, known: &[&str]) -> Result<()> {
        for (key, _) in &self.query {
            if key == "token" || key == "password" {
                return Err(Error::invalid_config(
                    "url query",
                    format!(
                        "{key:?} does not belong in a URL (URLs end up in logs); give it through the options or the environment"
                    ),
                ));
            }
            if !known.contains(&key.as_str()) {
                return Err(Error::invalid_config(
                    "url query",
                    format!(
                        "unknown parameter {key:?} for {}:// (known: {known:?})",
                        self.scheme
                    ),
                ));
            }
        }
        Ok(())
    }

    fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        (self.query.iter())
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The last `key=` value, one of two spellings: `true` for `on`, `false` for
    /// `off`, `default` when there is none; anything else is an error.
    fn either(&self, key: &str, on: &str, off: &str, default: bool) -> Result<bool> {
        match self.values(key).last() {
            None => Ok(default),
            Some(value) if value == on => Ok(true),
            Some(value) if value == off => Ok(false),
            Some(other) => Err(Error::invalid_config(
                "url query",
                format!("{key}={other:?}: {on} or {off}"),
            )),
        }
    }

    /// The feature `feature` is on, or an error naming it.
    fn needs(&self, feature: &str, on: bool) -> Result<()> {
        if on {
            return Ok(());
        }
        Err(Error::invalid_config(
            "url scheme",
            format!(
                "{}:// needs waypost's `{feature}` cargo feature, which this build leaves out",
                self.scheme
            ),
        ))
    }
}

/// `host[:port]` (IPv6 in brackets) as `host:port`.
fn host_port(host: &str, default: u16) -> Result<String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(Error::invalid_config(
                "url host",
                format!("unclosed `[` in {host:?}"),
            ));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Error::invalid_config(
                "url host",
                format!("{ip:?} is not an IPv6 address"),
            ));
        }
        match after {
            "" => (format!("[{ip}]"), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (format!("[{ip}]"), Some(port)),
                None => {
                    return Err(Error::invalid_config(
                        "url host",
                        format!("{host:?}: junk after `]`"),
                    ));
                }
            },
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.to_owned(), None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if name.is_empty() || (!name.starts_with('[') && !name.chars().all(valid)) {
        return Err(Error::invalid_config(
            "url host",
            format!("{host:?} is not a host name or address"),
        ));
    }
    let port = match port {
        None => default,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| {
                Error::invalid_config("url port", format!("{port:?} is not a port (1-65535)"))
            })?,
    };
    Ok(format!("{name}:{port}"))
}

/// Percent-decodes `s` (as UTF-8).
fn decode(s: &str, field: &'static str) -> Result<String> {
    let bad = || Error::invalid_config(field, format!("bad percent-encoding in {s:?}"));
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b != b'%' {
            bytes.push(b);
            continue;
        }
        let hex = [it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?];
        let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
        bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

fn consul(url: &Parts) -> Result<Target> {
    url.needs("consul", cfg!(feature = "consul"))?;
    url.only(&["tag", "passing", "dc"])?;
    let service = url.name("a SERVICE")?;
    if service.contains('/') {
        return Err(Error::invalid_config(
            "url path",
            "a Consul service name has no `/`",
        ));
    }
    let passing = url.either("passing", "true", "false", true)?;
    Ok(Target::Consul {
        addresses: url.urls(8500)?,
        service: service.to_owned(),
        tags: url.values("tag").map(str::to_owned).collect(),
        passing,
        datacenter: url.values("dc").last().map(str::to_owned),
    })
}

fn etcd(url: &Parts) -> Result<Target> {
    url.needs("etcd", cfg!(feature = "etcd"))?;
    url.only(&[])?;
    url.name("a key PREFIX")?;
    let mut prefix = url.path.clone();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(Target::Etcd {
        endpoints: url.urls(2379)?,
        prefix,
    })
}

fn zk(url: &Parts) -> Result<Target> {
    url.needs("zk", cfg!(feature = "zk"))?;
    url.only(&["format"])?;
    url.name("a node PATH")?;
    let curator = url.either("format", "curator", "plain", false)?;
    Ok(Target::Zk {
        servers: url.hosts(2181)?,
        path: url.path.trim_end_matches('/').to_owned(),
        curator,
    })
}

fn dns_srv(url: &Parts) -> Result<Target> {
    url.needs("dnssrv", cfg!(feature = "dnssrv"))?;
    url.only(&[])?;
    Ok(Target::DnsSrv {
        server: url.server(53)?,
        name: url.name("an SRV NAME")?.to_owned(),
    })
}

fn dns_host(url: &Parts) -> Result<Target> {
    url.needs("dnssrv", cfg!(feature = "dnssrv"))?;
    url.only(&[])?;
    let host_and_port = host_port(url.name("HOST:PORT")?, 0)?;
    let (host, port) = host_and_port
        .rsplit_once(':')
        .expect("host_port gives a port");
    let port = port.parse().ok().filter(|&p| p != 0).ok_or_else(|| {
        Error::invalid_config(
            "url port",
            "dns:// needs the port: dns://[SERVER]/HOST:PORT",
        )
    })?;
    Ok(Target::DnsHost {
        server: url.server(53)?,
        host: host.to_owned(),
        port,
    })
}

fn eureka(url: &Parts) -> Result<Target> {
    url.needs("eureka", cfg!(feature = "eureka"))?;
    url.only(&[])?;
    let path = url.name("BASE/APP")?.trim_end_matches('/');
    let Some((base, app)) = path.rsplit_once('/') else {
        return Err(Error::invalid_config(
            "url path",
            "eureka:// needs the server's base path and the app: eureka://HOST/eureka/APP",
        ));
    };
    Ok(Target::Eureka {
        service_urls: (url.urls(8761)?.into_iter())
            .map(|u| format!("{u}/{base}"))
            .collect(),
        app: app.to_owned(),
    })
}

fn file(url: &Parts) -> Result<Target> {
    url.only(&[])?;
    if !matches!(url.hosts.as_slice(), [] | [_])
        || url.hosts.first().is_some_and(|h| h != "localhost")
    {
        return Err(Error::invalid_config(
            "url host",
            "file:// takes no host: file:///ABSOLUTE/PATH",
        ));
    }
    url.name("an absolute PATH")?;
    Ok(Target::File {
        path: PathBuf::from(&url.path),
    })
}

fn memory(url: &Parts) -> Result<Target> {
    url.only(&[])?;
    if !matches!(url.path.as_str(), "" | "/") {
        return Err(Error::invalid_config(
            "url path",
            "memory://NAME takes no path",
        ));
    }
    match url.hosts.as_slice() {
        [name] => Ok(Target::Memory { name: name.clone() }),
        _ => Err(Error::invalid_config(
            "url host",
            "memory:// needs one NAME: memory://NAME",
        )),
    }
}
