//! Reference servers on their own, as `netgrade serve` runs them: each
//! configured from a lab's spec exactly as [`super::start`] configures it for
//! a graded run (flags on the command line then change what they name),
//! described for people, and every event printed as it happens.
//!
//! A `serve` server prints through a bounded queue and keeps no record, so it
//! runs for days in the same memory; events it could not queue are counted
//! and reported.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{dns, http, pinger, pop3, smtp, tls, udp};
use crate::checks::quote;
use crate::spec::{Dur, Lab, ServerKind, ServerSpec};
use crate::trace::{Dir, Event, EventKind, Recorder};

/// One server to run on its own.
#[derive(Debug)]
pub struct Standalone {
    /// The spec's name (`pinger`, `mail` …).
    pub name: String,
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// What it serves and how.
    pub config: Config,
}

/// The settings of each kind of server.
#[derive(Debug)]
pub enum Config {
    /// The lossy UDP pinger.
    Pinger(pinger::PingerConfig),
    /// An SMTP server.
    Smtp {
        /// Its settings.
        config: smtp::SmtpConfig,
        /// Also serve implicit TLS (SMTPS) on this port.
        tls_port: Option<u16>,
        /// Whether `tls_port` was asked for on the command line: then a port
        /// that cannot be bound is an error, not a note.
        tls_port_given: bool,
    },
    /// A POP3 server.
    Pop3 {
        /// Its settings, maildrop included.
        config: pop3::Pop3Config,
        /// Where the maildrop comes from, for people.
        source: String,
    },
    /// An HTTP server.
    Http {
        /// Its settings, root included.
        config: http::HttpConfig,
        /// What the root is, for people.
        source: String,
    },
    /// DNS name servers for zones.
    Dns {
        /// Its settings, zones included.
        config: dns::DnsConfig,
        /// Where the zones come from, for people.
        source: String,
    },
}

impl Standalone {
    /// Server `spec` of `lab`, as the lab grades with it (the lab's seed).
    /// An HTTP server serves `data_root`, where the caller wrote the lab's
    /// data ([`stage_data`]).
    pub fn from_spec(lab: &Lab, spec: &ServerSpec, data_root: &Path) -> Standalone {
        let config = match spec.kind.value {
            ServerKind::UdpPinger => Config::Pinger(super::pinger_config(spec, lab.seed)),
            ServerKind::Smtp => Config::Smtp {
                config: super::smtp_config(spec),
                tls_port: spec.tls_port,
                tls_port_given: false,
            },
            ServerKind::Pop3 => {
                let config = super::pop3_config(spec, lab);
                let source = format!(
                    "{} of lab `{}` (its `{}` folder)",
                    messages(config.messages.len()),
                    lab.name,
                    spec.maildrop.as_deref().unwrap_or_default()
                );
                Config::Pop3 { config, source }
            }
            ServerKind::Dns => Config::Dns {
                config: dns::config(spec, lab.seed),
                source: format!("lab `{}`", lab.name),
            },
            // `serve` runs a lab's swarm as a whole (the tracker lists the
            // peers, the peers share the lab's torrents), never one by one.
            ServerKind::Tracker | ServerKind::Peer => {
                unreachable!("a tracker or peer is served with its lab's swarm")
            }
            ServerKind::Http => Config::Http {
                config: super::http_config(spec, lab.seed, data_root),
                source: format!(
                    "the data of lab `{}` ({}, copied to {})",
                    lab.name,
                    lab.data.as_deref().unwrap_or("no files"),
                    data_root.display()
                ),
            },
        };
        Standalone {
            name: spec.name.clone(),
            host: spec.host.clone(),
            port: spec.port,
            config,
        }
    }

    /// Which kind of server this is.
    pub fn kind(&self) -> ServerKind {
        match self.config {
            Config::Pinger(_) => ServerKind::UdpPinger,
            Config::Smtp { .. } => ServerKind::Smtp,
            Config::Pop3 { .. } => ServerKind::Pop3,
            Config::Http { .. } => ServerKind::Http,
            Config::Dns { .. } => ServerKind::Dns,
        }
    }

    /// What the server does, for people: `drops datagrams 3, 6, 7, replies
    /// after 40 ms–200 ms (seed 1)`.
    pub fn describe(&self) -> String {
        match &self.config {
            Config::Pinger(c) => describe_pinger(c),
            Config::Smtp { config, .. } => describe_smtp(config),
            Config::Pop3 { config, source } => format!(
                "user {:?}, password {:?}, {source}",
                config.user, config.password
            ),
            Config::Http { config, source } => {
                let (min, max) = (Dur(config.latency_min), Dur(config.latency_max));
                let latency = if max.get().is_zero() {
                    "responds at once".to_string()
                } else if min == max {
                    format!("responds after {min}")
                } else {
                    format!("responds after {min}–{max} (seed {})", config.seed)
                };
                format!("serves {source} over HTTP/1.1, {latency}")
            }
            Config::Dns { config, source } => {
                format!("zones of {source}: {}", dns::describe(config))
            }
        }
    }
}

/// `1 message`, `3 messages`.
fn messages(n: usize) -> String {
    format!("{n} message{}", if n == 1 { "" } else { "s" })
}

/// What a pinger does, for people: `drops datagrams 3, 6, 7, replies after
/// 40 ms–200 ms (seed 1)`.
pub fn describe_pinger(config: &pinger::PingerConfig) -> String {
    let seed = config.seed;
    let losses = if !config.drop.is_empty() {
        let listed: Vec<String> = config.drop.iter().map(u32::to_string).collect();
        format!("drops datagrams {}", listed.join(", "))
    } else if config.loss > 0.0 {
        format!(
            "loses {:.0}% of datagrams (seed {seed})",
            config.loss * 100.0
        )
    } else {
        "loses no datagram".to_string()
    };
    let (min, max) = (Dur(config.delay_min), Dur(config.delay_max));
    let delays = if min == max {
        format!("replies after {min}")
    } else {
        format!("replies after {min}–{max} (seed {seed})")
    };
    format!("{losses}, {delays}")
}

/// What an SMTP server does, for people: `greets after 300 ms, offers
/// STARTTLS, tolerates bare LF, answers RCPT with "550 …"`.
pub fn describe_smtp(config: &smtp::SmtpConfig) -> String {
    let mut parts = vec![if config.greeting_delay.is_zero() {
        "greets at once".to_string()
    } else {
        format!("greets after {}", Dur(config.greeting_delay))
    }];
    parts.push(if config.starttls {
        "offers STARTTLS".into()
    } else {
        "no STARTTLS".into()
    });
    parts.push(if config.strict_crlf {
        "answers bare-LF lines with 500 (strict CRLF)".into()
    } else {
        "tolerates bare LF".into()
    });
    if config.pipelining {
        parts.push("advertises PIPELINING".into());
    }
    for i in &config.inject {
        let times = match i.times {
            None => String::new(),
            Some(1) => " (once)".into(),
            Some(n) => format!(" (the first {n} times)"),
        };
        parts.push(format!(
            "answers {} with {:?}{times}",
            i.command.to_ascii_uppercase(),
            i.reply
        ));
    }
    parts.join(", ")
}

/// Writes `lab`'s data to a new folder in netgrade's scratch folder, for its
/// HTTP server to serve (as a graded run does).
pub fn stage_data(lab: &Lab) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("netgrade-data-")
        .tempdir_in(crate::sandbox::janitor::scratch())?;
    lab.files.write_to(dir.path())?;
    Ok(dir)
}

/// Why the servers could not be served.
#[derive(Debug)]
pub enum Failure {
    /// Something the user can change (a port in use, a host that is not an
    /// address): the message says what.
    Usage(String),
    /// netgrade itself failed.
    Internal(String),
}

/// Events a `serve` printer may fall behind by before events are dropped.
pub const TAP_EVENTS: usize = 10_000;

/// A server's sockets, bound.
enum Sockets {
    Udp(udp::UdpServerSocket),
    /// A DNS server's UDP socket and TCP listener at each of its addresses.
    Dns(Vec<(udp::UdpServerSocket, tokio::net::TcpListener)>),
    Tcp {
        listener: tokio::net::TcpListener,
        /// The implicit-TLS listener (SMTPS).
        implicit: Option<tokio::net::TcpListener>,
    },
}

/// A server ready to run.
struct Bound {
    server: Standalone,
    addr: SocketAddr,
    sockets: Sockets,
    /// What binding added to its description (its implicit-TLS port).
    also: String,
}

/// `name (kind)` when several servers run, else the kind.
fn label(server: &Standalone, named: bool) -> String {
    if named {
        format!("{} ({})", server.name, server.kind().name())
    } else {
        server.kind().name().to_string()
    }
}

fn listen_addr(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    host.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            Failure::Usage(format!(
                "--host `{host}` is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"
            ))
        })
}

/// A DNS server's UDP socket and TCP listener, on the same port.
type DnsSockets = Vec<(udp::UdpServerSocket, tokio::net::TcpListener)>;

/// Binds a DNS server's sockets at each of its addresses, UDP and TCP on
/// the same port. Port 0 picks a port free for UDP at the first address;
/// when TCP (or another address) has it taken, another port is picked.
fn bind_dns(config: &dns::DnsConfig, addr: SocketAddr) -> Result<DnsSockets, Failure> {
    let mut attempts = 0;
    loop {
        match bind_dns_once(config, addr) {
            Err((e, _))
                if addr.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempts < 20 =>
            {
                attempts += 1;
            }
            Err((_, failure)) => return Err(failure),
            Ok(sockets) => return Ok(sockets),
        }
    }
}

/// One try of [`bind_dns`]: the error, and what to tell the user.
fn bind_dns_once(
    config: &dns::DnsConfig,
    addr: SocketAddr,
) -> Result<DnsSockets, (std::io::Error, Failure)> {
    let in_use = "is another server already using the port? pick another with --port";
    let mut sockets: DnsSockets = Vec::new();
    for mut at in super::dns_addrs(config, addr) {
        // Port 0: a free port for the first address, the same for the others.
        if let Some((first, _)) = sockets.first().filter(|_| at.port() == 0) {
            at.set_port(first.local_addr().port());
        }
        let root = if (1..1024).contains(&at.port()) {
            " (ports below 1024 need root: try --port 5353)"
        } else {
            ""
        };
        let usage = |what: &str, at: SocketAddr, e: std::io::Error| {
            let failure = Failure::Usage(format!("cannot bind {what} {at}: {e}; {in_use}{root}"));
            (e, failure)
        };
        let socket = super::bind_udp(at, None).map_err(|e| usage("UDP", at, e))?;
        let socket = udp::UdpServerSocket::from_tokio(socket, None).map_err(|e| {
            let failure = Failure::Internal(format!("cannot set up the DNS server's socket: {e}"));
            (e, failure)
        })?;
        let tcp_at = SocketAddr::new(at.ip(), socket.local_addr().port());
        let listener = super::bind_tcp(tcp_at, None).map_err(|e| usage("TCP", tcp_at, e))?;
        sockets.push((socket, listener));
    }
    if sockets.is_empty() {
        let failure = Failure::Usage("the DNS server has no zone to serve".into());
        return Err((std::io::Error::other("no zone"), failure));
    }
    Ok(sockets)
}

/// Binds `server`'s sockets.
fn bind(server: Standalone) -> Result<Bound, Failure> {
    let addr = listen_addr(&server.host, server.port)?;
    let in_use = "is another server already using the port? pick another with --port";
    let mut also = String::new();
    let sockets = match &server.config {
        Config::Pinger(_) => {
            let socket = super::bind_udp(addr, None)
                .map_err(|e| Failure::Usage(format!("cannot bind UDP {addr}: {e}; {in_use}")))?;
            Sockets::Udp(udp::UdpServerSocket::from_tokio(socket, None).map_err(|e| {
                Failure::Internal(format!("cannot set up the pinger's socket: {e}"))
            })?)
        }
        Config::Dns { config, .. } => Sockets::Dns(bind_dns(config, addr)?),
        config => {
            let listener = super::bind_tcp(addr, None)
                .map_err(|e| Failure::Usage(format!("cannot bind TCP {addr}: {e}; {in_use}")))?;
            let implicit = match config {
                Config::Smtp {
                    tls_port: Some(port),
                    tls_port_given,
                    ..
                } => {
                    let at = SocketAddr::new(addr.ip(), *port);
                    match super::bind_tcp(at, None) {
                        Ok(l) => {
                            let bound = l.local_addr().unwrap_or(at);
                            also = format!(", implicit TLS (SMTPS) on TCP {bound}");
                            Some(l)
                        }
                        Err(e) if *tls_port_given => {
                            return Err(Failure::Usage(format!(
                                "cannot bind TCP {at} for implicit TLS: {e}; ports below 1024 need root: pick another with --tls-port"
                            )));
                        }
                        Err(e) => {
                            also = format!(
                                ", no implicit TLS: cannot bind TCP {at} ({e}; ports below 1024 need root, and `netgrade serve smtp --tls-port 0` picks a free port)"
                            );
                            None
                        }
                    }
                }
                _ => None,
            };
            Sockets::Tcp { listener, implicit }
        }
    };
    let addr = match &sockets {
        Sockets::Udp(s) => s.local_addr(),
        Sockets::Dns(all) => all.first().map_or(addr, |(s, _)| s.local_addr()),
        Sockets::Tcp { listener, .. } => listener.local_addr().unwrap_or(addr),
    };
    Ok(Bound {
        server,
        addr,
        sockets,
        also,
    })
}

/// Serves `servers` until Ctrl-C, printing what each is and where, then every
/// event. `named`: say which server each line is about (`serve --lab`). The
/// servers are bound all or none.
pub async fn serve(servers: Vec<Standalone>, named: bool) -> Result<(), Failure> {
    let mut bound = Vec::new();
    for server in servers {
        bound.push(bind(server)?);
    }
    let mut lines: Vec<String> = bound
        .iter()
        .map(|b| {
            let (proto, at) = match &b.sockets {
                Sockets::Udp(_) => ("UDP", b.addr.to_string()),
                Sockets::Dns(all) => {
                    let at: Vec<String> = all
                        .iter()
                        .map(|(s, _)| s.local_addr().to_string())
                        .collect();
                    ("UDP and TCP", at.join(", "))
                }
                Sockets::Tcp { .. } => ("TCP", b.addr.to_string()),
            };
            format!(
                "{} listening on {proto} {at}: {}{}.",
                label(&b.server, named),
                b.server.describe(),
                b.also
            )
        })
        .collect();
    // A DNS hierarchy's root hints, for resolvers to start from.
    let mut hints_dir = None;
    for b in &bound {
        let Config::Dns { config, .. } = &b.server.config else {
            continue;
        };
        let Some(hints) = config.zones.root_hints().filter(|_| config.zones.hierarchy) else {
            continue;
        };
        let dir = match &hints_dir {
            Some(d) => d,
            None => hints_dir.insert(
                tempfile::Builder::new()
                    .prefix("netgrade-hints-")
                    .tempdir_in(crate::sandbox::janitor::scratch())
                    .map_err(|e| Failure::Internal(format!("cannot write the root hints: {e}")))?,
            ),
        };
        let path = dir
            .path()
            .join(format!("{}-{}", b.server.name, super::ROOT_HINTS));
        std::fs::write(&path, &hints)
            .map_err(|e| Failure::Internal(format!("cannot write the root hints: {e}")))?;
        lines.push(format!(
            "Root hints (as a resolver's named.root): {}",
            path.display()
        ));
    }
    // SMTP servers sign each connection's certificate with an authority made
    // here, whose certificate a client is told to trust.
    let trust = if bound.iter().any(|b| b.server.kind() == ServerKind::Smtp) {
        let trust = tls::RunTrust::new().map_err(|e| {
            Failure::Internal(format!("cannot make a certificate authority: {e:#}"))
        })?;
        let pem = trust.pem_path();
        lines.push(format!(
            "TLS certificates come from a certificate authority made for this server: trust {} (e.g. SSL_CERT_FILE={} python3 client.py).",
            pem.display(),
            pem.display()
        ));
        Some(trust)
    } else {
        None
    };
    if let Some(last) = lines.last_mut() {
        last.push_str(" Ctrl-C to stop.");
    }
    for line in lines {
        println!("{line}");
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(TAP_EVENTS);
    let tap = Recorder::with_tap(tx);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for b in bound {
        let recorder = tap.clone();
        let task = match (b.server.config, b.sockets) {
            (Config::Pinger(config), Sockets::Udp(socket)) => {
                tokio::spawn(pinger::run(socket, config, recorder, stopped.clone()))
            }
            (Config::Dns { config, .. }, Sockets::Dns(all)) => {
                let shared = dns::Shared::new(config, recorder);
                for (socket, listener) in all {
                    let stop = stopped.clone();
                    tasks.push(tokio::spawn(dns::serve_udp(socket, shared.clone(), stop)));
                    tasks.push(tokio::spawn(dns::serve_tcp(listener, shared.clone())));
                }
                continue;
            }
            (Config::Smtp { config, .. }, Sockets::Tcp { listener, implicit }) => {
                let tls = trust.as_ref().map(|t| smtp::Tls {
                    ca: t.ca.clone(),
                    implicit,
                });
                tokio::spawn(smtp::run(listener, tls, config, recorder))
            }
            (Config::Pop3 { config, .. }, Sockets::Tcp { listener, .. }) => {
                tokio::spawn(pop3::run(listener, config, recorder))
            }
            (Config::Http { config, .. }, Sockets::Tcp { listener, .. }) => {
                let config = http::HttpConfig {
                    // serve prints each event and keeps none: nothing to bound.
                    max_recorded_requests: u32::MAX,
                    max_recorded_bytes: usize::MAX,
                    ..config
                };
                tokio::spawn(http::run(listener, config, recorder))
            }
            _ => unreachable!("a pinger binds UDP and the others TCP"),
        };
        tasks.push(task);
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = rx.recv() => {
                let Some(e) = event else { break };
                let dropped = tap.take_dropped();
                if dropped > 0 {
                    println!("({dropped} events not shown: printing could not keep up)");
                }
                if let Some(line) = line(&e, named) {
                    println!("{line}");
                }
            }
        }
    }
    for task in tasks {
        task.abort();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop((trust, hints_dir));
    Ok(())
}

/// An event as `serve` prints it, or `None` for events it does not show.
/// `named`: the line names its server.
pub fn line(e: &Event, named: bool) -> Option<String> {
    use EventKind as K;
    let (server, text) = match &e.kind {
        K::Datagram {
            server,
            dir: Dir::In,
            peer,
            index,
            data,
        } => (server, format!("#{index:<3} from {peer}  {}", quote(data))),
        K::Datagram {
            server,
            dir: Dir::Out,
            peer,
            index,
            data,
        } => (
            server,
            format!("#{index:<3} reply to {peer}  {}", quote(data)),
        ),
        K::Dropped { server, index } => (server, format!("#{index:<3} dropped (no reply)")),
        K::Delayed {
            server,
            index,
            delay,
        } => (server, format!("#{index:<3} will reply in {}", Dur(*delay))),
        K::RecordingCapped { server, limit } => (
            server,
            format!("more than {limit} datagrams; no longer printing each"),
        ),
        K::Line {
            server,
            conn,
            dir,
            bytes,
        } => {
            let who = if *dir == Dir::In { "C" } else { "S" };
            (server, format!("conn {conn} {who}: {}", quote(bytes)))
        }
        K::Deviation {
            server,
            conn,
            kind,
            detail,
        } => (server, format!("conn {conn} !  {kind}: {detail}")),
        K::Delivered {
            server,
            conn,
            from,
            to,
            data,
        } => (
            server,
            format!(
                "conn {conn} delivered from <{from}> to <{}>, {} bytes",
                to.join(">, <"),
                data.len()
            ),
        ),
        K::Maildrop {
            server,
            conn,
            updated,
            deleted,
            remaining,
        } => (
            server,
            format!(
                "conn {conn} maildrop {}: deleted {deleted:?}, remaining {remaining:?}",
                if *updated {
                    "updated"
                } else {
                    "unchanged (no QUIT)"
                }
            ),
        ),
        K::SessionEnd { server, conn, how } => (server, format!("conn {conn} end: {how}")),
        K::DnsMessage {
            server,
            dir,
            transport,
            index,
            conn,
            peer,
            local,
            len,
            summary,
            fault,
            ..
        } => {
            let over = match conn {
                Some(c) => format!("TCP conn {c}"),
                None => transport.name().to_string(),
            };
            let text = dns::describe_message(summary.as_ref(), *len, false);
            let id = summary
                .as_ref()
                .map_or(String::new(), |s| format!(" id {}", s.id));
            let line = match dir {
                Dir::In => format!("#{index:<3} {over} query from {peer} to {local}{id}: {text}"),
                Dir::Out => {
                    let fault = fault
                        .as_deref()
                        .map_or(String::new(), |f| format!(" [fault: {f}]"));
                    format!("#{index:<3} {over} answer to {peer}{id}: {text}{fault}")
                }
            };
            (server, line)
        }
        K::TlsStarted {
            server,
            conn,
            version,
            sni,
            implicit,
        } => (
            server,
            format!(
                "conn {conn} TLS started ({version}, {}, SNI {})",
                if *implicit { "implicit" } else { "STARTTLS" },
                sni.as_deref().unwrap_or("none")
            ),
        ),
        K::TlsFailed {
            server,
            conn,
            reason,
            ..
        } => (server, format!("conn {conn} TLS failed: {reason}")),
        K::Authenticated {
            server,
            conn,
            mechanism,
            user,
            encrypted,
            ..
        } => (
            server,
            format!(
                "conn {conn} logged in: {mechanism} as {user:?}{}",
                if *encrypted { "" } else { " (without TLS)" }
            ),
        ),
        K::Request {
            server,
            conn,
            peer,
            raw,
        } => {
            let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
            (server, format!("conn {conn} from {peer}: {}", quote(first)))
        }
        K::Response {
            server,
            conn,
            status,
            body_len,
            ..
        } => (
            server,
            format!("conn {conn} <- {status} ({body_len} bytes)"),
        ),
        _ => return None,
    };
    let t = format!("[{:>8.3}s]", e.at.as_secs_f64());
    Some(if named {
        format!("{t} {server} {text}")
    } else {
        format!("{t} {text}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(name: &str) -> Lab {
        crate::spec::load_builtin(name).unwrap().unwrap()
    }

    fn of(lab: &Lab, kind: ServerKind) -> Standalone {
        let spec = lab.servers.iter().find(|s| s.kind.value == kind).unwrap();
        Standalone::from_spec(lab, spec, Path::new("/srv/www"))
    }

    #[test]
    fn each_server_is_described_as_its_lab_grades_with_it() {
        let pinger = of(&lab("udp-pinger"), ServerKind::UdpPinger);
        assert_eq!(pinger.port, 12000);
        assert_eq!(
            pinger.describe(),
            "drops datagrams 3, 6, 7, replies after 40 ms–200 ms (seed 1)"
        );
        let smtp = of(&lab("smtp-client"), ServerKind::Smtp);
        assert_eq!(smtp.port, 2525);
        assert!(matches!(
            smtp.config,
            Config::Smtp {
                tls_port: Some(465),
                tls_port_given: false,
                ..
            }
        ));
        assert_eq!(
            smtp.describe(),
            "greets after 300 ms, offers STARTTLS, tolerates bare LF"
        );
        let reject = of(&lab("smtp-client-reject"), ServerKind::Smtp);
        assert!(
            reject.describe().ends_with(
                "answers RCPT with \"550 5.1.1 <bob@hamburger.edu>: Recipient address rejected: User unknown\""
            ),
            "{}",
            reject.describe()
        );
        let pop3 = of(&lab("pop3-download-keep"), ServerKind::Pop3);
        assert_eq!(pop3.port, 1110);
        assert_eq!(
            pop3.describe(),
            "user \"alice\", password \"wonderland\", 3 messages of lab `pop3-download-keep` (its `maildrop` folder)"
        );
        let web = of(&lab("http-client"), ServerKind::Http);
        assert_eq!(web.port, 6789);
        assert_eq!(
            web.describe(),
            "serves the data of lab `http-client` (webserver/www, copied to /srv/www) over HTTP/1.1, responds at once"
        );
    }

    #[test]
    fn lines_name_their_server_when_several_run() {
        let e = Event {
            at: Duration::from_millis(1500),
            kind: EventKind::Dropped {
                server: "pinger".into(),
                index: 3,
            },
        };
        assert_eq!(
            line(&e, false).unwrap(),
            "[   1.500s] #3   dropped (no reply)"
        );
        assert_eq!(
            line(&e, true).unwrap(),
            "[   1.500s] pinger #3   dropped (no reply)"
        );
    }
}
