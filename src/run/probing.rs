//! The program phase of a server lab: start the student's server, find the
//! port it listens on, send the lab's probes, stop it.
//!
//! One fault costs one request, not every request after it. After each probe
//! netgrade looks whether the server is still there; when it has ended
//! (exited, or stopped listening), the end is recorded against the last
//! request that reached it ([`EventKind::ServerEnded`], with what it printed
//! on stderr since: the traceback), and the server is started again with the
//! same command, in the same directory and network
//! ([`EventKind::ServerRestarted`]), for the next probe. A probe whose request
//! never reached the server (refused, or reset without a byte: the instance
//! was already going) is sent again to the new instance, once.
//!
//! The restarted server binds the same port at once, with or without
//! `SO_REUSEADDR`: the probes reset every connection the server closed first
//! (see [`probes::http`]), so no socket of the server lingers in TIME_WAIT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::outcome::{ExitKind, InstanceSummary};
use crate::probes::{self, http};
use crate::sandbox::{self, NetNs, Running, ports};
use crate::spec::{Lab, ProbeSpec};
use crate::trace::{EventKind, Recorder};

/// How often netgrade looks for the student's listening socket.
const LISTEN_POLL: Duration = Duration::from_millis(20);
/// How long a server that may be ending (a connection closed without an
/// answer, or no listening socket) is given to finish ending, or to listen again.
const END_SETTLE: Duration = Duration::from_secs(1);
/// How often netgrade looks during [`END_SETTLE`].
const END_POLL: Duration = Duration::from_millis(10);

/// Another instance of the student's server (a lab of `program.instances`),
/// ready to start: its number (from 2), the port it is told, its command
/// (in its own folder, as its own user), or why it cannot start.
pub struct OtherInstance {
    /// Its number, from 2.
    pub number: u8,
    /// The port it is told to listen on.
    pub port: u16,
    /// How to start it, or why it cannot be.
    pub cmd: Result<sandbox::Command, String>,
}

/// Starts a student's server (and its other instances, in a lab of
/// several), waits until it listens, runs the lab's probes against it
/// (restarting the first instance when a request ends it), and stops it.
/// Every step has a deadline. The result is the first instance's last exit,
/// with the output, durations and leftovers of each of its restarts, and
/// an account of each other instance.
pub async fn drive_server(
    lab: &Lab,
    cmd: &sandbox::Command,
    (fallback, others): (Option<u16>, &[OtherInstance]),
    netns: Option<&NetNs>,
    recorder: &Recorder,
    seed: u64,
) -> (sandbox::Finished, Vec<InstanceSummary>) {
    let started = Instant::now();
    let ready = lab.program.ready_timeout.get();
    let socket = Socket::of(lab);
    let instance =
        match Instance::start(cmd, (fallback, socket), netns, recorder, started + ready).await {
            Ok(i) => i,
            Err((finished, listen)) => {
                if let Some((waited, exited)) = listen {
                    recorder.record(EventKind::NotListening { waited, exited });
                }
                return (finished, Vec::new());
            }
        };
    recorder.record(EventKind::Listening {
        addr: instance.target,
        all: instance.all.clone(),
    });
    let mut extras = Vec::new();
    for other in others {
        let deadline = Instant::now() + ready;
        extras.push(Extra::start(other, socket, netns, recorder, deadline).await);
    }
    let session = Session {
        cmd,
        fallback,
        socket,
        seed,
        netns,
        recorder,
        // The program's time limit bounds the probing too (each probe has its own deadline).
        stop_at: started + cmd.time_limit,
        ready,
        steps: steps(&lab.probes),
        torrents: std::sync::Arc::new(
            crate::torrent::lab_torrents(lab, seed, "").unwrap_or_default(),
        ),
        max_restarts: 2 * lab.probes.len(),
        ended: Vec::new(),
        others: extras.iter().map(Extra::addr).collect(),
    };
    let finished = session.run(instance).await;
    let mut summaries = Vec::new();
    for extra in extras {
        summaries.push(extra.stop(recorder, cmd.output_limit).await);
    }
    (finished, summaries)
}

/// Another instance while the probes run: started, or never started.
struct Extra {
    number: u8,
    port: u16,
    command: Vec<String>,
    running: Result<Instance, sandbox::Finished>,
}

impl Extra {
    /// Starts `other` and waits until it listens (at most until
    /// `deadline`); records [`EventKind::InstanceStarted`].
    async fn start(
        other: &OtherInstance,
        socket: Socket,
        netns: Option<&NetNs>,
        recorder: &Recorder,
        deadline: Instant,
    ) -> Extra {
        let began = Instant::now();
        let (command, running) = match &other.cmd {
            Ok(cmd) => {
                let fallback = (Some(other.port), socket);
                let started = Instance::start(cmd, fallback, netns, recorder, deadline).await;
                (cmd.argv.clone(), started.map_err(|(finished, _)| finished))
            }
            Err(reason) => (Vec::new(), Err(sandbox::not_started(reason.clone()))),
        };
        recorder.record(EventKind::InstanceStarted {
            instance: other.number,
            port: other.port,
            addr: running.as_ref().ok().map(|i| i.target),
            waited: began.elapsed(),
        });
        Extra {
            number: other.number,
            port: other.port,
            command,
            running,
        }
    }

    /// Where probes to this instance go: where it listens, else the port
    /// it was told (nothing listens there: they are refused).
    fn addr(&self) -> SocketAddr {
        match &self.running {
            Ok(i) => i.target,
            Err(_) => SocketAddr::from(([127, 0, 0, 1], self.port)),
        }
    }

    /// Stops it; records [`EventKind::InstanceEnded`] and returns its account.
    async fn stop(self, recorder: &Recorder, limit: u64) -> InstanceSummary {
        let listened = self.running.as_ref().ok().map(|i| i.target);
        let finished = match self.running {
            Ok(i) => i.running.stop().await,
            Err(finished) => finished,
        };
        let (stdout, out_cut) = crate::outcome::shown_output(&finished.stdout);
        let (stderr, err_cut) = crate::outcome::shown_output(&finished.stderr);
        let tail = String::from_utf8_lossy(tail(&finished.stderr, STDERR_TAIL)).into_owned();
        recorder.record(EventKind::InstanceEnded {
            instance: self.number,
            exit: finished.exit.clone(),
            stderr: tail,
        });
        InstanceSummary {
            instance: self.number,
            command: self.command,
            port: self.port,
            listened,
            exit: finished.exit,
            duration_ms: finished.duration.as_millis() as u64,
            stdout,
            stderr,
            truncated: out_cut || err_cut || finished.cut.iter().any(|c| *c) || limit == 0,
        }
    }
}

/// Bytes of another instance's stderr kept in its [`EventKind::InstanceEnded`].
const STDERR_TAIL: usize = 2048;

/// The last `n` bytes of `bytes`, from a line's start when one is near.
fn tail(bytes: &[u8], n: usize) -> &[u8] {
    let from = bytes.len().saturating_sub(n);
    let rest = &bytes[from..];
    match (from, rest.iter().position(|b| *b == b'\n')) {
        (0, _) | (_, None) => rest,
        (_, Some(nl)) => &rest[nl + 1..],
    }
}

/// The probing of one run: the steps, and the instances that ended so far.
struct Session<'a> {
    cmd: &'a sandbox::Command,
    fallback: Option<u16>,
    /// What kind of socket the server serves on.
    socket: Socket,
    /// The run's seed (DNS probes' IDs).
    seed: u64,
    netns: Option<&'a NetNs>,
    recorder: &'a Recorder,
    stop_at: Instant,
    ready: Duration,
    steps: Vec<Step<'a>>,
    /// The lab's torrents, for leech probes.
    torrents: std::sync::Arc<Vec<crate::torrent::LabTorrent>>,
    /// Each step may end the server once, and once more when sent again.
    max_restarts: usize,
    ended: Vec<sandbox::Finished>,
    /// Where the other instances listen (instance 2 first).
    others: Vec<SocketAddr>,
}

/// A step whose request reached the current instance: its index, when it
/// began, how it went.
type Reached = (usize, Duration, StepOutcome);

impl Session<'_> {
    /// Runs every step, restarting the server after each end.
    async fn run(mut self, mut instance: Instance) -> sandbox::Finished {
        let mut last: Option<Reached> = None;
        let mut retried = false;
        let mut k = 0;
        while k < self.steps.len() && Instant::now() < self.stop_at {
            let began = self.recorder.now();
            let (gone, watch) = tokio::sync::watch::channel(false);
            let targets: Vec<SocketAddr> = std::iter::once(instance.target)
                .chain(self.others.iter().copied())
                .collect();
            let step = run_step(
                &self.steps[k],
                &targets,
                (self.netns, self.recorder),
                (self.seed, &self.torrents),
                watch,
            );
            let outcome = instance.watching(step, &gone).await;
            // A step for another instance says nothing of the first one.
            let first = self.steps[k].reaches_first();
            if !first || !instance.ended(outcome.died_silent()).await {
                last = Some((k, began, outcome));
                (k, retried) = (k + 1, false);
                continue;
            }
            // Refused or reset before a byte: the instance was already going,
            // after the request before. Otherwise this request is the last it received.
            let retry = outcome.never_reached() && !retried;
            let (blamed, since) = match (retry, &last) {
                (true, Some(before)) => self.blame(before),
                (true, None) => (None, instance.began),
                (false, _) => self.blame(&(k, began, outcome)),
            };
            let finished = instance.running.stop().await;
            record_end(self.recorder, blamed, &finished, since);
            self.ended.push(finished);
            let more = retry || k + 1 < self.steps.len();
            instance = match self.restart(more).await {
                Some(i) => i,
                None => return merge(self.ended, None, self.cmd.output_limit),
            };
            last = None;
            if retry {
                retried = true;
            } else {
                (k, retried) = (k + 1, false);
            }
        }
        self.finish(instance, last).await
    }

    /// The probe an end after `reached` is recorded against, and since when
    /// the instance's stderr belongs to it.
    fn blame(&self, (k, began, outcome): &Reached) -> (Option<String>, Duration) {
        (Some(self.steps[*k].blamed(outcome)), *began)
    }

    /// Starts the server again when `more` steps need it and the limits
    /// allow; records [`EventKind::ServerRestarted`].
    async fn restart(&mut self, more: bool) -> Option<Instance> {
        if !more || self.ended.len() > self.max_restarts || Instant::now() >= self.stop_at {
            return None;
        }
        let attempt = self.ended.len() as u32;
        let deadline = (Instant::now() + self.ready).min(self.stop_at);
        let started = Instance::start(
            self.cmd,
            (self.fallback, self.socket),
            self.netns,
            self.recorder,
            deadline,
        )
        .await;
        let addr = started.as_ref().ok().map(|i| i.target);
        self.recorder
            .record(EventKind::ServerRestarted { attempt, addr });
        match started {
            Ok(i) => Some(i),
            Err((finished, _)) => {
                self.ended.push(finished);
                None
            }
        }
    }

    /// After the last step: lets the output settle and stops the server;
    /// one that had ended by itself is recorded against the last request.
    async fn finish(self, instance: Instance, last: Option<Reached>) -> sandbox::Finished {
        settle_output(self.recorder).await;
        let finished = instance.running.stop().await;
        if finished.exit != ExitKind::Stopped {
            let (blamed, since) = match &last {
                Some(reached) => self.blame(reached),
                None => (None, instance.began),
            };
            record_end(self.recorder, blamed, &finished, since);
        }
        merge(self.ended, Some(finished), self.cmd.output_limit)
    }
}

/// Records [`EventKind::ServerEnded`] for an instance that ended after
/// `blamed`, which began at `since`.
fn record_end(
    recorder: &Recorder,
    blamed: Option<String>,
    finished: &sandbox::Finished,
    since: Duration,
) {
    recorder.record(EventKind::ServerEnded {
        probe: blamed,
        exit: finished.exit.clone(),
        since,
    });
}

/// One running instance of the student's server.
struct Instance {
    running: Running,
    /// Where probes connect.
    target: SocketAddr,
    /// Every TCP address it listened on when found.
    all: Vec<SocketAddr>,
    /// Whether its listening socket was seen in /proc (else only its exit tells).
    seen: bool,
    /// What kind of socket it serves on.
    socket: Socket,
    /// When it was started, on the run's clock.
    began: Duration,
}

impl Instance {
    /// Starts the program and waits until it listens, at most until
    /// `deadline`. One that cannot start comes back as it finished; one that
    /// never listens is stopped and comes back with how long netgrade waited
    /// and whether it had exited.
    async fn start(
        cmd: &sandbox::Command,
        (fallback, socket): (Option<u16>, Socket),
        netns: Option<&NetNs>,
        recorder: &Recorder,
        deadline: Instant,
    ) -> Result<Instance, (sandbox::Finished, Option<(Duration, bool)>)> {
        let began = recorder.now();
        let started = Instant::now();
        let running = sandbox::spawn(cmd, recorder).map_err(|f| (*f, None))?;
        let found = loop {
            let all = crate::rt::blocking(|| socket.bound(&running.processes())).await;
            // Prefer the handout's port when the program listens on several.
            let chosen = all
                .iter()
                .find(|a| Some(a.port()) == fallback)
                .or(all.first())
                .copied();
            if let Some(addr) = chosen {
                break Some((ports::connect_addr(addr), all, true));
            }
            if running.has_exited() || Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(LISTEN_POLL).await;
        };
        // Unseen, but maybe listening where the lab says (another user's process, an odd stack).
        let found = match (found, fallback) {
            (None, Some(port)) if !running.has_exited() && socket == Socket::Tcp => {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                probes::connect(addr, netns, Duration::from_secs(1))
                    .await
                    .ok()
                    .map(|_| (addr, vec![], false))
            }
            (found, _) => found,
        };
        match found {
            Some((target, all, seen)) => Ok(Instance {
                running,
                target,
                all,
                seen,
                socket,
                began,
            }),
            None => {
                let (waited, exited) = (started.elapsed(), running.has_exited());
                Err((running.stop().await, Some((waited, exited))))
            }
        }
    }

    /// Runs `step`, telling `gone` when the server ends meanwhile (a DNS
    /// probe waiting for a datagram has no connection to tell it).
    async fn watching(
        &self,
        step: impl std::future::Future<Output = StepOutcome>,
        gone: &tokio::sync::watch::Sender<bool>,
    ) -> StepOutcome {
        tokio::pin!(step);
        loop {
            tokio::select! {
                outcome = &mut step => return outcome,
                () = tokio::time::sleep(LISTEN_POLL) => {
                    // A daemon's first process exits while its child serves.
                    if self.running.has_exited() && !self.up() {
                        let _ = gone.send(true);
                    }
                }
            }
        }
    }

    /// Whether the server still accepts connections where the probes go.
    fn up(&self) -> bool {
        if self.seen {
            let port = self.target.port();
            crate::rt::now(|| self.socket.bound(&self.running.processes()))
                .iter()
                .any(|a| a.port() == port)
        } else {
            !self.running.has_exited()
        }
    }

    /// Whether the server has ended: exited, or no longer listening for
    /// [`END_SETTLE`] (a server that closes and reopens its socket between
    /// requests is back well before). After a connection that died without an
    /// answer (`suspect`), a server that still listens is watched for
    /// [`END_SETTLE`] too: it may be printing its traceback on the way out.
    async fn ended(&self, suspect: bool) -> bool {
        let until = Instant::now() + END_SETTLE;
        loop {
            let up = self.up();
            if up && !suspect {
                return false;
            }
            if !up && self.running.has_exited() {
                return true;
            }
            if Instant::now() >= until {
                return !up;
            }
            tokio::time::sleep(END_POLL).await;
        }
    }
}

/// The kind of socket a student's server serves on, and so how netgrade
/// finds it: a listening TCP socket (web servers), or a bound UDP socket
/// (DNS servers, whose probes are datagrams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Socket {
    Tcp,
    Udp,
}

impl Socket {
    /// UDP when the lab sends a DNS probe over UDP or heartbeats, else TCP.
    fn of(lab: &Lab) -> Socket {
        if lab.probes_over_udp() {
            Socket::Udp
        } else {
            Socket::Tcp
        }
    }

    /// The addresses `pids` serve on.
    fn bound(self, pids: &[i32]) -> Vec<SocketAddr> {
        match self {
            Socket::Tcp => ports::listening(pids),
            Socket::Udp => ports::bound_udp(pids),
        }
    }
}

/// What a step sends: one probe, or a held probe and the probe run while it waits.
enum Step<'a> {
    One(&'a ProbeSpec),
    Held {
        held: &'a ProbeSpec,
        during: Option<&'a ProbeSpec>,
    },
}

/// The probes grouped into steps: a `hold` probe takes the next one with it.
fn steps(probes: &[ProbeSpec]) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < probes.len() {
        if probes[i].hold {
            out.push(Step::Held {
                held: &probes[i],
                during: probes.get(i + 1),
            });
            i += 2;
        } else {
            out.push(Step::One(&probes[i]));
            i += 1;
        }
    }
    out
}

/// How each exchange of a step went, in the order the requests were sent.
struct StepOutcome(Vec<(String, http::Summary)>);

impl StepOutcome {
    /// Some connection died without an answer: the server may be ending.
    fn died_silent(&self) -> bool {
        self.0.iter().any(|(_, s)| s.died_silent())
    }

    /// No request of the step reached the server's code.
    fn never_reached(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(|(_, s)| s.never_reached())
    }
}

impl Step<'_> {
    /// The probe the step is about (a held one's, the held probe).
    fn spec(&self) -> &ProbeSpec {
        match self {
            Step::One(p) | Step::Held { held: p, .. } => p,
        }
    }

    /// The instance the step goes to, from 1 (`None`: to every instance).
    fn instance(&self) -> Option<u8> {
        let spec = self.spec();
        if spec.leech.as_ref().is_some_and(|l| l.swarm) {
            return None;
        }
        Some(spec.instance.unwrap_or(1))
    }

    /// Whether the step sends anything to the first instance.
    fn reaches_first(&self) -> bool {
        self.instance().is_none_or(|k| k == 1)
    }

    /// The probe an end after this step is recorded against: the first whose
    /// connection died without an answer, else the last request sent.
    fn blamed(&self, outcome: &StepOutcome) -> String {
        outcome
            .0
            .iter()
            .find(|(_, s)| s.died_silent())
            .or(outcome.0.last())
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| match self {
                Step::One(p) | Step::Held { held: p, .. } => p.id.value.clone(),
            })
    }
}

/// Runs one step against `target`, on the servers' runtime: its timers are
/// the ones netgrade watches, so a run whose probes ran late is regraded
/// rather than judged on late evidence.
async fn run_step(
    step: &Step<'_>,
    targets: &[SocketAddr],
    (netns, recorder): (Option<&NetNs>, &Recorder),
    (seed, torrents): (u64, &std::sync::Arc<Vec<crate::torrent::LabTorrent>>),
    gone: tokio::sync::watch::Receiver<bool>,
) -> StepOutcome {
    // Validation keeps every probe's instance among the lab's.
    let k = step.instance().unwrap_or(1);
    let target = targets[usize::from(k.max(1) - 1).min(targets.len() - 1)];
    if let Step::One(spec) = step
        && let Some(leech) = &spec.leech
    {
        let targets: Vec<(u8, SocketAddr)> = match step.instance() {
            Some(k) => vec![(k, target)],
            None => (1..).zip(targets.iter().copied()).collect(),
        };
        return leech_step(spec, leech, &targets, (netns, recorder), torrents).await;
    }
    if let Step::One(spec) = step
        && let Some(announce) = &spec.announce
    {
        return announce_step(spec, announce, target, (netns, recorder), seed).await;
    }
    if let Step::One(spec) = step
        && let Some(heartbeat) = &spec.heartbeat
    {
        let plan = probes::heartbeat::Plan::new(&spec.id.value, heartbeat, seed);
        let (netns, recorder) = (netns.and_then(|ns| ns.try_clone().ok()), recorder.clone());
        return until_gone(gone, move |ended| async move {
            let summary =
                probes::heartbeat::run(&plan, target, netns.as_ref(), &recorder, ended).await;
            StepOutcome(vec![(plan.name, summary)])
        })
        .await;
    }
    if let Step::One(spec) = step
        && let Some(dns) = &spec.dns
    {
        let probe = probes::dns::Probe::from_spec(spec, dns, seed);
        let (netns, recorder) = (netns.and_then(|ns| ns.try_clone().ok()), recorder.clone());
        return until_gone(gone, move |ended| async move {
            let summary =
                probes::dns::exchange_until(target, netns.as_ref(), &probe, &recorder, ended).await;
            StepOutcome(vec![(probe.name, summary)])
        })
        .await;
    }
    let owned = match step {
        Step::One(spec) => (probe(spec, target), None),
        Step::Held { held, during } => {
            (probe(held, target), Some(during.map(|p| probe(p, target))))
        }
    };
    let netns = netns.and_then(|ns| ns.try_clone().ok());
    let recorder = recorder.clone();
    let task = crate::servers::clock::handle().spawn(async move {
        let (first, during) = owned;
        run_probes(first, during, target, netns.as_ref(), &recorder).await
    });
    // A run stopped meanwhile (Ctrl-C) stops its probes too.
    let abort = task.abort_handle();
    let _guard = AbortOnDrop(abort);
    task.await.unwrap_or(StepOutcome(Vec::new()))
}

/// Runs a probe over datagrams, which no connection tells of the server's
/// end, on the servers' runtime: `probe` gets a future that completes when
/// `gone` says the server ended. A run stopped meanwhile stops it too.
async fn until_gone<F, Fut>(mut gone: tokio::sync::watch::Receiver<bool>, probe: F) -> StepOutcome
where
    F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = StepOutcome> + Send + 'static,
{
    let task = crate::servers::clock::handle().spawn(async move {
        let ended = Box::pin(async move {
            if gone.wait_for(|g| *g).await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        probe(ended).await
    });
    let _guard = AbortOnDrop(task.abort_handle());
    task.await.unwrap_or(StepOutcome(Vec::new()))
}

/// A leech probe: netgrade's leecher downloads from the student's peer and
/// records what it did ([`EventKind::Leech`]). A swarm download goes to
/// every instance at once, piece `i` from the `i mod N`-th: one connection,
/// and one record, per instance.
async fn leech_step(
    spec: &ProbeSpec,
    leech: &crate::spec::LeechProbeSpec,
    targets: &[(u8, SocketAddr)],
    (netns, recorder): (Option<&NetNs>, &Recorder),
    torrents: &std::sync::Arc<Vec<crate::torrent::LabTorrent>>,
) -> StepOutcome {
    use crate::servers::peer::leecher::{self, LeechPlan};
    let name = spec.id.value.clone();
    let Some(torrent) = crate::torrent::LabTorrent::named(torrents, leech.torrent.as_deref())
    else {
        return StepOutcome(Vec::new());
    };
    let mut plan = match LeechPlan::for_torrent(&name, &torrent.meta) {
        Ok(p) => p,
        Err(_) => return StepOutcome(Vec::new()),
    };
    plan.expected = Some(torrent.data.clone());
    plan.cancel = leech.cancel;
    plan.pipeline = leech.pipeline.unwrap_or(leecher::PIPELINE).max(1);
    plan.wait = spec.timeout.get();
    plan.deadline = spec.timeout.get() * 4;
    if let Some(crowd) = &leech.crowd {
        let target = targets.first().map(|t| t.1);
        let Some(target) = target else {
            return StepOutcome(Vec::new());
        };
        return crowd_step(&name, crowd, plan, target, (netns, recorder)).await;
    }
    let count = plan.piece_hashes.len() as u32;
    let wanted: Vec<u32> = leech.pieces.clone().unwrap_or_else(|| (0..count).collect());
    let n = targets.len();
    let mut tasks = Vec::new();
    for (i, &(instance, target)) in targets.iter().enumerate() {
        let mut plan = plan.clone();
        plan.conn = u32::from(instance);
        plan.pieces = match (n, &leech.pieces) {
            (1, pieces) => pieces.clone(),
            _ => Some(
                wanted
                    .iter()
                    .copied()
                    .filter(|p| *p as usize % n == i)
                    .collect(),
            ),
        };
        let netns = netns.and_then(|ns| ns.try_clone().ok());
        let recorder = recorder.clone();
        let task = crate::servers::clock::handle()
            .spawn(async move { leech_one(plan, (instance, target), netns, recorder).await });
        tasks.push((AbortOnDrop(task.abort_handle()), task));
    }
    let mut out = Vec::new();
    for (_guard, task) in tasks {
        out.extend(task.await.ok());
    }
    StepOutcome(out)
}

/// A crowd of leechers at once ([`crate::servers::peer::crowd`]); records
/// [`EventKind::Crowd`].
async fn crowd_step(
    name: &str,
    spec: &crate::spec::CrowdSpec,
    torrent: crate::servers::peer::leecher::LeechPlan,
    target: SocketAddr,
    (netns, recorder): (Option<&NetNs>, &Recorder),
) -> StepOutcome {
    use crate::servers::peer::crowd::{self, CrowdPlan};
    let wait = torrent.wait;
    let plan = CrowdPlan {
        torrent,
        paces: crowd::paces(spec.fast, spec.slow, spec.gap.get(), spec.stagger.get()),
        duration: spec.duration.get(),
        wait,
    };
    let netns = netns.and_then(|ns| ns.try_clone().ok());
    let (recorder, name) = (recorder.clone(), name.to_string());
    let task = crate::servers::clock::handle().spawn(async move {
        let at = recorder.now();
        let connect = || probes::connect(target, netns.as_ref(), wait);
        let report = crowd::crowd(&plan, connect).await;
        let joined = report.members.iter().filter(|m| m.joined.is_some()).count();
        let summary = http::Summary {
            end: if joined == 0 {
                crate::trace::ExchangeEnd::ConnectFailed(format!("{target}: no leecher got in"))
            } else {
                crate::trace::ExchangeEnd::Complete
            },
            received: report.members.iter().map(|m| m.blocks as usize).sum(),
        };
        recorder.record_at(
            at,
            EventKind::Crowd {
                probe: name.clone(),
                report: Box::new(report),
            },
        );
        StepOutcome(vec![(name, summary)])
    });
    let _guard = AbortOnDrop(task.abort_handle());
    task.await.unwrap_or(StepOutcome(Vec::new()))
}

/// One leecher's download from one instance; records [`EventKind::Leech`].
async fn leech_one(
    plan: crate::servers::peer::leecher::LeechPlan,
    (instance, target): (u8, SocketAddr),
    netns: Option<NetNs>,
    recorder: Recorder,
) -> (String, http::Summary) {
    use crate::servers::peer::leecher::{self, End};
    let at = recorder.now();
    let report = match probes::connect(target, netns.as_ref(), plan.wait).await {
        Ok(stream) => leecher::leech_over(stream, &plan, &recorder).await,
        Err(e) => leecher::LeechReport {
            end: End::ConnectFailed(format!("{target}: {e}")),
            ..leecher::LeechReport::new()
        },
    };
    let end = match &report.end {
        End::ConnectFailed(why) => crate::trace::ExchangeEnd::ConnectFailed(why.clone()),
        End::Closed { error: Some(_), .. } => crate::trace::ExchangeEnd::Reset,
        End::Closed { .. } => crate::trace::ExchangeEnd::Closed,
        End::TimedOut { .. } => crate::trace::ExchangeEnd::TimedOut,
        _ => crate::trace::ExchangeEnd::Complete,
    };
    let summary = http::Summary {
        end,
        received: report.received as usize,
    };
    recorder.record_at(
        at,
        EventKind::Leech {
            probe: plan.name.clone(),
            instance,
            report: Box::new(report),
        },
    );
    (plan.name, summary)
}

/// Most exchanges of a scenario kept in the trace, in words.
const MAX_SCENARIO_LINES: usize = 64;

/// An announce probe: netgrade's fake peers run one scenario against the
/// student's tracker; its judgement is recorded
/// ([`EventKind::TrackerScenario`]).
async fn announce_step(
    spec: &ProbeSpec,
    announce: &crate::spec::AnnounceProbeSpec,
    target: SocketAddr,
    (netns, recorder): (Option<&NetNs>, &Recorder),
    seed: u64,
) -> StepOutcome {
    use probes::tracker;
    let name = spec.id.value.clone();
    let scenario = announce.scenario.clone();
    let hash = tracker::info_hash_for(seed, &scenario);
    let netns = netns
        .and_then(|ns| ns.try_clone().ok())
        .map(std::sync::Arc::new);
    let mut t = tracker::Target::new(
        target,
        announce.path.as_deref().unwrap_or("/announce"),
        seed,
    );
    t.netns = netns.clone();
    let udp_at = SocketAddr::new(target.ip(), announce.udp_port.unwrap_or(target.port()));
    let mut retry = probes::tracker::udp::Retry::default();
    if let Some(base) = announce.udp_retry {
        retry.base = base.get();
    }
    let recorder = recorder.clone();
    let task = crate::servers::clock::handle().spawn(async move {
        let at = recorder.now();
        let (lines, judgement, end) = if scenario == "udp-tracker" {
            let out = tracker::udp::udp_tracker(udp_at, netns.as_deref(), hash, seed, retry).await;
            let lines: Vec<String> = out.datagrams.iter().map(|d| d.evidence()).collect();
            let answered = out.datagrams.iter().any(|d| d.reply.is_some());
            let end = if answered {
                crate::trace::ExchangeEnd::Complete
            } else {
                crate::trace::ExchangeEnd::TimedOut
            };
            (lines, out.judgement, (end, usize::from(answered)))
        } else {
            let Some(out) = tracker::run(&t, &scenario, hash).await else {
                return StepOutcome(Vec::new());
            };
            let lines = out.exchanges.iter().map(|e| e.evidence()).collect();
            let received: usize = out.exchanges.iter().map(|e| e.received.len()).sum();
            let end = match out.exchanges.first().map(|e| &e.end) {
                Some(tracker::End::ConnectFailed(why)) => {
                    crate::trace::ExchangeEnd::ConnectFailed(why.clone())
                }
                Some(tracker::End::Reset) => crate::trace::ExchangeEnd::Reset,
                Some(tracker::End::Closed) => crate::trace::ExchangeEnd::Closed,
                _ => crate::trace::ExchangeEnd::Complete,
            };
            (lines, out.judgement, (end, received))
        };
        let mut exchanges: Vec<String> = lines;
        exchanges.truncate(MAX_SCENARIO_LINES);
        recorder.record_at(
            at,
            EventKind::TrackerScenario {
                probe: name.clone(),
                scenario,
                exchanges,
                judgement,
            },
        );
        let summary = http::Summary {
            end: end.0,
            received: end.1,
        };
        StepOutcome(vec![(name, summary)])
    });
    let _guard = AbortOnDrop(task.abort_handle());
    task.await.unwrap_or(StepOutcome(Vec::new()))
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One probe, or a held probe with the one run while it is held.
async fn run_probes(
    first: http::Probe,
    during: Option<Option<http::Probe>>,
    target: SocketAddr,
    netns: Option<&NetNs>,
    recorder: &Recorder,
) -> StepOutcome {
    match during {
        None => {
            let summary = http::exchange(target, netns, &first, recorder).await;
            StepOutcome(vec![(first.name, summary)])
        }
        Some(during) => {
            let held = first;
            let until = during.as_ref().map(|p| p.name.as_str());
            let open = http::hold(target, netns, &held, until, recorder).await;
            let mut out = Vec::new();
            let mut kept = None;
            if let Some(during) = &during {
                let (summary, stream) =
                    http::exchange_keeping(target, netns, during, recorder).await;
                out.push((during.name.clone(), summary));
                kept = stream;
            }
            let summary = http::release(open, &held, recorder).await;
            out.push((held.name.clone(), summary));
            // A request that waited for the held one may be answered now: read
            // it rather than hang up on a server about to answer.
            if let (Some(stream), Some(during)) = (kept, &during) {
                http::drain(stream, during, recorder).await;
            }
            StepOutcome(out)
        }
    }
}

/// The probe a spec describes, addressed to `target`.
fn probe(spec: &ProbeSpec, target: SocketAddr) -> http::Probe {
    http::Probe {
        name: spec.id.value.clone(),
        bytes: spec.bytes(&target.ip().to_string(), target.port()),
        head: spec.is_head(),
        timeout: spec.timeout.get(),
        idle: spec.idle.get(),
        max_bytes: PROBE_RESPONSE_LIMIT,
    }
}

/// Lets the server finish what it prints after the last request ("Ready to
/// serve..." before accept()), so transcripts do not depend on scheduling.
async fn settle_output(recorder: &Recorder) {
    let settle_until = Instant::now() + OUTPUT_SETTLE_MAX;
    while Instant::now() < settle_until {
        let last = recorder.last_output().unwrap_or_default();
        if recorder.now().saturating_sub(last) >= OUTPUT_QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One account of every instance: the last one's exit; everyone's time,
/// leftovers and output (up to `limit` bytes per stream).
fn merge(
    mut ended: Vec<sandbox::Finished>,
    last: Option<sandbox::Finished>,
    limit: u64,
) -> sandbox::Finished {
    ended.extend(last);
    let mut all = ended.into_iter();
    let mut merged = all.next().expect("at least one instance ran");
    for f in all {
        merged.exit = f.exit;
        merged.duration += f.duration;
        merged.leftovers += f.leftovers;
        merged.limit = merged.limit.or(f.limit);
        merged.enforcement = merged.enforcement.or(f.enforcement);
        let [out_cut, err_cut] = &mut merged.cut;
        for ((into, cut), (from, from_cut)) in
            [(&mut merged.stdout, out_cut), (&mut merged.stderr, err_cut)]
                .into_iter()
                .zip([f.stdout, f.stderr].into_iter().zip(f.cut))
        {
            let room = (limit as usize).saturating_sub(into.len());
            into.extend_from_slice(&from[..from.len().min(room)]);
            *cut |= from_cut || from.len() > room;
        }
    }
    merged
}

/// What the trace says about restarts, for the program's diagnoses: one
/// line per instance that ended during probing.
pub fn restart_notes(lab: &Lab, recorder: &Recorder) -> Vec<String> {
    if lab.probes.is_empty() {
        return Vec::new();
    }
    let trace = recorder.snapshot();
    let restarts = trace
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ServerRestarted { .. }))
        .count();
    if restarts == 0 {
        return Vec::new();
    }
    // "exited with status 0 after GET /a, GET /b; exited with status 1 after GET /c"
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for e in &trace.events {
        let EventKind::ServerEnded { probe, exit, .. } = &e.kind else {
            continue;
        };
        let request = probe
            .as_deref()
            .and_then(|p| lab.probes.iter().find(|s| s.id.value == p))
            .map_or_else(|| "its start".to_string(), |s| s.request_line());
        let how = exit.describe();
        match groups.iter_mut().find(|(h, _)| *h == how) {
            Some((_, requests)) => requests.push(request),
            None => groups.push((how, vec![request])),
        }
    }
    let ends: Vec<String> = groups
        .into_iter()
        .map(|(how, requests)| format!("it {how} after {}", requests.join(", ")))
        .collect();
    vec![format!(
        "netgrade started the server again {restarts} time(s) during probing: {}",
        ends.join("; ")
    )]
}

/// A server counts as done printing after this long without output …
const OUTPUT_QUIET: Duration = Duration::from_millis(150);
/// … or after this long, whichever comes first.
const OUTPUT_SETTLE_MAX: Duration = Duration::from_secs(1);

/// Most response bytes a probe keeps.
const PROBE_RESPONSE_LIMIT: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::spec::load_str;

    const LAB: &str = "\
name: t
title: T
program:
  role: server
  entry: [server.py]
  port: 6789
probes:
  - { id: a, method: GET, target: /a }
  - { id: b, method: GET, target: /b }
  - { id: held, method: GET, target: /a, hold: true }
  - { id: during, method: GET, target: /a }
  - { id: c, method: GET, target: /c }
checks:
  - id: keeps-serving
    title: keeps serving
    points: 1
    probes: [a, b, c]
";

    /// A handout-style server on port 6789 without SO_REUSEADDR: `once`
    /// answers one request and exits; `crash` dies on /b with a traceback.
    const SERVER: &str = r#"
import socket, sys
mode = sys.argv[1]
s = socket.socket()
s.bind(('', 6789))
s.listen(1)
while True:
    c, _ = s.accept()
    path = c.recv(1024).decode().split()[1]
    if mode == 'crash' and path == '/b':
        raise RuntimeError('boom on ' + path)
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
    c.close()
    if mode == 'once':
        break
"#;

    fn summary(end: ExchangeEnd, received: usize) -> http::Summary {
        http::Summary { end, received }
    }

    use crate::trace::ExchangeEnd;

    #[test]
    fn a_held_probe_takes_the_next_one_with_it() {
        let lab = load_str("t.yaml", LAB).unwrap();
        let ids: Vec<Vec<&str>> = steps(&lab.probes)
            .iter()
            .map(|s| match s {
                Step::One(p) => vec![p.id.value.as_str()],
                Step::Held { held, during } => [Some(*held), *during]
                    .into_iter()
                    .flatten()
                    .map(|p| p.id.value.as_str())
                    .collect(),
            })
            .collect();
        assert_eq!(
            ids,
            [vec!["a"], vec!["b"], vec!["held", "during"], vec!["c"]]
        );
    }

    #[test]
    fn steps_go_to_their_instance_and_a_swarm_to_all() {
        let lab = crate::spec::load_builtin("bt-seed").unwrap().unwrap();
        let to: Vec<(String, Option<u8>, bool)> = steps(&lab.probes)
            .iter()
            .map(|s| (s.spec().id.value.clone(), s.instance(), s.reaches_first()))
            .collect();
        for (id, k, first) in &to {
            let swarm = id == "both";
            assert_eq!(*k, if swarm { None } else { Some(1) }, "{id}");
            assert!(*first, "{id}");
        }
        assert!(to.iter().any(|(id, _, _)| id == "both"));
    }

    #[test]
    fn a_stderr_tail_starts_at_a_line() {
        assert_eq!(tail(b"short", 10), b"short");
        assert_eq!(tail(b"aaaa\nbbbb\ncc", 7), b"cc");
        assert_eq!(tail(b"aaaabbbbcc", 4), b"bbcc");
    }

    #[test]
    fn an_end_is_blamed_on_the_request_that_died_first() {
        let lab = load_str("t.yaml", LAB).unwrap();
        let steps = steps(&lab.probes);
        let refused = ExchangeEnd::ConnectFailed("connection refused".into());
        let died = StepOutcome(vec![
            ("during".into(), summary(ExchangeEnd::Closed, 0)),
            ("held".into(), summary(ExchangeEnd::Reset, 0)),
        ]);
        assert_eq!(steps[2].blamed(&died), "during");
        assert!(died.died_silent() && !died.never_reached());
        let answered = StepOutcome(vec![
            ("during".into(), summary(ExchangeEnd::TimedOut, 0)),
            ("held".into(), summary(ExchangeEnd::Complete, 40)),
        ]);
        assert_eq!(steps[2].blamed(&answered), "held");
        assert!(!answered.died_silent());
        let gone = StepOutcome(vec![("b".into(), summary(refused, 0))]);
        assert!(gone.never_reached());
        // A clean close without a byte: the request reached the server's code.
        let closed = StepOutcome(vec![("b".into(), summary(ExchangeEnd::Closed, 0))]);
        assert!(closed.died_silent() && !closed.never_reached());
    }

    #[test]
    fn instances_are_merged_into_one_account() {
        let f = |exit: ExitKind, ms: u64, err: &[u8]| sandbox::Finished {
            exit,
            duration: Duration::from_millis(ms),
            stdout: b"Ready\n".to_vec(),
            stderr: err.to_vec(),
            cut: [false; 2],
            cpu_limited: false,
            leftovers: 1,
            limit: None,
            enforcement: None,
        };
        let merged = merge(
            vec![f(ExitKind::Exited { code: 1 }, 100, b"Traceback\n")],
            Some(f(ExitKind::Stopped, 200, b"later\n")),
            12,
        );
        assert_eq!(merged.exit, ExitKind::Stopped);
        assert_eq!(merged.duration, Duration::from_millis(300));
        assert_eq!(merged.leftovers, 2);
        assert_eq!(merged.stdout, b"Ready\nReady\n");
        // Capped at the output limit, the first instance's traceback first.
        assert_eq!(merged.stderr, b"Traceback\nla");
        assert_eq!(merged.cut, [false, true]);
    }

    /// Runs SERVER in `mode` under the lab in a private namespace; `None`
    /// when namespaces are not allowed here.
    async fn drive(mode: &str) -> Option<(Trace, sandbox::Finished)> {
        let Ok(ns) = NetNs::new() else {
            eprintln!("skipped: no permission to create network namespaces");
            return None;
        };
        let lab = load_str("t.yaml", LAB).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
        let ns = Arc::new(ns);
        let cmd = sandbox::Command {
            argv: vec![
                "python3".into(),
                "-u".into(),
                "server.py".into(),
                mode.into(),
            ],
            cwd: dir.path().to_path_buf(),
            env: vec![],
            stdin: None,
            time_limit: Duration::from_secs(60),
            grace: Duration::from_millis(300),
            output_limit: 64 << 10,
            netns: Some(ns.clone()),
            binds: Vec::new(),
            pid_namespace: true,
            netns_shared: false,
            record_output: true,
            limits: sandbox::Limits::default(),
            user: None,
            view: None,
        };
        let recorder = Recorder::new();
        let (finished, _) =
            drive_server(&lab, &cmd, (Some(6789), &[]), Some(&ns), &recorder, 1).await;
        Some((recorder.snapshot(), finished))
    }

    use crate::trace::Trace;

    /// (probe, bytes received) of the last exchange of each probe, in order.
    fn answers(trace: &Trace) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for e in &trace.events {
            if let EventKind::Exchange {
                probe, received, ..
            } = &e.kind
            {
                out.retain(|(p, _)| p != probe);
                out.push((probe.clone(), received.len()));
            }
        }
        out.sort();
        out
    }

    fn ends(trace: &Trace) -> Vec<(Option<String>, ExitKind, Vec<String>)> {
        trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ServerEnded { probe, exit, since } => Some((
                    probe.clone(),
                    exit.clone(),
                    trace
                        .stderr_between(*since, e.at)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                )),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_crash_is_charged_to_its_request_and_the_server_restarted() {
        let Some((trace, finished)) = drive("crash").await else {
            return;
        };
        let ends = ends(&trace);
        assert_eq!(ends.len(), 1, "{ends:?}");
        let (probe, exit, stderr) = &ends[0];
        assert_eq!(
            (probe.as_deref(), exit),
            (Some("b"), &ExitKind::Exited { code: 1 })
        );
        assert!(
            stderr
                .iter()
                .any(|l| l.contains("RuntimeError: boom on /b")),
            "{stderr:?}"
        );
        let restarts: Vec<_> = trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ServerRestarted { attempt, addr } => Some((*attempt, *addr)),
                _ => None,
            })
            .collect();
        assert_eq!(
            restarts,
            [(1, Some(SocketAddr::from(([127, 0, 0, 1], 6789))))]
        );
        // Everything but /b was answered (`during` late: this server serves one
        // connection at a time); the last instance was stopped.
        let ok = 40;
        assert_eq!(
            answers(&trace),
            [
                ("a".to_string(), ok),
                ("b".to_string(), 0),
                ("c".to_string(), ok),
                ("during".to_string(), 0),
                ("held".to_string(), ok),
            ]
        );
        assert!(trace.events.iter().any(|e| matches!(
            &e.kind,
            EventKind::LateResponse { probe, received, .. } if probe == "during" && received.len() == ok
        )));
        assert_eq!(finished.exit, ExitKind::Stopped);
        assert!(String::from_utf8_lossy(&finished.stderr).contains("boom on /b"));
    }

    #[tokio::test]
    async fn a_server_that_exits_after_each_request_binds_again_at_once() {
        let Some((trace, _)) = drive("once").await else {
            return;
        };
        // No SO_REUSEADDR, yet every restart could bind 6789 again: nothing
        // of the server's was left in TIME_WAIT.
        let restarts = trace
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::ServerRestarted { addr: Some(_), .. }))
            .count();
        assert_eq!(restarts, 3);
        let ends = ends(&trace);
        let blamed: Vec<Option<&str>> = ends.iter().map(|(p, _, _)| p.as_deref()).collect();
        // The last instance may have ended by itself before netgrade stopped it.
        assert!(
            blamed == [Some("a"), Some("b"), Some("held")]
                || blamed == [Some("a"), Some("b"), Some("held"), Some("c")],
            "{blamed:?}"
        );
        assert!(
            ends.iter()
                .all(|(_, exit, _)| *exit == ExitKind::Exited { code: 0 })
        );
        // `held` and `during` need two connections at once: a server that
        // serves one request per run answers only one of them.
        let answered: Vec<(String, usize)> = answers(&trace)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert!(answered.iter().any(|(p, _)| p == "a"));
        assert!(answered.iter().any(|(p, _)| p == "b"));
        assert!(answered.iter().any(|(p, _)| p == "c"));
    }
}
