//! The lossy UDP pinger: the handout's server, made deterministic.
//!
//! Like the handout's `UDPPingerServer.py` it upper-cases each datagram and
//! sends it back, and it loses some. Unlike it, which datagrams are lost comes
//! from an explicit schedule or a seeded rate, and every reply waits a seeded
//! delay, so the grader knows the true round-trip time of every ping. Every
//! datagram and decision goes into the run's [`Recorder`].

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tokio::net::UdpSocket;

use crate::trace::{Dir, EventKind, Recorder};

/// Largest datagram kept in the trace; longer payloads are cut.
const MAX_RECORDED_PAYLOAD: usize = 2048;
/// Datagrams recorded before the server stops recording (a flooding client).
pub const MAX_RECORDED_DATAGRAMS: u32 = 1000;

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
    socket: UdpSocket,
    config: PingerConfig,
    recorder: Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let socket = std::sync::Arc::new(socket);
    let mut buf = vec![0u8; 65536];
    let mut index: u32 = 0;
    let mut replies = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                // ICMP errors (e.g. port unreachable after the client left)
                // surface here on Linux; they say nothing about the next datagram.
                let Ok((n, peer)) = received else { continue };
                index = index.saturating_add(1);
                if let Some((delay, reply)) = handle(&config, &recorder, index, &buf[..n], peer) {
                    let (socket, recorder, name) = (socket.clone(), recorder.clone(), config.name.clone());
                    replies.spawn(async move {
                        tokio::time::sleep(delay).await;
                        // Stamped before sending: the recorded hold time is then a
                        // lower bound of the true RTT, whatever the scheduler does.
                        let at = recorder.now();
                        if socket.send_to(&reply, peer).await.is_ok() && index <= MAX_RECORDED_DATAGRAMS {
                            recorder.record_at(at, EventKind::Datagram {
                                server: name,
                                dir: Dir::Out,
                                peer,
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
    replies.abort_all();
    // The same socket, read without waiting: tokio's cached readiness could
    // hide datagrams the kernel already holds.
    let Ok(std_socket) = socket
        .as_fd()
        .try_clone_to_owned()
        .map(std::net::UdpSocket::from)
    else {
        return;
    };
    while let Ok((n, peer)) = std_socket.recv_from(&mut buf) {
        index = index.saturating_add(1);
        handle(&config, &recorder, index, &buf[..n], peer);
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
) -> Option<(Duration, Vec<u8>)> {
    let record = index <= MAX_RECORDED_DATAGRAMS;
    if record {
        recorder.record(EventKind::Datagram {
            server: config.name.clone(),
            dir: Dir::In,
            peer,
            index,
            data: data[..data.len().min(MAX_RECORDED_PAYLOAD)].to_vec(),
        });
    } else if index == MAX_RECORDED_DATAGRAMS + 1 {
        recorder.record(EventKind::RecordingCapped {
            server: config.name.clone(),
            limit: MAX_RECORDED_DATAGRAMS,
        });
    }
    let decision = decide(config, index);
    if record {
        let server = config.name.clone();
        recorder.record(match decision {
            None => EventKind::Dropped { server, index },
            Some(delay) => EventKind::Delayed {
                server,
                index,
                delay,
            },
        });
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

    #[tokio::test]
    async fn datagrams_queued_before_the_stop_are_still_recorded() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
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
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let rec = Recorder::new();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(server, config(&[2], 0.0, 1), rec.clone(), stopped));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
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
}
