//! Seeded fuzzing of the line-based servers (SMTP, POP3) on loopback: a
//! small mutator of whole sessions (bit flips, truncation, huge lines,
//! garbage, pipelined bursts, lines of other sessions), sent after the
//! greeting (a few before it), whole or in split writes, and a campaign
//! that checks now and then, while inputs are being served, that the
//! server still answers a correct session. Everything follows from the
//! seed.

pub mod bytes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::timeout;

/// Largest mutated input, in bytes.
const MAX_INPUT: usize = 1 << 20;
/// How long one input may take, from connecting to the server's close.
const INPUT_DEADLINE: Duration = Duration::from_secs(4);

/// SplitMix64: a tiny deterministic generator.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The line of `bytes` (LF included) around a random position, if any.
fn some_line<'a>(rng: &mut Rng, bytes: &'a [u8]) -> &'a [u8] {
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    lines
        .get(rng.below(lines.len()))
        .copied()
        .unwrap_or(b"\r\n")
}

/// Inserts `bytes` into `out` at `at` (as `splice` would, by whole copies).
fn insert(out: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let tail = out.split_off(at);
    out.reserve(bytes.len() + tail.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(&tail);
}

/// A mutation of `base`, one of the sessions of `corpus`.
pub fn mutate(rng: &mut Rng, base: &[u8], corpus: &[&[u8]]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(at),
            2 => {
                let mut huge = vec![b'A' + rng.below(26) as u8; 1000 + rng.below(300_000)];
                if rng.chance(50) {
                    huge.extend_from_slice(b"\r\n");
                }
                insert(&mut out, at, &huge);
            }
            3 => {
                let garbage: Vec<u8> = (0..1 + rng.below(512)).map(|_| rng.next() as u8).collect();
                insert(&mut out, at, &garbage);
            }
            4 => {
                let line = some_line(rng, base);
                let burst = line.repeat(10 + rng.below(500));
                insert(&mut out, at, &burst);
            }
            5 => {
                let other = corpus[rng.below(corpus.len())];
                let line = some_line(rng, other);
                insert(&mut out, at, line);
            }
            6 => {
                let end = (at + rng.below(64)).min(out.len());
                out.drain(at..end);
            }
            7 => out.retain(|&b| b != b'\r'),
            _ => {
                let line = some_line(rng, base);
                insert(&mut out, at, &line[..rng.below(line.len() + 1)]);
            }
        }
    }
    out.truncate(MAX_INPUT);
    out
}

/// Reads from `read` up to the end of the server's first line (and what
/// came with it); `false` if the connection ended first.
async fn greeted(read: &mut OwnedReadHalf) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(n @ 1..) if buf[..n].contains(&b'\n') => return true,
            Ok(1..) => {}
            _ => return false,
        }
    }
}

/// Sends `input` to `addr` as a client would: once the server's greeting
/// (its first line) has arrived or, `early` times in 100, at once, before
/// it; whole, or in up to 64 small writes with pauses between, then the
/// rest at once. Reads whatever the server answers, then either closes its
/// side and waits for the server to close (within [`INPUT_DEADLINE`]) or
/// drops the connection at once.
pub async fn deliver(addr: SocketAddr, input: &[u8], early: usize, rng: &mut Rng) {
    let early = rng.chance(early);
    let split = rng.chance(30);
    let half_close = rng.chance(80);
    let chunks: Vec<usize> = (0..64).map(|_| 1 + rng.below(700)).collect();
    let run = async {
        let Ok(stream) = TcpStream::connect(addr).await else {
            return;
        };
        let (mut read, mut write) = stream.into_split();
        if !early && !greeted(&mut read).await {
            return;
        }
        let reader = async {
            let mut sink = [0u8; 8192];
            while matches!(read.read(&mut sink).await, Ok(1..)) {}
        };
        let writer = async {
            let mut rest = input;
            if split {
                for size in &chunks {
                    if rest.is_empty() {
                        break;
                    }
                    let (now, later) = rest.split_at((*size).min(rest.len()));
                    if write.write_all(now).await.is_err() {
                        return;
                    }
                    rest = later;
                    tokio::task::yield_now().await;
                }
            }
            if write.write_all(rest).await.is_err() {
                return;
            }
            if half_close {
                let _ = write.shutdown().await;
            }
        };
        if half_close {
            tokio::join!(reader, writer);
        } else {
            // Reads while it writes, then leaves without waiting.
            tokio::select! {
                () = reader => {}
                () = writer => {}
            }
        }
    };
    let _ = timeout(INPUT_DEADLINE, run).await;
}

/// Panics on threads whose name holds `fuzz` (a fuzz test's own thread, where
/// its current-thread runtime runs the server's tasks), counted.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Starts counting panics in [`PANICS`], once per process.
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or_default().to_owned();
            if name.contains("fuzz") {
                PANICS.fetch_add(1, Ordering::Relaxed);
            }
            previous(info);
        }));
    });
}

/// The process's resident set (VmRSS) and its peak (VmHWM), in KiB.
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What a campaign found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Inputs sent.
    pub inputs: u64,
    /// Panics seen while it ran.
    pub panics: u64,
    /// Correct sessions that failed, with why.
    pub failures: Vec<String>,
}

impl Findings {
    /// Panics and failed correct sessions.
    pub fn crashes(&self) -> u64 {
        self.panics + self.failures.len() as u64
    }
}

/// How many inputs a campaign sends, and how.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Where the randomness starts.
    pub seed: u64,
    /// How many inputs.
    pub inputs: u64,
    /// How many at a time.
    pub parallel: usize,
    /// How many between two correct sessions.
    pub every: u64,
    /// How many in 100 are sent before the greeting (the others wait for
    /// it). A server may slow down a client that talks first (the SMTP
    /// server paces its replies to one), so each such input costs as much
    /// as many others.
    pub early: usize,
}

/// Sends mutations of `corpus` to the server at `addr` as `plan` says, and
/// every `plan.every` inputs runs `correct`, a correct client session,
/// which must succeed: while the inputs before it are still being served
/// (the campaign never waits for the slowest of a batch), and once more at
/// the end, when all are done. `alive` says whether the server is still
/// running.
pub async fn campaign<C, F>(
    addr: SocketAddr,
    corpus: &[&[u8]],
    plan: Plan,
    correct: C,
    alive: impl Fn() -> bool,
) -> Findings
where
    C: Fn() -> F,
    F: Future<Output = Result<(), String>>,
{
    count_panics();
    let panics_before = PANICS.load(Ordering::Relaxed);
    let Plan {
        seed,
        inputs,
        parallel,
        every,
        early,
    } = plan;
    let mut rng = Rng::new(seed);
    let mut findings = Findings::default();
    let mut running = tokio::task::JoinSet::new();
    let mut sent = 0;
    let mut stopped = false;
    let check = async |sent: u64, findings: &mut Findings| {
        if !alive() {
            findings
                .failures
                .push(format!("the server stopped after {sent} inputs"));
            return false;
        }
        if let Err(why) = correct().await {
            findings
                .failures
                .push(format!("after {sent} inputs: {why}"));
        }
        true
    };
    while sent < inputs && !stopped {
        let base = corpus[rng.below(corpus.len())];
        let input = if rng.chance(90) {
            mutate(&mut rng, base, corpus)
        } else {
            base.to_vec()
        };
        let mut own = Rng::new(rng.next());
        while running.len() >= parallel.max(1) {
            running.join_next().await;
        }
        running.spawn(async move { deliver(addr, &input, early, &mut own).await });
        sent += 1;
        if sent % every.max(1) == 0 && sent < inputs {
            stopped = !check(sent, &mut findings).await;
        }
    }
    running.join_all().await;
    if !stopped {
        check(sent, &mut findings).await;
    }
    findings.inputs = sent;
    findings.panics = PANICS.load(Ordering::Relaxed) - panics_before;
    findings
}

/// A recorder as `netgrade serve` keeps one (a tap whose events are read
/// and dropped), and the task that drains it (abort it at the end).
pub fn serve_recorder() -> (crate::trace::Recorder, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (crate::trace::Recorder::with_tap(tx), drain)
}

/// The plan of a long campaign: [`campaign_inputs`] inputs from `seed`,
/// 24 at a time, a correct session every 1000, `early` in 100 before the
/// greeting.
pub fn long_plan(seed: u64, early: usize) -> Plan {
    Plan {
        seed,
        inputs: campaign_inputs(),
        parallel: 24,
        every: 1000,
        early,
    }
}

/// The number of inputs of a long campaign: `NETGRADE_FUZZ_INPUTS`, else 1 000 000.
pub fn campaign_inputs() -> u64 {
    std::env::var("NETGRADE_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// Prints what a campaign of server `name` found, with the memory before and after.
pub fn print(name: &str, findings: &Findings, before: (u64, u64), after: (u64, u64)) {
    println!(
        "fuzz {name}: {} inputs, {} crashes ({} panics, {} failed correct sessions); RSS {} KiB before, {} KiB after (peak {} KiB)",
        findings.inputs,
        findings.crashes(),
        findings.panics,
        findings.failures.len(),
        before.0,
        after.0,
        after.1
    );
    for failure in findings.failures.iter().take(20) {
        println!("  {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mutator_is_deterministic_and_bounded() {
        let corpus: &[&[u8]] = &[b"HELO a\r\nQUIT\r\n", b"USER x\r\nPASS y\r\n"];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|i| mutate(&mut rng, corpus[i % 2], corpus))
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(7), run(7));
        assert_eq!(a, b);
        assert_ne!(a, run(8));
        assert!(a.iter().all(|m| m.len() <= MAX_INPUT));
        assert!(a.iter().any(|m| m.len() > 1000), "some huge lines");
        assert!(
            a.iter().any(|m| m.len() < corpus[0].len()),
            "some cut short"
        );
    }
}
