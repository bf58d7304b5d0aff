//! Phase `capture`: in the run's namespace, hard-coded hosts and ports
//! reach the lab's servers (see [`crate::sandbox::capture`]), and the traffic
//! watcher records every destination the program used.

use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::Result;

use super::Plan;
use super::network::Network;
use crate::sandbox::capture::{self, Endpoint, Route, Steering, Table};
use crate::servers::{RunningServers, sniffer};
use crate::spec::ServerKind;
use crate::trace::{Recorder, Trace, Transport};

/// What the capture set up for one run; undone when dropped.
#[derive(Debug, Default)]
pub struct Capture {
    steering: Option<Steering>,
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
    capture.table = table(plan, servers);
    match Steering::attach(ns.raw_fd()) {
        Ok(steering) => {
            for socket in &servers.sockets {
                for (route, name) in &capture.table.routes {
                    if *name == socket.name && route_transport(*route) == socket.transport {
                        steering.insert(*route, socket.fd.as_fd())?;
                    }
                }
            }
            capture.steering = Some(steering);
        }
        Err(e) => notes.push(format!(
            "hard-coded hosts and ports could not be captured: the kernel refused the steering program ({e}); a program must use the host and port netgrade passes as arguments"
        )),
    }
    if !plan.is_server() {
        watch(ns, &capture.table, servers, recorder);
    }
    Ok(capture)
}

fn route_transport(route: Route) -> Transport {
    match route {
        Route::Port(t, _) | Route::Default(t) => t,
    }
}

/// Which server gets which traffic: each server its own port at any
/// address; with redirects, the well-known ports of its protocol and, for
/// the first server of each transport, every other port.
fn table(plan: &Plan, servers: &RunningServers) -> Table {
    let mut table = Table::default();
    for socket in &servers.sockets {
        table.endpoints.push(Endpoint {
            name: socket.name.clone(),
            transport: socket.transport,
            addr: socket.addr,
        });
        table.routes.push((
            Route::Port(socket.transport, socket.addr.port()),
            socket.name.clone(),
        ));
    }
    if plan.redirect_ports {
        for socket in &servers.sockets {
            for &port in capture::well_known_ports(socket.kind) {
                add_route(
                    &mut table,
                    Route::Port(socket.transport, port),
                    &socket.name,
                );
            }
            add_route(&mut table, Route::Default(socket.transport), &socket.name);
        }
    }
    table
}

/// Adds `route` unless an earlier entry already claims it.
fn add_route(table: &mut Table, route: Route, name: &str) {
    if !table.routes.iter().any(|(r, _)| *r == route) {
        table.routes.push((route, name.to_string()));
    }
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

/// What the report says about captured traffic: one note per destination
/// the program used in place of a server's own address.
pub fn notes(plan: &Plan, trace: &Trace) -> Vec<String> {
    trace
        .captured()
        .into_iter()
        .map(|(transport, to, server, _)| {
            let spec = plan.lab.servers.iter().find(|s| s.name == server);
            let what = spec.map(|s| kind_name(s.kind.value)).unwrap_or("DNS");
            let verb = match transport {
                Transport::Tcp => "connected to",
                Transport::Udp => "sent datagrams to",
            };
            let lab_addr = spec
                .map(|s| format!(" (the lab's server is at {}:{})", s.host, s.port))
                .unwrap_or_default();
            format!(
                "your program {verb} {} {to}; netgrade's {what} server `{server}` answered in its place{lab_addr}",
                transport.name()
            )
        })
        .collect()
}

/// How reports name a server kind.
fn kind_name(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::UdpPinger => "UDP pinger",
        ServerKind::Http => "HTTP",
        ServerKind::Smtp => "SMTP",
        ServerKind::Pop3 => "POP3",
    }
}
