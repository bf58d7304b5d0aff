//! The runtime the reference servers run on, and how well it keeps time.
//!
//! Servers decide *when* things happen (a ping answered after 112 ms, a
//! greeting after 300 ms), so they get a runtime of their own, whose threads
//! ask the kernel for a higher priority (as root): a batch's other work —
//! creating namespaces, forking programs, evaluating checks — and the
//! students' programs then cannot delay a reply. A ticker on that runtime
//! measures how late its timers fire; a run whose servers ran later than
//! the lab tolerates is regraded rather than graded from that evidence
//! ([`lateness_since`]).

use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often the ticker checks the clock.
const TICK: Duration = Duration::from_millis(10);
/// Lateness below this is timer granularity, not a disturbance.
const NOISE: Duration = Duration::from_millis(3);
/// Samples kept (each a late tick); older ones are forgotten first.
const MAX_SAMPLES: usize = 20_000;
/// Nice value asked for the servers' threads (lower is more urgent).
const NICE: i32 = -10;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("netgrade-servers")
        .on_thread_start(|| {
            // SAFETY: setpriority on the calling thread; failure (not root) is harmless.
            unsafe {
                let tid = libc::gettid() as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
            }
        })
        .enable_all()
        .build()
        .expect("cannot start the servers' runtime");
    rt.spawn(ticker());
    super::udp::keep_timestamps_on();
    rt
});

static LATE: LazyLock<Mutex<VecDeque<(Instant, Duration)>>> =
    LazyLock::new(|| Mutex::new(VecDeque::new()));

/// The servers' runtime.
pub fn handle() -> tokio::runtime::Handle {
    RUNTIME.handle().clone()
}

async fn ticker() {
    let mut due = Instant::now() + TICK;
    loop {
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        let late = now.saturating_duration_since(due);
        if late > NOISE {
            record(now, late);
        }
        due = now + TICK;
    }
}

fn record(at: Instant, late: Duration) {
    let mut samples = LATE.lock().unwrap_or_else(|p| p.into_inner());
    if samples.len() >= MAX_SAMPLES {
        samples.pop_front();
    }
    samples.push_back((at, late));
}

/// The most the servers' timers ran late since `since` (zero when they kept
/// time). Starts the servers' runtime if it is not running yet.
pub fn lateness_since(since: Instant) -> Duration {
    LazyLock::force(&RUNTIME);
    LATE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .rev()
        .take_while(|(at, _)| *at >= since)
        .map(|(_, late)| *late)
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_ticks_are_found_in_their_window_only() {
        let before = Instant::now();
        let at = Instant::now();
        record(at, Duration::from_millis(400));
        assert!(lateness_since(before) >= Duration::from_millis(400));
        let after = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        assert!(lateness_since(after) < Duration::from_millis(400));
    }

    #[test]
    fn the_runtime_runs_tasks() {
        let (tx, rx) = std::sync::mpsc::channel();
        handle().spawn(async move {
            let _ = tx.send(7);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(7));
    }
}
