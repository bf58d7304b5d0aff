//! Capture of hard-coded destinations: whatever host and port a student's
//! program talks to, the lab's servers answer, and the report says so.
//!
//! Inside a run's network namespace:
//!
//! - every IPv4 and IPv6 destination is local ([`netlink`]: a `local` route
//!   for 0.0.0.0/0 and ::/0 on loopback), so `connect("191.101.232.165")`
//!   or `sendto("10.0.0.1")` stays in the namespace;
//! - [`steer`] (BPF `sk_lookup`) hands each connection or datagram to the
//!   server bound to its port, whatever its address, and — where the lab
//!   allows it — traffic for a port no server uses to the lab's server for
//!   that protocol (SMTP for 25/465/587, HTTP for 80/8080 …);
//! - host names resolve through netgrade's resolver (the program sees its own
//!   `/etc/resolv.conf`, `/etc/hosts` and `/etc/nsswitch.conf`, bound over the
//!   real ones in a private mount namespace);
//! - the namespace's traffic watcher ([`crate::servers::sniffer`]) records
//!   every destination that was not a server's own address, and which
//!   server answered in its place ([`Table::classify`]).

pub mod netlink;
pub mod steer;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::sandbox::NetNs;
use crate::spec::ServerKind;
use crate::trace::{EventKind, Transport};
pub use steer::{Route, Steering};

/// Where the program's resolver (`/etc/resolv.conf`) points.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);

/// Makes every destination local in `ns`, and gives the resolver its address.
pub fn make_everything_local(ns: &NetNs) -> std::io::Result<()> {
    ns.run(|| {
        // Sockets that bind no port get one in the dynamic range, where
        // steering never sends traffic to a default socket.
        let (low, high) = steer::EPHEMERAL_PORTS;
        std::fs::write(
            "/proc/sys/net/ipv4/ip_local_port_range",
            format!("{low} {high}"),
        )?;
        netlink::route_everything_local(libc::AF_INET)?;
        // A namespace whose IPv6 is disabled keeps IPv6 unreachable; that is all.
        let _ = netlink::route_everything_local(libc::AF_INET6);
        // An address besides 127.0.0.1 also makes glibc's AI_ADDRCONFIG see
        // IPv4 as configured, so lookups in the namespace ask for A records.
        netlink::add_loopback_address(IpAddr::V4(RESOLVER), 8)
    })?
}

/// The system files the program sees in place of the host's, written under
/// `dir`; returns `(source, target)` pairs to bind.
pub fn system_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let files = [
        (
            "resolv.conf",
            format!("# netgrade: every name resolves to the lab's servers\nnameserver {RESOLVER}\noptions timeout:2 attempts:2\n"),
        ),
        // IPv4 only: the servers listen on IPv4, and `create_connection`
        // would otherwise try ::1 first and be refused.
        ("hosts", "127.0.0.1\tlocalhost\n".to_string()),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\nethers: files\nrpc: files\n".to_string(),
        ),
    ];
    let mut binds = Vec::new();
    for (name, text) in files {
        let source = dir.join(name);
        std::fs::write(&source, text)?;
        let target = Path::new("/etc").join(name);
        // A bind needs an existing target (through a symlink, its target).
        if std::fs::metadata(&target).is_ok() {
            binds.push((source, target));
        }
    }
    Ok(binds)
}

/// Ports a protocol's clients use besides the lab's own, steered to the
/// lab's server of that kind when the lab allows redirects.
pub fn well_known_ports(kind: ServerKind) -> &'static [u16] {
    match kind {
        ServerKind::Smtp => &[25, 587, 2525],
        ServerKind::Pop3 => &[110],
        ServerKind::Http => &[80, 8000, 8080, 6789],
        ServerKind::UdpPinger => &[12000],
        ServerKind::Dns => &[53, 5353],
        ServerKind::Tracker => &[6969],
        ServerKind::Peer => &[],
    }
}

/// One of netgrade's sockets in the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Server name (from the lab, or `resolver`).
    pub name: String,
    /// UDP or TCP.
    pub transport: Transport,
    /// The address it is bound to.
    pub addr: SocketAddr,
}

/// What steering does in one run: which socket gets which traffic.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// netgrade's sockets in the namespace.
    pub endpoints: Vec<Endpoint>,
    /// Steering entries: the route and the name of the server it reaches.
    pub routes: Vec<(Route, String)>,
}

impl Table {
    /// The server that steering hands `(transport, port)` traffic to (the
    /// rules of [`steer`]).
    pub fn server_for(&self, transport: Transport, port: u16) -> Option<&str> {
        let exact = Route::Port(transport, port);
        let default = Route::Default(transport);
        self.routes
            .iter()
            .find(|(r, _)| *r == exact)
            .or_else(|| {
                (port < steer::EPHEMERAL_PORTS.0)
                    .then(|| self.routes.iter().find(|(r, _)| *r == default))
                    .flatten()
            })
            .map(|(_, name)| name.as_str())
    }

    /// Whether `port` is one netgrade's sockets send from (a server answering).
    fn is_ours(&self, transport: Transport, port: u16) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.transport == transport && e.addr.port() == port)
    }

    /// What a new flow from the program means: `None` when it goes straight
    /// to a server's own address (or is a server's reply), a `Captured` event
    /// when steering hands it to a server, a `Stray` one when nothing
    /// receives it.
    pub fn classify(
        &self,
        transport: Transport,
        from: SocketAddr,
        to: SocketAddr,
    ) -> Option<EventKind> {
        if self.is_ours(transport, from.port()) {
            return None;
        }
        if self
            .endpoints
            .iter()
            .any(|e| e.transport == transport && e.addr == to)
        {
            return None;
        }
        Some(match self.server_for(transport, to.port()) {
            Some(server) => EventKind::Captured {
                transport,
                from,
                to,
                server: server.to_string(),
            },
            None => EventKind::Stray {
                transport,
                from,
                to,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let ep = |name: &str, transport, addr: &str| Endpoint {
            name: name.into(),
            transport,
            addr: addr.parse().unwrap(),
        };
        Table {
            endpoints: vec![
                ep("mail", Transport::Tcp, "127.0.0.1:2525"),
                ep("resolver", Transport::Udp, "127.0.0.53:53"),
            ],
            routes: vec![
                (Route::Port(Transport::Tcp, 2525), "mail".into()),
                (Route::Port(Transport::Udp, 53), "resolver".into()),
                (Route::Port(Transport::Tcp, 587), "mail".into()),
                (Route::Default(Transport::Tcp), "mail".into()),
            ],
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_servers_own_addresses_and_replies_are_not_recorded() {
        let t = table();
        let me = addr("127.0.0.1:40000");
        assert_eq!(t.classify(Transport::Tcp, me, addr("127.0.0.1:2525")), None);
        assert_eq!(
            t.classify(Transport::Udp, addr("127.0.0.53:53"), me),
            None,
            "a reply from the resolver"
        );
    }

    #[test]
    fn other_hosts_and_ports_are_captured_and_unserved_protocols_stray() {
        let t = table();
        let me = addr("10.1.2.3:40000");
        let gmail = addr("142.250.1.108:587");
        assert_eq!(
            t.classify(Transport::Tcp, me, gmail),
            Some(EventKind::Captured {
                transport: Transport::Tcp,
                from: me,
                to: gmail,
                server: "mail".into()
            })
        );
        // The right port on another host is captured too.
        assert!(matches!(
            t.classify(Transport::Tcp, me, addr("191.101.232.165:2525")),
            Some(EventKind::Captured { .. })
        ));
        // A UDP datagram to a port nothing serves, without a UDP default.
        assert!(matches!(
            t.classify(Transport::Udp, me, addr("127.0.0.1:12000")),
            Some(EventKind::Stray { .. })
        ));
        assert_eq!(t.server_for(Transport::Tcp, 25), Some("mail"));
        assert_eq!(t.server_for(Transport::Udp, 9), None);
    }

    #[test]
    fn in_the_namespace_every_address_is_local_and_ports_are_dynamic() {
        let Ok(ns) = NetNs::new() else {
            eprintln!("skipped: no permission to create network namespaces");
            return;
        };
        let host_range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        make_everything_local(&ns).unwrap();
        let (port, sent) = ns
            .run(|| {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                // A far address is local: the datagram stays in the namespace.
                let sent = s.send_to(b"x", "191.101.232.165:9").is_ok();
                (s.local_addr().unwrap().port(), sent)
            })
            .unwrap();
        assert!(port >= steer::EPHEMERAL_PORTS.0, "{port}");
        assert!(sent);
        let after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        assert_eq!(host_range, after, "the host's range is untouched");
    }

    #[tokio::test]
    async fn steering_hands_any_address_to_the_servers_and_replies_to_the_program() {
        use crate::servers::udp::UdpServerSocket;
        let Ok(ns) = NetNs::new() else {
            eprintln!("skipped: no permission to create network namespaces");
            return;
        };
        make_everything_local(&ns).unwrap();
        let udp = UdpServerSocket::bind("127.0.0.1:12000".parse().unwrap(), Some(&ns)).unwrap();
        let tcp = crate::servers::bind_tcp("127.0.0.1:2525".parse().unwrap(), Some(&ns)).unwrap();
        use std::os::fd::AsFd;
        let steering = Steering::attach(ns.raw_fd()).unwrap();
        steering
            .insert(Route::Port(Transport::Udp, 12000), udp.as_fd())
            .unwrap();
        steering
            .insert(Route::Default(Transport::Udp), udp.as_fd())
            .unwrap();
        steering
            .insert(Route::Default(Transport::Tcp), tcp.as_fd())
            .unwrap();
        // A program in the namespace, with a connected UDP socket to a far
        // host on another port, and a TCP connection to a mail provider.
        let client = ns
            .run(|| {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                s.connect("191.101.232.165:10000").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                s.send(b"Ping 1").unwrap();
                s
            })
            .unwrap();
        let mut buf = [0u8; 64];
        let got = udp.recv_timed(&mut buf).await.unwrap();
        assert_eq!(&buf[..got.len], b"Ping 1");
        assert_eq!(got.local.to_string(), "191.101.232.165:10000");
        udp.send_from(b"PING 1", got.peer, got.local).await.unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"PING 1", "the connected client got the reply");
        let connected = ns
            .run(|| std::net::TcpStream::connect("142.250.1.108:587"))
            .unwrap()
            .unwrap();
        let (accepted, _) = tcp.accept().await.unwrap();
        assert_eq!(
            accepted.local_addr().unwrap().to_string(),
            "142.250.1.108:587"
        );
        drop(connected);
    }

    #[test]
    fn system_files_point_at_the_resolver() {
        let dir = tempfile::tempdir().unwrap();
        let binds = system_files(dir.path()).unwrap();
        let resolv = std::fs::read_to_string(dir.path().join("resolv.conf")).unwrap();
        assert!(resolv.contains("nameserver 127.0.0.53"), "{resolv}");
        let nss = std::fs::read_to_string(dir.path().join("nsswitch.conf")).unwrap();
        assert!(nss.contains("hosts: files dns"), "{nss}");
        assert!(
            binds
                .iter()
                .all(|(s, t)| s.starts_with(dir.path()) && t.starts_with("/etc"))
        );
    }
}
