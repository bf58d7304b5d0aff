//! Phase `capture`: in the run's namespace, hard-coded hosts and ports
//! reach the lab's servers (see [`crate::sandbox::capture`]), and the traffic
//! watcher records every destination the program used.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Plan;
use super::network::Network;
use crate::sandbox::NetNs;
use crate::sandbox::capture::{self, Endpoint, Route, Steering, Table};
use crate::servers::resolver::{self, ResolverConfig};
use crate::servers::udp::UdpServerSocket;
use crate::servers::{RunningServers, sniffer};
use crate::spec::ServerKind;
use crate::trace::{EventKind, Recorder, Trace, Transport};

/// What the capture set up for one run; undone when dropped.
#[derive(Debug, Default)]
pub struct Capture {
    steering: Option<Steering>,
    /// Where the program's `/etc` files are written.
    files: Option<tempfile::TempDir>,
    /// Files bound over the host's for the program (`/etc/resolv.conf` …).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Where traffic goes.
    pub table: Table,
}

/// Steers hard-coded destinations to the servers and starts the watcher.
/// Without a namespace there is nothing to capture; the notes say so.
pub fn engage(
    plan: &Plan,
    net: &Network,
    servers: &mut RunningServers,
    recorder: &Recorder,
    notes: &mut Vec<String>,
) -> Result<Capture> {
    let mut capture = Capture::default();
    let Some(ns) = net.namespace() else {
        if !plan.is_server() && !plan.lab.servers.is_empty() && plan.needs_network {
            notes.push(
                "hard-coded hosts (smtp.gmail.com, a lab machine's address) and ports could not be captured without a private network: a program must use the host and port netgrade passes as arguments".into(),
            );
        }
        return Ok(capture);
    };
    capture.files = Some(
        tempfile::Builder::new()
            .prefix("netgrade-etc-")
            .tempdir_in(crate::sandbox::janitor::scratch())
            .context("cannot create a folder for the program's /etc files")?,
    );
    let resolver = match start_resolver(ns, servers, recorder) {
        Ok(sockets) => sockets,
        // A lab's own DNS server on port 53 of every address (0.0.0.0)
        // leaves the resolver no room; it answers port 53 in its place.
        Err(_) if lab_dns_takes_port_53(servers) => Vec::new(),
        Err(e) => return Err(e),
    };
    // Every socket netgrade receives on in the namespace, in claim order.
    let sockets: Vec<(&str, Option<ServerKind>, Transport, SocketAddr, &OwnedFd)> = servers
        .sockets
        .iter()
        .map(|s| (s.name.as_str(), Some(s.kind), s.transport, s.addr, &s.fd))
        .chain(
            resolver
                .iter()
                .map(|(t, a, fd)| (RESOLVER_NAME, None, *t, *a, fd)),
        )
        .collect();
    let routes = routes(plan, &sockets);
    capture.table = Table {
        endpoints: sockets
            .iter()
            .map(|(name, _, transport, addr, _)| Endpoint {
                name: name.to_string(),
                transport: *transport,
                addr: *addr,
            })
            .collect(),
        routes: routes
            .iter()
            .map(|(route, i)| (*route, sockets[*i].0.to_string()))
            .collect(),
    };
    match Steering::attach(ns.raw_fd()) {
        Ok(steering) => {
            for (route, i) in &routes {
                steering.insert(*route, sockets[*i].4.as_fd())?;
            }
            capture.steering = Some(steering);
            recorder.record(EventKind::Capturing {
                redirect_ports: plan.redirect_ports,
            });
        }
        Err(e) => notes.push(format!(
            "hard-coded hosts and ports could not be captured: the kernel refused the steering program ({e}); a program must use the host and port netgrade passes as arguments"
        )),
    }
    // The program resolves every name through the resolver.
    capture.binds = capture
        .files
        .as_ref()
        .map_or(Ok(Vec::new()), |dir| capture::system_files(dir.path()))?;
    if !plan.is_server() {
        watch(ns, &capture.table, servers, recorder);
    }
    Ok(capture)
}

/// Whether a DNS server of the lab listens on port 53 of every address.
fn lab_dns_takes_port_53(servers: &RunningServers) -> bool {
    servers
        .sockets
        .iter()
        .any(|s| s.kind == ServerKind::Dns && s.addr.port() == 53 && s.addr.ip().is_unspecified())
}

/// How the capture's resolver is named in traces and reports.
pub const RESOLVER_NAME: &str = "resolver";

/// The resolver's sockets: transport, bound address and a descriptor.
type ResolverSockets = Vec<(Transport, SocketAddr, OwnedFd)>;

/// Starts the resolver the program's `/etc/resolv.conf` names, answering
/// every name with the lab's server address.
fn start_resolver(
    ns: &NetNs,
    servers: &mut RunningServers,
    recorder: &Recorder,
) -> Result<ResolverSockets> {
    let addr = SocketAddr::from((capture::RESOLVER, 53));
    let rt = crate::servers::clock::handle();
    let _entered = rt.enter();
    let udp = UdpServerSocket::bind(addr, Some(ns))
        .context("cannot bind the capture's resolver to UDP 127.0.0.53:53")?;
    let tcp = crate::servers::bind_tcp(addr, Some(ns))
        .context("cannot bind the capture's resolver to TCP 127.0.0.53:53")?;
    let sockets = vec![
        (Transport::Udp, addr, udp.as_fd().try_clone_to_owned()?),
        (Transport::Tcp, addr, tcp.as_fd().try_clone_to_owned()?),
    ];
    let lab = match servers.primary().map(|a| a.ip()) {
        Some(IpAddr::V4(ip)) if !ip.is_unspecified() => ip,
        _ => Ipv4Addr::LOCALHOST,
    };
    let config = ResolverConfig::new(RESOLVER_NAME, vec![lab], Vec::new());
    servers.add_task(rt.spawn(resolver::run(udp, tcp, config, recorder.clone())));
    Ok(sockets)
}

/// Which socket gets which traffic: each socket its own port at any
/// address (the first to claim it); with redirects, the well-known ports of
/// its protocol and, for the first socket of each transport, every other
/// port below the dynamic range. Indexes refer to `sockets`.
fn routes(
    plan: &Plan,
    sockets: &[(&str, Option<ServerKind>, Transport, SocketAddr, &OwnedFd)],
) -> Vec<(Route, usize)> {
    let mut routes: Vec<(Route, usize)> = Vec::new();
    let mut claim = |route: Route, i: usize| {
        if !routes.iter().any(|(r, _)| *r == route) {
            routes.push((route, i));
        }
    };
    for (i, (_, _, transport, addr, _)) in sockets.iter().enumerate() {
        claim(Route::Port(*transport, addr.port()), i);
    }
    if plan.redirect_ports {
        for (i, (_, kind, transport, _, _)) in sockets.iter().enumerate() {
            let Some(kind) = kind else { continue };
            for &port in capture::well_known_ports(*kind) {
                claim(Route::Port(*transport, port), i);
            }
            claim(Route::Default(*transport), i);
        }
    }
    routes
}

/// Starts the traffic watcher (best effort: without CAP_NET_RAW the run
/// simply has no record of where the program's traffic went).
fn watch(
    ns: &crate::sandbox::NetNs,
    table: &Table,
    servers: &mut RunningServers,
    recorder: &Recorder,
) {
    let _servers_runtime = crate::servers::clock::handle().enter();
    if let Ok(fd) = sniffer::open(ns) {
        let (table, recorder) = (table.clone(), recorder.clone());
        servers.add_drainer(move |stop| sniffer::run(fd, table, recorder, stop));
    }
}

/// What the report says about captured traffic: the names the program
/// looked up, then one note per destination it used in place of a server's
/// own address.
pub fn notes(plan: &Plan, trace: &Trace) -> Vec<String> {
    let names = looked_up(trace);
    let mut notes = Vec::new();
    if !names.is_empty() {
        let list: Vec<String> = names.iter().map(|(n, _)| format!("`{n}`")).collect();
        let answered: Vec<&str> = names
            .iter()
            .flat_map(|(_, a)| a.iter().map(String::as_str))
            .collect();
        notes.push(format!(
            "your program looked up {}; netgrade's resolver answered {}",
            list.join(", "),
            match answered.first() {
                Some(ip) => format!("with the lab's address {ip}"),
                None => "without an address".into(),
            }
        ));
    }
    for (transport, to, server, _) in trace.captured() {
        let spec = plan.lab.servers.iter().find(|s| s.name == server);
        let what = spec.map(|s| kind_name(s.kind.value)).unwrap_or("DNS");
        let verb = match transport {
            Transport::Tcp => "connected to",
            Transport::Udp => "sent datagrams to",
        };
        let lab_addr = spec
            .map(|s| format!(" (the lab's server is at {}:{})", s.host, s.port))
            .unwrap_or_default();
        // The name it used, when exactly one looked-up name gave this address.
        let ip = to.ip().to_string();
        let by_name: Vec<&str> = names
            .iter()
            .filter(|(_, answers)| answers.contains(&ip))
            .map(|(n, _)| n.as_str())
            .collect();
        let dest = match by_name.as_slice() {
            [name] => format!("{name}:{} ({} {to})", to.port(), transport.name()),
            _ => format!("{} {to}", transport.name()),
        };
        notes.push(format!(
            "your program {verb} {dest}; netgrade's {what} server `{server}` answered in its place{lab_addr}"
        ));
    }
    notes
}

/// Names the program looked up (not `localhost`, not reverse lookups), with
/// the addresses the resolver gave, in order of first lookup.
fn looked_up(trace: &Trace) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for e in &trace.events {
        let EventKind::NameLookup { name, answers, .. } = &e.kind else {
            continue;
        };
        let name = name.to_lowercase();
        if name.is_empty()
            || name == "localhost"
            || name.ends_with(".localhost")
            || name.ends_with(".arpa")
            || name.parse::<IpAddr>().is_ok()
        {
            continue;
        }
        let addresses = answers
            .iter()
            .filter(|a| a.parse::<IpAddr>().is_ok())
            .cloned();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, known)) => {
                for a in addresses {
                    if !known.contains(&a) {
                        known.push(a);
                    }
                }
            }
            None => out.push((name, addresses.collect())),
        }
        if out.len() >= 8 {
            break;
        }
    }
    out
}

/// How reports name a server kind.
fn kind_name(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::UdpPinger => "UDP pinger",
        ServerKind::Http => "HTTP",
        ServerKind::Smtp => "SMTP",
        ServerKind::Pop3 => "POP3",
        ServerKind::Dns => "DNS",
        ServerKind::Tracker => "BitTorrent tracker",
        ServerKind::Peer => "BitTorrent peer",
    }
}
