//! The lossy UDP pinger: the handout's server, made deterministic.
//!
//! Like the handout's `UDPPingerServer.py` it upper-cases each datagram and
//! sends it back, and it loses some. Unlike it, which datagrams are lost comes
//! from an explicit schedule or a seeded rate, and every reply waits a seeded
//! delay, so the grader knows the true round-trip time of every ping. Every
//! datagram and decision goes into the run's [`Recorder`].

use std::collections::BTreeSet;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::udp::UdpServerSocket;
use crate::trace::{Dir, EventKind, Recorder};

/// Largest datagram kept in the trace; longer payloads are cut.
const MAX_RECORDED_PAYLOAD: usize = 2048;
/// A reply sent later than this after it was due is recorded as late.
const LATE_NOTICE: Duration = Duration::from_millis(5);
/// Datagrams recorded before the server stops recording (a flooding client).
pub const MAX_RECORDED_DATAGRAMS: u32 = 1000;
/// Replies waiting for their delay at once; a datagram that arrives while
/// this many wait gets no reply. More than [`MAX_RECORDED_DATAGRAMS`], so
/// every recorded decision is carried out.
pub const MAX_PENDING_REPLIES: usize = 1024;
/// Bytes of replies waiting for their delay at once; a datagram whose reply
/// would pass this gets none. Only a client sending a thousand datagrams of
/// several kilobytes within one delay reaches it.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// Settings of one pinger.
#[derive(Clone, Debug, PartialEq)]
pub struct PingerConfig {
    /// Name in the trace.
    pub name: String,
    /// Drop exactly these datagrams (1-based arrival order).
    pub drop: BTreeSet<u32>,
    /// Otherwise drop each with this probability.
    pub loss: f64,
    /// Reply delay range.
    pub delay_min: Duration,
    /// Reply delay range.
    pub delay_max: Duration,
    /// Seed for loss and delay draws.
    pub seed: u64,
}

/// What the server does with datagram `index`: `None` drops it, `Some(d)` replies after `d`.
///
/// Draws come from a generator seeded by `seed` and the index alone, so the
/// decision for a datagram never depends on timing or on earlier traffic.
pub fn decide(config: &PingerConfig, index: u32) -> Option<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (u64::from(index) << 32));
    let lost_by_rate = rng.random::<f64>() < config.loss;
    let span = config.delay_max.saturating_sub(config.delay_min);
    let delay = config.delay_min + span.mul_f64(rng.random::<f64>());
    // Whole milliseconds keep transcripts and messages readable.
    let delay = Duration::from_millis(delay.as_millis() as u64);
    if config.drop.contains(&index) || lost_by_rate {
        None
    } else {
        Some(delay)
    }
}

/// Serves on `socket` until `stop` fires. Then it records the datagrams the
/// kernel already queued (sent before the program ended, not yet read) with
/// their decisions, sends no more replies, and returns.
pub async fn run(
    socket: UdpServerSocket,
    config: PingerConfig,
    recorder: Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let socket = std::sync::Arc::new(socket);
    let mut buf = vec![0u8; 65536];
    let mut index: u32 = 0;
    let mut replies = Pending::default();
    loop {
        tokio::select! {
            received = socket.recv_timed(&mut buf) => {
                // ICMP errors (e.g. port unreachable after the client left)
                // surface here on Linux; they say nothing about the next datagram.
                let Ok(got) = received else { continue };
                replies.reap();
                index = index.saturating_add(1);
                // The kernel's arrival time: exact however late this task ran.
                let arrived = got.arrived.map_or_else(|| recorder.now(), |t| recorder.at_wall(t));
                let decided = handle(&config, &recorder, index, &buf[..got.len], got.peer, arrived);
                if let Some((delay, reply)) = decided.filter(|(_, r)| replies.admits(r.len())) {
                    let (socket, recorder, name) = (socket.clone(), recorder.clone(), config.name.clone());
                    let due = arrived + delay;
                    replies.spawn(reply.len(), async move {
                        // Sleep until the reply is due, counted from the arrival.
                        let wait = due.saturating_sub(recorder.now());
                        tokio::time::sleep(wait).await;
                        // Stamped before sending: the recorded hold time is then a
                        // lower bound of the true RTT, whatever the scheduler does.
                        let at = recorder.now();
                        // From the address and port the ping was sent to, so a
                        // client whose socket is connected there accepts it.
                        let sent = socket.send_from(&reply, got.peer, got.local).await;
                        let late = recorder.now().saturating_sub(due);
                        if late > LATE_NOTICE && index <= MAX_RECORDED_DATAGRAMS {
                            recorder.record(EventKind::LateReply { server: name.clone(), index, late });
                        }
                        if sent.is_ok() && index <= MAX_RECORDED_DATAGRAMS {
                            recorder.record_at(at, EventKind::Datagram {
                                server: name,
                                dir: Dir::Out,
                                peer: got.peer,
                                index,
                                data: reply[..reply.len().min(MAX_RECORDED_PAYLOAD)].to_vec(),
                            });
                        }
                    });
                }
            }
            _ = stop.changed() => break,
        }
    }
    replies.set.abort_all();
    // What the kernel already holds, read without waiting.
    while let Ok(got) = socket.try_recv_timed(&mut buf) {
        index = index.saturating_add(1);
        let arrived = got
            .arrived
            .map_or_else(|| recorder.now(), |t| recorder.at_wall(t));
        handle(
            &config,
            &recorder,
            index,
            &buf[..got.len],
            got.peer,
            arrived,
        );
    }
}

/// Replies waiting for their delay, each a task, and how many bytes they hold.
#[derive(Default)]
struct Pending {
    /// The tasks; each returns the length of its reply.
    set: tokio::task::JoinSet<usize>,
    /// Bytes of replies spawned and not yet reaped.
    bytes: usize,
}

impl Pending {
    /// Reaps the tasks that have finished, without waiting.
    fn reap(&mut self) {
        while let Some(done) = self.set.try_join_next() {
            // A task that panicked or was aborted held at most its reply.
            self.bytes = self.bytes.saturating_sub(done.unwrap_or(0));
        }
        if self.set.is_empty() {
            self.bytes = 0;
        }
    }

    /// Whether a reply of `len` bytes stays within [`MAX_PENDING_REPLIES`]
    /// and [`MAX_PENDING_BYTES`].
    fn admits(&self, len: usize) -> bool {
        self.set.len() < MAX_PENDING_REPLIES && self.bytes + len <= MAX_PENDING_BYTES
    }

    /// Spawns `task`, which holds a reply of `len` bytes.
    fn spawn(&mut self, len: usize, task: impl Future<Output = ()> + Send + 'static) {
        self.bytes += len;
        self.set.spawn(async move {
            task.await;
            len
        });
    }
}

/// Records datagram `index` and the server's decision; returns the reply and
/// its delay when the datagram is answered.
fn handle(
    config: &PingerConfig,
    recorder: &Recorder,
    index: u32,
    data: &[u8],
    peer: std::net::SocketAddr,
    arrived: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let record = index <= MAX_RECORDED_DATAGRAMS;
    if record {
        recorder.record_at(
            arrived,
            EventKind::Datagram {
                server: config.name.clone(),
                dir: Dir::In,
                peer,
                index,
                data: data[..data.len().min(MAX_RECORDED_PAYLOAD)].to_vec(),
            },
        );
    } else if index == MAX_RECORDED_DATAGRAMS + 1 {
        recorder.record(EventKind::RecordingCapped {
            server: config.name.clone(),
            limit: MAX_RECORDED_DATAGRAMS,
        });
    }
    let decision = decide(config, index);
    if record {
        let server = config.name.clone();
        recorder.record_at(
            arrived,
            match decision {
                None => EventKind::Dropped { server, index },
                Some(delay) => EventKind::Delayed {
                    server,
                    index,
                    delay,
                },
            },
        );
    }
    decision.map(|delay| (delay, data.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(drop: &[u32], loss: f64, seed: u64) -> PingerConfig {
        PingerConfig {
            name: "pinger".into(),
            drop: drop.iter().copied().collect(),
            loss,
            delay_min: Duration::from_millis(40),
            delay_max: Duration::from_millis(200),
            seed,
        }
    }

    #[test]
    fn schedule_decides_exactly_which_are_lost() {
        let c = config(&[3, 6, 7], 0.0, 1);
        let lost: Vec<u32> = (1..=10).filter(|i| decide(&c, *i).is_none()).collect();
        assert_eq!(lost, vec![3, 6, 7]);
    }

    #[test]
    fn same_seed_same_decisions_other_seed_other_delays() {
        let a = config(&[], 0.3, 7);
        let b = config(&[], 0.3, 7);
        let c = config(&[], 0.3, 8);
        let da: Vec<_> = (1..=50).map(|i| decide(&a, i)).collect();
        let db: Vec<_> = (1..=50).map(|i| decide(&b, i)).collect();
        let dc: Vec<_> = (1..=50).map(|i| decide(&c, i)).collect();
        assert_eq!(da, db);
        assert_ne!(da, dc);
        let lost = da.iter().filter(|d| d.is_none()).count();
        assert!(
            (5..=25).contains(&lost),
            "30 % of 50 should be near 15, got {lost}"
        );
        for d in da.into_iter().flatten() {
            assert!((40..=200).contains(&d.as_millis()), "{d:?}");
        }
    }

    fn bind() -> UdpServerSocket {
        UdpServerSocket::bind("127.0.0.1:0".parse().unwrap(), None).unwrap()
    }

    /// Waits until the kernel stamps arrivals (it turns stamping on a moment
    /// after the first socket asks).
    fn wait_for_timestamps() {
        super::super::udp::keep_timestamps_on();
        let probe = bind();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..200 {
            sender.send_to(b"t", probe.local_addr()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let got = probe.try_recv_timed(&mut buf).unwrap();
            let stamped = got.arrived.and_then(|t| t.elapsed().ok());
            if stamped.is_some_and(|age| age >= Duration::from_millis(15)) {
                return;
            }
        }
        panic!("the kernel never stamped a datagram's arrival");
    }

    #[tokio::test]
    async fn arrivals_are_the_kernels_however_late_the_server_reads() {
        wait_for_timestamps();
        let server = bind();
        let addr = server.local_addr();
        let rec = Recorder::new();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"Ping 1 x", addr).unwrap();
        let sent = rec.now();
        // The server reads it only now, well after it arrived.
        std::thread::sleep(Duration::from_millis(300));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(server, config(&[], 0.0, 1), rec.clone(), stopped));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        let pings = rec.snapshot().pings("pinger");
        let arrived = pings[0].at;
        // Wall and monotonic clocks may differ by a hair.
        assert!(
            arrived <= sent + Duration::from_millis(5),
            "{arrived:?} > {sent:?}"
        );
    }

    #[tokio::test]
    async fn datagrams_queued_before_the_stop_are_still_recorded() {
        let server = bind();
        let addr = server.local_addr();
        let rec = Recorder::new();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // The server task has not run yet: everything below waits in the kernel.
        let task = tokio::spawn(run(server, config(&[], 0.0, 1), rec.clone(), stopped));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 1..=5 {
            client
                .send_to(format!("Ping {i} x").as_bytes(), addr)
                .unwrap();
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        let pings = rec.snapshot().pings("pinger");
        assert_eq!(pings.len(), 5, "{pings:?}");
        assert!(
            pings.iter().all(|p| p.reply.is_none()),
            "no replies after the stop"
        );
    }

    #[tokio::test]
    async fn echoes_upper_case_after_the_delay_and_records_everything() {
        let server = bind();
        let addr = server.local_addr();
        let rec = Recorder::new();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(server, config(&[2], 0.0, 1), rec.clone(), stopped));
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"Ping 1 abc", addr).await.unwrap();
        let mut buf = [0u8; 100];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("reply within 5 s")
            .unwrap();
        assert_eq!(&buf[..n], b"PING 1 ABC");
        client.send_to(b"Ping 2 abc", addr).await.unwrap();
        let lost =
            tokio::time::timeout(Duration::from_millis(400), client.recv_from(&mut buf)).await;
        assert!(lost.is_err(), "datagram 2 is on the drop schedule");
        task.abort();
        let pings = rec.snapshot().pings("pinger");
        assert_eq!(pings.len(), 2);
        let expected = decide(&config(&[2], 0.0, 1), 1).unwrap();
        assert!(pings[0].hold().unwrap() >= expected, "{:?}", pings[0]);
        assert!(pings[1].dropped);
    }

    #[tokio::test]
    async fn pending_replies_are_reaped_and_bounded() {
        let mut pending = Pending::default();
        let (release, wait) = tokio::sync::watch::channel(false);
        for _ in 0..MAX_PENDING_REPLIES {
            assert!(pending.admits(100));
            let mut wait = wait.clone();
            pending.spawn(100, async move {
                let _ = wait.wait_for(|go| *go).await;
            });
        }
        assert!(
            !pending.admits(1),
            "no more than {MAX_PENDING_REPLIES} at once"
        );
        assert_eq!(pending.bytes, 100 * MAX_PENDING_REPLIES);
        release.send(true).unwrap();
        while !pending.set.is_empty() {
            tokio::task::yield_now().await;
            pending.reap();
        }
        assert_eq!(pending.bytes, 0, "reaped tasks give their bytes back");
        assert!(pending.admits(MAX_PENDING_BYTES));
        assert!(!pending.admits(MAX_PENDING_BYTES + 1));
        pending.spawn(MAX_PENDING_BYTES - 10, std::future::pending());
        assert!(pending.admits(10) && !pending.admits(11));
    }

    /// The files whose panics a fuzz test counts.
    const PANIC_FILES: &[&str] = &["servers/pinger.rs", "servers/udp.rs"];

    /// The datagrams the pinger fuzz tests damage.
    const FUZZ_SEEDS: &[&[u8]] = &[
        b"Ping 1 1700000000.123456",
        b"ping 10 Mon Dec  2 07:16:03 2026",
        b"",
        b"\xff\xfe\x00\x01",
        b"Ping 3 \xc3\xa9t\xc3\xa9 \xe2\x82\xac",
    ];

    /// Whether a correct client gets its ping back upper-cased (three tries:
    /// a datagram may be lost in a flood even on loopback).
    async fn correct_client_served(addr: std::net::SocketAddr, n: u64) -> bool {
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ping = format!("Ping {n} correct client");
        let mut buf = [0u8; 128];
        for _ in 0..3 {
            client.send_to(ping.as_bytes(), addr).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(3), client.recv(&mut buf)).await;
            if let Ok(Ok(len)) = reply {
                return buf[..len] == *ping.to_ascii_uppercase().as_bytes();
            }
        }
        false
    }

    /// Sends `inputs` damaged datagrams from `seed` in bursts of 512, then
    /// checks a correct client; the panics and failed checks seen, and the
    /// replies still pending at the end.
    async fn fuzz_pinger(seed: u64, inputs: u64) -> (u64, u64) {
        let panics = super::super::fuzz::bytes::server_panics(PANIC_FILES);
        let server = bind();
        let addr = server.local_addr();
        let rec = Recorder::new();
        let mut config = config(&[], 0.0, seed);
        config.delay_min = Duration::ZERO;
        config.delay_max = Duration::from_millis(2);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(server, config, rec.clone(), stopped));
        let fuzzer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut m = super::super::fuzz::bytes::Mutator::new(seed);
        let (mut failed, mut done, mut sink) = (0, 0, vec![0u8; 65536]);
        while done < inputs {
            let n = 512.min(inputs - done);
            for _ in 0..n {
                let mut input = m.input(FUZZ_SEEDS);
                input.truncate(65_507);
                // A full queue or an ICMP error is the fuzzer's own business.
                let _ = fuzzer.send_to(&input, addr).await;
                while fuzzer.try_recv(&mut sink).is_ok() {}
            }
            failed += u64::from(!correct_client_served(addr, done).await);
            done += n;
        }
        assert!(!task.is_finished(), "the server ended");
        let trace = rec.snapshot();
        let recorded = trace.pings("pinger").len();
        assert!(recorded <= MAX_RECORDED_DATAGRAMS as usize, "{recorded}");
        (
            super::super::fuzz::bytes::server_panics(PANIC_FILES) - panics,
            failed,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fuzzed_datagrams_leave_the_pinger_answering_correctly() {
        assert_eq!(fuzz_pinger(0x7069_6e67, 3000).await, (0, 0));
    }

    /// A long campaign: `NETGRADE_FUZZ_INPUTS` datagrams (a million by default).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a long fuzz campaign; bench/fuzz.sh runs it"]
    async fn fuzz_campaign_pinger() {
        let inputs = super::super::fuzz::campaign_inputs();
        let before = super::super::fuzz::rss_kib().0;
        let (panics, failed) = fuzz_pinger(0x5544_5000, inputs).await;
        let after = super::super::fuzz::rss_kib().0;
        println!(
            "fuzz_campaign_pinger: {inputs} inputs, {} crashes ({panics} panics, {failed} failed \
             correct-client checks), RSS {} MiB before, {} MiB after",
            panics + failed,
            before / 1024,
            after / 1024
        );
        assert_eq!((panics, failed), (0, 0));
    }
}
