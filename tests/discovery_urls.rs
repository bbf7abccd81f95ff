//! Discovery URLs (issue 24, the parsing): a table of valid and invalid URLs for every
//! scheme, including IPv6 hosts, several hosts, percent-encoding, missing paths and
//! refused credentials.

use std::path::PathBuf;

use waypost::Error;
use waypost::discovery::Target;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The features this build has, for the schemes that need one.
#[allow(clippy::match_like_matches_macro)] // all `false` in some builds
fn built_with(feature: &str) -> bool {
    match feature {
        "consul" => cfg!(feature = "consul"),
        "etcd" => cfg!(feature = "etcd"),
        "zk" => cfg!(feature = "zk"),
        "dnssrv" => cfg!(feature = "dnssrv"),
        "eureka" => cfg!(feature = "eureka"),
        _ => true,
    }
}

#[test]
fn valid_urls_of_every_scheme() {
    let consul = |addresses: &[&str], service: &str, tags: &[&str], passing, dc: Option<&str>| {
        Target::Consul {
            addresses: s(addresses),
            service: service.into(),
            tags: s(tags),
            passing,
            datacenter: dc.map(Into::into),
        }
    };
    let cases: Vec<(&str, Target)> = vec![
        (
            "consul://127.0.0.1:8500/billing",
            consul(&["http://127.0.0.1:8500"], "billing", &[], true, None),
        ),
        (
            "consul://agent/billing?tag=v2&tag=eu&passing=false&dc=dc%2D1",
            consul(
                &["http://agent:8500"],
                "billing",
                &["v2", "eu"],
                false,
                Some("dc-1"),
            ),
        ),
        (
            "consul+https://[::1]:8501,agent2/bill%20ing",
            consul(
                &["https://[::1]:8501", "https://agent2:8500"],
                "bill ing",
                &[],
                true,
                None,
            ),
        ),
        (
            "CONSUL://a/b",
            consul(&["http://a:8500"], "b", &[], true, None),
        ),
        (
            "etcd://10.0.0.1:2379,10.0.0.2/services/billing/",
            Target::Etcd {
                endpoints: s(&["http://10.0.0.1:2379", "http://10.0.0.2:2379"]),
                prefix: "/services/billing/".into(),
            },
        ),
        (
            "etcd+https://[2001:db8::1]/p",
            Target::Etcd {
                endpoints: s(&["https://[2001:db8::1]:2379"]),
                prefix: "/p/".into(),
            },
        ),
        (
            "zk://h1:2181,h2:2182/services/billing",
            Target::Zk {
                servers: s(&["h1:2181", "h2:2182"]),
                path: "/services/billing".into(),
                curator: false,
            },
        ),
        (
            "zk://h1/services/billing/?format=curator",
            Target::Zk {
                servers: s(&["h1:2181"]),
                path: "/services/billing".into(),
                curator: true,
            },
        ),
        (
            "dns+srv:///_billing._tcp.example.test",
            Target::DnsSrv {
                server: None,
                name: "_billing._tcp.example.test".into(),
            },
        ),
        (
            "dns+srv://10.0.0.53:5353/_billing._tcp.example.test",
            Target::DnsSrv {
                server: Some("10.0.0.53:5353".into()),
                name: "_billing._tcp.example.test".into(),
            },
        ),
        (
            "dns://[::1]/billing.example.test:8080",
            Target::DnsHost {
                server: Some("[::1]:53".into()),
                host: "billing.example.test".into(),
                port: 8080,
            },
        ),
        (
            "dns:///billing.example.test:80",
            Target::DnsHost {
                server: None,
                host: "billing.example.test".into(),
                port: 80,
            },
        ),
        (
            "eureka://10.0.0.1:8761,10.0.0.2/eureka/BILLING",
            Target::Eureka {
                service_urls: s(&["http://10.0.0.1:8761/eureka", "http://10.0.0.2:8761/eureka"]),
                app: "BILLING".into(),
            },
        ),
        (
            "eureka+https://e/eureka/v2/BILLING/",
            Target::Eureka {
                service_urls: s(&["https://e:8761/eureka/v2"]),
                app: "BILLING".into(),
            },
        ),
        (
            "file:///etc/waypost/billing%20list.txt",
            Target::File {
                path: PathBuf::from("/etc/waypost/billing list.txt"),
            },
        ),
        (
            "file://localhost/tmp/x",
            Target::File {
                path: PathBuf::from("/tmp/x"),
            },
        ),
        (
            "memory://billing",
            Target::Memory {
                name: "billing".into(),
            },
        ),
    ];
    for (url, expected) in cases {
        match Target::parse(url) {
            Ok(target) => assert_eq!(target, expected, "{url}"),
            Err(err) => {
                let feature = expected.feature().unwrap_or("none");
                assert!(!built_with(feature), "{url}: {err}");
                // Built without it: the error names the feature.
                assert!(
                    err.to_string().contains(&format!("`{feature}`")),
                    "{url}: {err}"
                );
            }
        }
    }
}

#[test]
fn invalid_urls_name_the_part_at_fault() {
    let cases: &[(&str, &str, &str)] = &[
        ("127.0.0.1:8500/billing", "url scheme", "scheme://"),
        (
            "http://127.0.0.1/billing",
            "url scheme",
            "unknown scheme \"http\"",
        ),
        (
            "consul://alice:s3cret@agent/billing",
            "url userinfo",
            "credentials",
        ),
        (
            "consul://agent/billing?token=s3cret",
            "url query",
            "\"token\"",
        ),
        (
            "consul://agent/billing?colour=red",
            "url query",
            "unknown parameter \"colour\"",
        ),
        (
            "consul://agent/billing?passing=maybe",
            "url query",
            "true or false",
        ),
        ("consul://agent", "url path", "SERVICE"),
        ("consul://agent/", "url path", "SERVICE"),
        ("consul:///billing", "url host", "at least one host"),
        ("consul://agent/a/b", "url path", "no `/`"),
        ("consul://agent:99999/billing", "url port", "\"99999\""),
        ("consul://agent:0/billing", "url port", "\"0\""),
        ("consul://agent:http/billing", "url port", "\"http\""),
        ("consul://[::1/billing", "url host", "unclosed"),
        ("consul://[nope]/billing", "url host", "not an IPv6"),
        ("consul://ag ent/billing", "url host", "not a host"),
        ("consul://agent/bill%zzing", "url path", "percent-encoding"),
        ("consul://agent/billing#x", "url", "fragment"),
        ("etcd://m1,/p", "url host", "not a host"),
        ("etcd://m1", "url path", "PREFIX"),
        ("zk://h/p?format=xml", "url query", "curator or plain"),
        ("zk://h", "url path", "PATH"),
        (
            "dns+srv://a,b/_x._tcp.test",
            "url host",
            "at most one server",
        ),
        ("dns+srv:///", "url path", "SRV NAME"),
        ("dns:///billing.example.test", "url port", "port"),
        ("eureka://e/BILLING", "url path", "base path"),
        ("file://host/tmp/x", "url host", "no host"),
        ("file://", "url path", "PATH"),
        ("memory://", "url host", "NAME"),
        ("memory://a/b", "url path", "no path"),
    ];
    for &(url, field, says) in cases {
        let err = Target::parse(url).expect_err(url);
        let Error::InvalidConfig { field: got, .. } = &err else {
            panic!("{url}: not InvalidConfig: {err:?}");
        };
        let message = err.to_string();
        let needs_feature = message.contains("cargo feature");
        assert!(
            (*got == field && message.contains(says)) || (needs_feature && *got == "url scheme"),
            "{url}: {got} / {message}"
        );
        assert!(
            !message.contains("s3cret"),
            "{url}: the secret is echoed: {message}"
        );
    }
}
