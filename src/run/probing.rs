//! The program phase of a server lab: start the student's server, find the
//! port it listens on, send the lab's probes, stop it.

use std::time::{Duration, Instant};

use crate::probes;
use crate::sandbox::{self, NetNs, ports};
use crate::spec::Lab;
use crate::trace::{EventKind, Recorder};

/// How often netgrade looks for the student's listening socket.
const LISTEN_POLL: Duration = Duration::from_millis(20);

/// Starts a student's server, waits until it listens, runs the lab's probes
/// against it, and stops it. Every step has a deadline.
pub async fn drive_server(
    lab: &Lab,
    cmd: &sandbox::Command,
    fallback: Option<u16>,
    netns: Option<&NetNs>,
    recorder: &Recorder,
) -> sandbox::Finished {
    let running = match sandbox::spawn(cmd, recorder) {
        Ok(r) => r,
        Err(finished) => return finished,
    };
    let started = Instant::now();
    let deadline = started + lab.program.ready_timeout.get();
    let target = loop {
        let all = crate::rt::blocking(|| ports::listening(&running.processes()));
        // Prefer the handout's port when the program listens on several.
        let chosen = all
            .iter()
            .find(|a| Some(a.port()) == fallback)
            .or(all.first())
            .copied();
        if let Some(addr) = chosen {
            let target = ports::connect_addr(addr);
            recorder.record(EventKind::Listening { addr: target, all });
            break Some(target);
        }
        if running.has_exited() || Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(LISTEN_POLL).await;
    };
    // Unseen, but maybe listening where the lab says (another user's process, an odd stack).
    let target = match (target, fallback) {
        (None, Some(port)) if !running.has_exited() => {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            probes::connect(addr, netns, Duration::from_secs(1))
                .await
                .ok()
                .map(|_| {
                    recorder.record(EventKind::Listening { addr, all: vec![] });
                    addr
                })
        }
        (t, _) => t,
    };
    let Some(target) = target else {
        recorder.record(EventKind::NotListening {
            waited: started.elapsed(),
            exited: running.has_exited(),
        });
        return running.stop().await;
    };
    let mut held = Vec::new();
    // The program's time limit bounds the probing too (each probe has its own deadline).
    let stop_at = started + cmd.time_limit;
    for spec in &lab.probes {
        if Instant::now() >= stop_at {
            break;
        }
        let probe = probes::http::Probe {
            name: spec.id.value.clone(),
            bytes: spec.bytes(&target.ip().to_string(), target.port()),
            hold: spec.hold,
            head: spec.is_head(),
            timeout: spec.timeout.get(),
            idle: spec.idle.get(),
            max_bytes: PROBE_RESPONSE_LIMIT,
        };
        if let Some(stream) = probes::http::exchange(target, netns, &probe, recorder).await {
            held.push(stream);
        }
    }
    drop(held);
    // Let the server finish what it prints after the last request ("Ready to
    // serve..." before accept()), so transcripts do not depend on scheduling.
    let settle_until = Instant::now() + OUTPUT_SETTLE_MAX;
    while Instant::now() < settle_until {
        let last = recorder.last_output().unwrap_or_default();
        if recorder.now().saturating_sub(last) >= OUTPUT_QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    running.stop().await
}

/// A server counts as done printing after this long without output …
const OUTPUT_QUIET: Duration = Duration::from_millis(150);
/// … or after this long, whichever comes first.
const OUTPUT_SETTLE_MAX: Duration = Duration::from_secs(1);

/// Most response bytes a probe keeps.
const PROBE_RESPONSE_LIMIT: usize = 4 << 20;
