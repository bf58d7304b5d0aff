//! Reference servers, one module per protocol.
//!
//! [`start`] binds every server a lab names — inside the run's network
//! namespace when it has one — and runs each as a tokio task that records
//! into the run's trace. Dropping [`RunningServers`] stops them. Servers that
//! speak TLS get their certificates from the run's [`tls::RunCa`].

pub mod clock;
pub mod diag;
pub mod dns;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod http;
pub mod peer;
pub mod pinger;
pub mod pop3;
pub mod resolver;
pub mod smtp;
pub mod sniffer;
pub mod standalone;
pub mod tls;
pub mod tracker;
pub mod udp;

use std::net::SocketAddr;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use crate::sandbox::NetNs;
use crate::spec::{Lab, ServerKind, ServerSpec};
use crate::trace::Recorder;

/// The servers of one run; [`RunningServers::stop`] ends them in order, and
/// dropping aborts whatever is left.
#[derive(Debug)]
pub struct RunningServers {
    tasks: Vec<JoinHandle<()>>,
    /// Tasks that read what the kernel still holds when told to stop.
    drainers: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    /// Whether a TCP server runs (its connections may still be reading).
    tcp: bool,
    /// The DNS servers, whose TCP side is waited for only while a connection
    /// is open or waits to be accepted (a DNS client mostly speaks UDP).
    dns: Vec<std::sync::Arc<dns::Shared>>,
    /// How many connections each BitTorrent tracker and peer is serving:
    /// they are waited for like the DNS servers' (only while one is open).
    swarm: Vec<Serving>,
    /// Bound address of each server, by spec order.
    pub addrs: Vec<(String, SocketAddr)>,
    /// Every socket the servers listen on, for the capture's steering.
    pub sockets: Vec<Socket>,
    /// Bound address of each implicit-TLS listener (SMTPS), by server name.
    pub tls_addrs: Vec<(String, SocketAddr)>,
    /// What the run should know: a listener that could not be bound and
    /// was left out (the run goes on without it).
    pub notes: Vec<String>,
    /// Files the program gets in its folder: a DNS hierarchy's root hints
    /// (`named.root`), as (name, contents).
    pub files: Vec<(String, Vec<u8>)>,
}

/// A BitTorrent server whose open connections are counted.
#[derive(Debug)]
enum Serving {
    /// A reference peer.
    Peer(std::sync::Arc<peer::Seeder>),
    /// A tracker's count of open connections.
    Tracker(std::sync::Arc<std::sync::atomic::AtomicUsize>),
}

impl Serving {
    fn open(&self) -> usize {
        match self {
            Serving::Peer(p) => p.open_connections(),
            Serving::Tracker(open) => open.load(std::sync::atomic::Ordering::Acquire),
        }
    }
}

/// A socket a server receives on: its server, kind and a descriptor for it.
#[derive(Debug)]
pub struct Socket {
    /// Server name.
    pub name: String,
    /// Server kind.
    pub kind: ServerKind,
    /// UDP or TCP.
    pub transport: crate::trace::Transport,
    /// Bound address.
    pub addr: SocketAddr,
    /// A duplicate of the socket's descriptor (the socket itself lives in
    /// the server's task; this one keeps its number from being reused).
    pub fd: std::os::fd::OwnedFd,
}

impl Default for RunningServers {
    fn default() -> Self {
        RunningServers {
            tasks: Vec::new(),
            drainers: Vec::new(),
            stop: tokio::sync::watch::channel(false).0,
            tcp: false,
            dns: Vec::new(),
            swarm: Vec::new(),
            addrs: Vec::new(),
            sockets: Vec::new(),
            tls_addrs: Vec::new(),
            notes: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// A TCP server has finished with a client that is gone once nothing new has
/// been recorded for this long …
const TCP_QUIET: std::time::Duration = std::time::Duration::from_millis(50);
/// … or after this long at most.
const TCP_SETTLE_MAX: std::time::Duration = std::time::Duration::from_millis(500);

impl RunningServers {
    /// Stops the servers after the program has ended: UDP servers and the
    /// traffic watcher first read what the kernel already holds (everything
    /// the program sent before it ended is recorded, however busy the
    /// machine), TCP servers get a moment to read their clients' last bytes.
    pub async fn stop(mut self, recorder: &Recorder) {
        let _ = self.stop.send(true);
        for drainer in std::mem::take(&mut self.drainers) {
            let abort = drainer.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(1), drainer)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let until = tokio::time::Instant::now() + TCP_SETTLE_MAX;
        if self.tcp {
            while tokio::time::Instant::now() < until {
                let last = recorder.last_event().unwrap_or_default();
                if recorder.now().saturating_sub(last) >= TCP_QUIET {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        } else {
            // A DNS server knows when it is done: no connection open, none
            // waiting to be accepted (the program's have all been read to
            // their end, its last query recorded with its answer).
            while self.dns_tcp_busy() && tokio::time::Instant::now() < until {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    }

    /// Whether a DNS server still has a TCP client to finish with: a
    /// connection it is serving, or one waiting in a listener's queue (the
    /// listening socket polls readable).
    fn dns_tcp_busy(&self) -> bool {
        use std::os::fd::AsRawFd;
        if self.dns.iter().any(|d| d.tcp_open() > 0) || self.swarm.iter().any(|s| s.open() > 0) {
            return true;
        }
        self.sockets
            .iter()
            .filter(|s| {
                matches!(
                    s.kind,
                    ServerKind::Dns | ServerKind::Tracker | ServerKind::Peer
                ) && s.transport == crate::trace::Transport::Tcp
            })
            .any(|s| {
                let mut pfd = libc::pollfd {
                    fd: s.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, no wait.
                unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
            })
    }

    /// Adds a task that, like the UDP servers, reads what the kernel holds
    /// when the servers stop (it gets the stop signal).
    pub fn add_drainer<F>(&mut self, make: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.subscribe();
        self.drainers.push(clock::handle().spawn(make(stop)));
    }

    /// Adds a task that runs until the servers are dropped.
    pub fn add_task(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Address of the first server: what `{host}` and `{port}` stand for.
    pub fn primary(&self) -> Option<SocketAddr> {
        self.addrs.first().map(|(_, a)| *a)
    }
}

impl Drop for RunningServers {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(&self.drainers) {
            t.abort();
        }
    }
}

/// The pinger settings a spec entry describes, with the run's seed.
pub fn pinger_config(spec: &ServerSpec, seed: u64) -> pinger::PingerConfig {
    let delay = spec.delay.unwrap_or_default();
    pinger::PingerConfig {
        name: spec.name.clone(),
        drop: spec.drop.iter().flatten().copied().collect(),
        loss: spec.loss.as_ref().map_or(0.0, |l| l.value),
        delay_min: delay.min.get(),
        delay_max: delay.max.get(),
        seed,
    }
}

/// Binds a UDP socket on `addr`, inside `netns` when given.
pub fn bind_udp(addr: SocketAddr, netns: Option<&NetNs>) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = match netns {
        Some(ns) => ns.run(move || std::net::UdpSocket::bind(addr))??,
        None => std::net::UdpSocket::bind(addr)?,
    };
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

/// The SMTP settings a spec entry describes.
pub fn smtp_config(spec: &ServerSpec) -> smtp::SmtpConfig {
    let mut config = smtp::SmtpConfig::new(&spec.name);
    if let Some(d) = spec.greeting_delay {
        config.greeting_delay = d.get();
    }
    config.strict_crlf = spec.strict_crlf.unwrap_or(config.strict_crlf);
    config.pipelining = spec.pipelining.unwrap_or(config.pipelining);
    config.starttls = spec.starttls.unwrap_or(config.starttls);
    config.inject = spec
        .inject
        .iter()
        .map(|i| smtp::Injection {
            command: i.command.clone(),
            reply: i.reply.clone(),
            times: i.times,
        })
        .collect();
    config
}

/// The POP3 settings a spec entry of `lab` describes: its user, password
/// and maildrop (from the lab's data).
pub fn pop3_config(spec: &ServerSpec, lab: &Lab) -> pop3::Pop3Config {
    pop3::Pop3Config::new(
        &spec.name,
        spec.user.clone().unwrap_or_default(),
        spec.password.clone().unwrap_or_default(),
        spec.maildrop_messages(&lab.files),
    )
}

/// The HTTP settings a spec entry describes, serving `root` (the lab's data
/// written out), with the run's seed for the latency draws.
pub fn http_config(spec: &ServerSpec, seed: u64, root: &std::path::Path) -> http::HttpConfig {
    let delay = spec.delay.unwrap_or_default();
    http::HttpConfig {
        latency_min: delay.min.get(),
        latency_max: delay.max.get(),
        seed,
        sites: spec.sites.unwrap_or(false),
        ..http::HttpConfig::new(&spec.name, root)
    }
}

/// Waits for the next connection. Accept errors (out of descriptors and the
/// like) are waited out rather than spun on.
pub async fn accept(listener: &tokio::net::TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}

/// Binds a TCP listener on `addr`, inside `netns` when given.
pub fn bind_tcp(
    addr: SocketAddr,
    netns: Option<&NetNs>,
) -> std::io::Result<tokio::net::TcpListener> {
    let listener = match netns {
        Some(ns) => ns.run(move || std::net::TcpListener::bind(addr))??,
        None => std::net::TcpListener::bind(addr)?,
    };
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// The run's TLS (its certificate authority, trusted by the program), when
/// `lab` has a server that speaks TLS. When it cannot be made, the run goes
/// on without TLS and `notes` say why.
pub fn trust(lab: &Lab, notes: &mut Vec<String>) -> Option<tls::RunTrust> {
    let tls = |s: &ServerSpec| s.starttls != Some(false) || s.tls_port.is_some();
    let needed = lab
        .servers
        .iter()
        .any(|s| s.kind.value == ServerKind::Smtp && tls(s));
    if !needed {
        return None;
    }
    tls::RunTrust::new()
        .inspect_err(|e| notes.push(format!("no TLS in this run: {e:#}")))
        .ok()
}

/// The TLS of an SMTP server: the run's authority `ca` (none: no TLS), and
/// the implicit-TLS listener on the spec's `tls_port`, bound next to `addr`.
/// A port that cannot be bound (no root for 465 on the host, say) is left
/// out with a note.
fn smtp_tls(
    spec: &ServerSpec,
    addr: SocketAddr,
    ca: Option<&std::sync::Arc<tls::RunCa>>,
    netns: Option<&NetNs>,
    running: &mut RunningServers,
) -> Option<smtp::Tls> {
    let ca = ca?.clone();
    let implicit = spec.tls_port.and_then(|port| {
        let at = SocketAddr::new(addr.ip(), port);
        match bind_tcp(at, netns) {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(at);
                running.tls_addrs.push((spec.name.clone(), bound));
                if let Ok(fd) = listener.as_fd().try_clone_to_owned() {
                    running.sockets.push(Socket {
                        name: spec.name.clone(),
                        kind: ServerKind::Smtp,
                        transport: crate::trace::Transport::Tcp,
                        addr: bound,
                        fd,
                    });
                }
                Some(listener)
            }
            Err(e) => {
                running.notes.push(format!(
                    "the {} server offers no implicit TLS: cannot bind TCP {at} ({e}); a client that connects there with TLS finds nothing",
                    spec.name
                ));
                None
            }
        }
    });
    Some(smtp::Tls { ca, implicit })
}

/// Starts every server of `lab`. `data_root` is the lab's data written out to
/// disk, for servers that serve files; `ca` the run's certificate authority,
/// for servers that speak TLS (without one they do not).
pub fn start(
    lab: &Lab,
    seed: u64,
    netns: Option<&NetNs>,
    data_root: Option<&std::path::Path>,
    ca: Option<&std::sync::Arc<tls::RunCa>>,
    recorder: &Recorder,
) -> Result<RunningServers> {
    let mut running = RunningServers::default();
    // Sockets register with the servers' runtime, where their tasks run.
    let rt = clock::handle();
    let _entered = rt.enter();
    let mut swarm = Vec::new();
    for spec in &lab.servers {
        let addr: SocketAddr = format!("{}:{}", spec.host, spec.port)
            .parse()
            .with_context(|| {
                format!(
                    "server `{}`: `{}` is not an IP address",
                    spec.name, spec.host
                )
            })?;
        let busy = if netns.is_none() {
            " (is another program using that port?)"
        } else {
            ""
        };
        match spec.kind.value {
            kind @ (ServerKind::Smtp | ServerKind::Pop3 | ServerKind::Http) => {
                let listener = bind_tcp(addr, netns).with_context(|| {
                    format!("cannot bind the {} server to TCP {addr}{busy}", spec.name)
                })?;
                running
                    .addrs
                    .push((spec.name.clone(), listener.local_addr()?));
                running.sockets.push(Socket {
                    name: spec.name.clone(),
                    kind,
                    transport: crate::trace::Transport::Tcp,
                    addr: listener.local_addr()?,
                    fd: listener.as_fd().try_clone_to_owned()?,
                });
                running.tcp = true;
                let recorder = recorder.clone();
                let task = match kind {
                    ServerKind::Smtp => {
                        let tls = smtp_tls(spec, addr, ca, netns, &mut running);
                        rt.spawn(smtp::run(listener, tls, smtp_config(spec), recorder))
                    }
                    ServerKind::Pop3 => {
                        rt.spawn(pop3::run(listener, pop3_config(spec, lab), recorder))
                    }
                    _ => {
                        let root = data_root.context("an http server needs the lab's data")?;
                        rt.spawn(http::run(listener, http_config(spec, seed, root), recorder))
                    }
                };
                running.tasks.push(task);
            }
            ServerKind::UdpPinger => {
                let socket = udp::UdpServerSocket::bind(addr, netns).with_context(|| {
                    format!(
                        "cannot bind the {} server to UDP {addr}{}",
                        spec.name,
                        if netns.is_none() {
                            " (is another program, e.g. your own UDPPingerServer.py, using that port?)"
                        } else {
                            ""
                        }
                    )
                })?;
                let bound = socket.local_addr();
                running.sockets.push(Socket {
                    name: spec.name.clone(),
                    kind: ServerKind::UdpPinger,
                    transport: crate::trace::Transport::Udp,
                    addr: bound,
                    fd: socket.as_fd().try_clone_to_owned()?,
                });
                let config = pinger_config(spec, seed);
                let stop = running.stop.subscribe();
                running.drainers.push(rt.spawn(pinger::run(
                    socket,
                    config,
                    recorder.clone(),
                    stop,
                )));
                running.addrs.push((spec.name.clone(), bound));
            }
            ServerKind::Dns => start_dns(spec, addr, seed, netns, recorder, &mut running)?,
            ServerKind::Tracker | ServerKind::Peer => {
                let listener = bind_tcp(addr, netns).with_context(|| {
                    format!("cannot bind the {} server to TCP {addr}{busy}", spec.name)
                })?;
                let bound = listener.local_addr()?;
                running.addrs.push((spec.name.clone(), bound));
                running.sockets.push(Socket {
                    name: spec.name.clone(),
                    kind: spec.kind.value,
                    transport: crate::trace::Transport::Tcp,
                    addr: bound,
                    fd: listener.as_fd().try_clone_to_owned()?,
                });
                swarm.push((spec, listener));
            }
        }
    }
    if !swarm.is_empty() || !lab.torrents.is_empty() {
        start_swarm(lab, seed, swarm, recorder, &mut running)?;
    }
    Ok(running)
}

/// The announce URL of a lab's torrents: its tracker's (the first), at
/// the address it is bound to; the handout's usual one without a tracker.
fn announce_url(swarm: &[(&ServerSpec, tokio::net::TcpListener)]) -> String {
    swarm
        .iter()
        .find(|(s, _)| s.kind.value == ServerKind::Tracker)
        .and_then(|(_, l)| l.local_addr().ok())
        .map_or("http://127.0.0.1:6969/announce".into(), |a| {
            format!("http://{a}/announce")
        })
}

/// Starts a lab's tracker and peers on their bound listeners: the lab's
/// torrents are made (and handed to the program as `NAME.torrent`), each
/// peer seeds its torrent and the tracker lists it.
fn start_swarm(
    lab: &Lab,
    seed: u64,
    swarm: Vec<(&ServerSpec, tokio::net::TcpListener)>,
    recorder: &Recorder,
    running: &mut RunningServers,
) -> Result<()> {
    let rt = clock::handle();
    let announce = announce_url(&swarm);
    let torrents = crate::torrent::lab_torrents(lab, seed, &announce)?;
    for t in &torrents {
        running
            .files
            .push((format!("{}.torrent", t.name), t.meta.to_bytes()));
        recorder.record(crate::trace::EventKind::Torrent {
            name: t.name.clone(),
            meta: t.meta.clone(),
        });
        // A student's peer seeds: it gets the content too.
        if lab.program.role == crate::spec::Role::Server {
            running.files.extend(content_files(t));
        }
    }
    let mut tracker = tracker::Tracker::new(torrents.iter().map(|t| t.meta.info_hash), 60);
    let mut tracker_at = None;
    for (spec, listener) in swarm {
        if spec.kind.value == ServerKind::Tracker {
            tracker = tracker.with_interval(spec.interval.unwrap_or(60));
            tracker_at = Some((spec.name.clone(), listener));
            continue;
        }
        let t = crate::torrent::LabTorrent::named(&torrents, spec.torrent.as_deref())
            .with_context(|| format!("peer `{}`: no torrent to seed", spec.name))?;
        let content = peer::Content {
            info_hash: t.meta.info_hash.0,
            piece_length: t.meta.info.piece_length as u32,
            data: t.data.to_vec(),
        };
        let behaviour = peer_behaviour(spec, seed, &content);
        let seeder = std::sync::Arc::new(peer::Seeder::new(
            &spec.name,
            content,
            behaviour,
            recorder.clone(),
        ));
        if let Ok(std::net::SocketAddr::V4(at)) = listener.local_addr() {
            tracker.pin(t.meta.info_hash, seeder.peer_id, *at.ip(), at.port());
        }
        running.swarm.push(Serving::Peer(seeder.clone()));
        running.tasks.push(rt.spawn(peer::serve(listener, seeder)));
    }
    if let Some((name, listener)) = tracker_at {
        let tracker = std::sync::Arc::new(std::sync::Mutex::new(tracker));
        let recorder = recorder.clone();
        let record = std::sync::Arc::new(move |record: tracker::AnnounceRecord| {
            recorder.record(crate::trace::EventKind::Announce {
                server: name.clone(),
                record,
            });
        });
        let slots = std::sync::Arc::<std::sync::atomic::AtomicUsize>::default();
        running.swarm.push(Serving::Tracker(slots.clone()));
        running.tasks.push(rt.spawn(async move {
            let _ = tracker::serve_counted(listener, tracker, record, slots).await;
        }));
    }
    Ok(())
}

/// A torrent's content as files next to the program: one file called by
/// the torrent's name, or a folder of its files.
fn content_files(t: &crate::torrent::LabTorrent) -> Vec<(String, Vec<u8>)> {
    let mut at = 0usize;
    t.meta
        .info
        .files()
        .into_iter()
        .map(|(path, len)| {
            let bytes = t.data[at..at + len as usize].to_vec();
            at += len as usize;
            (path.to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// How a lab's peer behaves, from its spec and the run's seed.
pub fn peer_behaviour(spec: &ServerSpec, seed: u64, content: &peer::Content) -> peer::Behaviour {
    let corrupt = spec
        .corrupt_pieces
        .iter()
        .flatten()
        .map(|&piece| {
            let (_, offset) = peer::Behaviour::seeded_corrupt(seed ^ u64::from(piece), content);
            (piece, offset % content.piece_len(piece).max(1))
        })
        .collect();
    let mut has = spec.has.clone();
    if let Some(h) = &mut has {
        h.sort_unstable();
        h.dedup();
    }
    peer::Behaviour {
        has,
        choke_until_interested: spec.choke_until_interested.unwrap_or(false),
        corrupt,
        disconnect_mid_piece: spec.disconnect_pieces.clone().unwrap_or_default(),
        slow: spec.slow.map(|d| d.get()),
        gains: spec.gains.clone().unwrap_or_default(),
    }
}

/// The file a DNS hierarchy's root hints are written to, next to the program.
pub const ROOT_HINTS: &str = "named.root";

/// The addresses a DNS server binds: in a hierarchy, each address a zone is
/// served at (the root's first); else the spec's own.
pub fn dns_addrs(config: &dns::DnsConfig, addr: SocketAddr) -> Vec<SocketAddr> {
    if !config.zones.hierarchy {
        return vec![addr];
    }
    config
        .zones
        .views
        .iter()
        .filter_map(|v| v.addr)
        .map(|ip| SocketAddr::new(ip.into(), addr.port()))
        .collect()
}

/// Binds a DNS server's UDP socket and TCP listener at each of its
/// addresses and starts it; a hierarchy also hands the program its root hints.
fn start_dns(
    spec: &ServerSpec,
    addr: SocketAddr,
    seed: u64,
    netns: Option<&NetNs>,
    recorder: &Recorder,
    running: &mut RunningServers,
) -> Result<()> {
    let rt = clock::handle();
    let config = dns::config(spec, seed);
    let shared = dns::Shared::new(config.clone(), recorder.clone());
    let busy = if netns.is_none() {
        " (is another DNS server using that port? port 53 also needs root)"
    } else {
        ""
    };
    let mut first = None;
    for at in dns_addrs(&config, addr) {
        let udp = udp::UdpServerSocket::bind(at, netns)
            .with_context(|| format!("cannot bind the {} server to UDP {at}{busy}", spec.name))?;
        let bound = udp.local_addr();
        // The same port over TCP (a free port picked for UDP is taken for both).
        let tcp_at = SocketAddr::new(at.ip(), bound.port());
        let tcp = bind_tcp(tcp_at, netns).with_context(|| {
            format!("cannot bind the {} server to TCP {tcp_at}{busy}", spec.name)
        })?;
        for (transport, fd) in [
            (
                crate::trace::Transport::Udp,
                udp.as_fd().try_clone_to_owned()?,
            ),
            (
                crate::trace::Transport::Tcp,
                tcp.as_fd().try_clone_to_owned()?,
            ),
        ] {
            running.sockets.push(Socket {
                name: spec.name.clone(),
                kind: ServerKind::Dns,
                transport,
                addr: bound,
                fd,
            });
        }
        first.get_or_insert(bound);
        let stop = running.stop.subscribe();
        running
            .drainers
            .push(rt.spawn(dns::serve_udp(udp, shared.clone(), stop)));
        running
            .tasks
            .push(rt.spawn(dns::serve_tcp(tcp, shared.clone())));
    }
    running.dns.push(shared);
    let first = first.with_context(|| format!("the {} server has no zone to serve", spec.name))?;
    running.addrs.push((spec.name.clone(), first));
    if let Some(hints) = config.zones.root_hints().filter(|_| config.zones.hierarchy) {
        running.files.push((ROOT_HINTS.into(), hints.into_bytes()));
    }
    Ok(())
}
