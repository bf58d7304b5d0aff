//! netgrade as a UDP heartbeat client (the UDP Pinger lab's optional
//! exercise 2, server side): heartbeats `<seq> <timestamp>` to a student's
//! heartbeat server, one every interval, some lost, each with a seeded
//! one-way delay; then silence; then a second client.
//!
//! A heartbeat's one-way delay is made, not waited for: its timestamp is the
//! wall clock when it leaves, less the delay drawn for it, so a server that
//! subtracts the timestamp from its own clock on arrival reads that delay
//! (plus the microseconds loopback takes). Every heartbeat, the lost ones
//! too, is one [`EventKind::Heartbeat`], stamped just before it left;
//! a heartbeat sent later than its schedule by more than a few milliseconds
//! is also an [`EventKind::LateReply`], so a run whose client fell behind is
//! graded again rather than judged on gaps netgrade made.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::http::Summary;
use crate::sandbox::NetNs;
use crate::spec::HeartbeatProbeSpec;
use crate::trace::{EventKind, ExchangeEnd, Recorder};

/// Lateness of a send past which it is recorded as netgrade's slip.
const LATE: Duration = Duration::from_millis(5);

/// Everything one heartbeat probe sends, decided before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The probe's id.
    pub name: String,
    /// Heartbeats of the first client.
    pub count: u32,
    /// Between heartbeats.
    pub interval: Duration,
    /// Sequence numbers never sent.
    pub lost: BTreeSet<u32>,
    /// The one-way delay of heartbeat `seq` of the first client is
    /// `delays[seq - 1]`; of the second client's, `delays[count + seq - 1]`.
    pub delays: Vec<Duration>,
    /// Quiet after the first client's last heartbeat.
    pub silence: Duration,
    /// Heartbeats of the second client.
    pub then: u32,
}

impl Plan {
    /// The plan of `spec`, its delays drawn from the run's seed and the
    /// probe's name.
    pub fn new(name: &str, spec: &HeartbeatProbeSpec, seed: u64) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ super::dns::default_id(seed, name) as u64);
        let (min, max) = (
            spec.delay.min.get(),
            spec.delay.max.get().max(spec.delay.min.get()),
        );
        let delays = (0..spec.count + spec.then)
            .map(|_| {
                let ms = rng.random_range(min.as_millis()..=max.as_millis());
                Duration::from_millis(ms as u64)
            })
            .collect();
        Plan {
            name: name.to_string(),
            count: spec.count,
            interval: spec.interval.get(),
            lost: spec.lost.iter().copied().collect(),
            delays,
            silence: spec.silence.get(),
            then: spec.then,
        }
    }

    /// When the probe ends, from its start.
    pub fn length(&self) -> Duration {
        self.interval * self.count.saturating_sub(1) + self.silence + self.interval * self.then
    }

    /// Every heartbeat in order: client, sequence number, when it is due
    /// from the start, its delay, whether it is lost.
    fn schedule(&self) -> Vec<(u8, u32, Duration, Duration, bool)> {
        let first = (1..=self.count).map(|seq| {
            let due = self.interval * (seq - 1);
            let lost = self.lost.contains(&seq);
            (1, seq, due, self.delays[(seq - 1) as usize], lost)
        });
        let resume = self.interval * self.count.saturating_sub(1) + self.silence;
        let second = (1..=self.then).map(move |seq| {
            let due = resume + self.interval * (seq - 1);
            (
                2,
                seq,
                due,
                self.delays[(self.count + seq - 1) as usize],
                false,
            )
        });
        first.chain(second).collect()
    }
}

/// The text of a heartbeat: `<seq> <seconds since 1970, 6 decimals>`.
pub fn payload(seq: u32, timestamp: SystemTime) -> Vec<u8> {
    let t = timestamp
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    format!("{seq} {t:.6}").into_bytes()
}

/// Sends the plan's heartbeats to `addr` (from inside `netns` when given),
/// each client from a socket of its own, and records each. Stops early
/// when `gone` completes (the server ended). Replies, if the server sends
/// any, are read and let go.
pub async fn run(
    plan: &Plan,
    addr: SocketAddr,
    netns: Option<&NetNs>,
    recorder: &Recorder,
    gone: impl std::future::Future<Output = ()>,
) -> Summary {
    let beats = send_all(plan, addr, netns, recorder);
    tokio::select! {
        end = beats => Summary { end, received: 0 },
        () = gone => Summary { end: ExchangeEnd::Closed, received: 0 },
    }
}

async fn send_all(
    plan: &Plan,
    addr: SocketAddr,
    netns: Option<&NetNs>,
    recorder: &Recorder,
) -> ExchangeEnd {
    let start = Instant::now();
    let mut socket: Option<(u8, tokio::net::UdpSocket)> = None;
    for (client, seq, due, delay, lost) in plan.schedule() {
        tokio::time::sleep_until(start + due).await;
        if socket.as_ref().is_none_or(|(c, _)| *c != client) {
            socket = match super::dns::udp_socket(addr, netns).await {
                Ok(s) => Some((client, s)),
                Err(e) => return ExchangeEnd::ConnectFailed(e.to_string()),
            };
        }
        let Some((_, s)) = &socket else { continue };
        drain(s);
        let late = start.elapsed().saturating_sub(due);
        // Stamped before it leaves: whatever the server prints because of
        // it is recorded later, however late this task runs on a busy machine.
        let at = recorder.now();
        let data = if lost {
            Vec::new()
        } else {
            let data = payload(seq, SystemTime::now() - delay);
            // A failed send (ICMP port unreachable: the server is gone) is
            // no verdict of its own: the probing layer sees the server end.
            let _ = s.send(&data).await;
            data
        };
        recorder.record_at(
            at,
            EventKind::Heartbeat {
                probe: plan.name.clone(),
                client,
                seq,
                data,
                delay,
                lost,
            },
        );
        if late > LATE {
            recorder.record(EventKind::LateReply {
                server: plan.name.clone(),
                index: seq,
                late,
            });
        }
    }
    // The end of the second client's last interval.
    tokio::time::sleep_until(start + plan.length()).await;
    ExchangeEnd::Complete
}

/// Reads and lets go whatever the server sent back.
fn drain(socket: &tokio::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    while socket.try_recv(&mut buf).is_ok() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> HeartbeatProbeSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn same_seed_same_delays_other_seed_other_delays() {
        let s = spec("{ count: 6, lost: [3], then: 2 }");
        let a = Plan::new("beats", &s, 7);
        assert_eq!(a, Plan::new("beats", &s, 7));
        assert_ne!(a.delays, Plan::new("beats", &s, 8).delays);
        assert_eq!(a.delays.len(), 8);
        assert!(a.delays.iter().all(|d| (40..=400).contains(&d.as_millis())));
    }

    #[test]
    fn the_schedule_has_the_silence_between_the_clients() {
        let s = spec("{ count: 3, interval: 1s, lost: [2], silence: 5s, then: 2 }");
        let plan = Plan::new("beats", &s, 1);
        let due: Vec<(u8, u32, u64, bool)> = plan
            .schedule()
            .iter()
            .map(|(c, seq, due, _, lost)| (*c, *seq, due.as_secs(), *lost))
            .collect();
        assert_eq!(
            due,
            [
                (1, 1, 0, false),
                (1, 2, 1, true),
                (1, 3, 2, false),
                (2, 1, 7, false),
                (2, 2, 8, false)
            ]
        );
        assert_eq!(plan.length(), Duration::from_secs(9));
    }

    #[test]
    fn a_payload_is_the_sequence_number_and_epoch_seconds() {
        let t = UNIX_EPOCH + Duration::from_micros(1_764_745_678_123_456);
        assert_eq!(payload(3, t), b"3 1764745678.123456");
    }
}
