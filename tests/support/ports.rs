//! Free ports on 127.0.0.1 for a test server, by name: chosen at run time, all held
//! until every one is chosen, so two of a start never collide.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

/// How a server uses one of its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    /// Clients know it: a restart keeps it, even when another port must move.
    pub kept: bool,
    /// Must be free for UDP as well as TCP.
    pub udp: bool,
}

impl Port {
    /// A port clients connect to (TCP).
    pub const CLIENT: Port = Port {
        kept: true,
        udp: false,
    };
    /// A port only the server itself uses (TCP): may move on a restart.
    pub const INTERNAL: Port = Port {
        kept: false,
        udp: false,
    };

    /// The same, also free for UDP.
    pub const fn and_udp(self) -> Port {
        Port { udp: true, ..self }
    }
}

/// The ports of one start, by the names the harness gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(Vec<(&'static str, u16)>);

impl Ports {
    /// The port called `name`; panics when there is none.
    pub fn get(&self, name: &str) -> u16 {
        self.find(name)
            .unwrap_or_else(|| panic!("no port called {name:?}: {self:?}"))
    }

    /// The port called `name`, if the server has one.
    pub fn find(&self, name: &str) -> Option<u16> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    /// Free ports for `wanted`; with `old`, kept ports stay as they are.
    pub(super) fn pick(wanted: &[(&'static str, Port)], old: Option<&Ports>) -> Ports {
        let mut held = Vec::new(); // every listener and socket, until all are chosen
        let mut taken: Vec<u16> = old
            .map(|o| o.0.iter().map(|p| p.1).collect())
            .unwrap_or_default();
        let mut chosen = Vec::new();
        for &(name, port) in wanted {
            if let Some(kept) = old.filter(|_| port.kept).and_then(|o| o.find(name)) {
                chosen.push((name, kept));
                continue;
            }
            loop {
                let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
                let number = tcp.local_addr().expect("local addr").port();
                let udp = match port.udp {
                    true => UdpSocket::bind((Ipv4Addr::LOCALHOST, number)).ok(),
                    false => None,
                };
                if taken.contains(&number) || (port.udp && udp.is_none()) {
                    continue;
                }
                held.push((tcp, udp));
                taken.push(number);
                chosen.push((name, number));
                break;
            }
        }
        Ports(chosen)
    }
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(|(n, p)| format!("{n} {p}")).collect();
        f.write_str(&all.join(", "))
    }
}
