//! A small seeded mutator and the measures the servers' fuzz tests share.
//!
//! Each server's tests feed it well-formed inputs; it returns them damaged in
//! the ways a broken or hostile client damages them (flipped bits, cut
//! short, repeated, a huge field, plain garbage) and says where to split
//! them into separate writes. Everything comes from the seed, so a failing
//! input can be replayed.

use std::sync::{Mutex, Once};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Largest input the mutator makes.
pub const MAX_INPUT: usize = 256 * 1024;

/// A seeded source of damaged inputs.
pub struct Mutator {
    rng: ChaCha8Rng,
}

impl Mutator {
    /// A mutator whose every output follows from `seed`.
    pub fn new(seed: u64) -> Self {
        Mutator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// One of `seeds` (not empty), damaged one to four times.
    pub fn input(&mut self, seeds: &[&[u8]]) -> Vec<u8> {
        let mut data = seeds[self.below(seeds.len())].to_vec();
        for _ in 0..=self.below(4) {
            self.mutate(&mut data);
        }
        data.truncate(MAX_INPUT);
        data
    }

    /// Damages `data` once.
    fn mutate(&mut self, data: &mut Vec<u8>) {
        let len = data.len();
        match self.below(8) {
            0 if len > 0 => {
                let at = self.below(len);
                data[at] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let at = self.below(len);
                data[at] = self.rng.random();
            }
            2 => data.truncate(self.below(len + 1)),
            3 if len > 0 => {
                let (from, to) = (self.below(len), self.below(len));
                let (from, to) = (from.min(to), from.max(to) + 1);
                let copy = data[from..to].to_vec();
                let at = self.below(len + 1);
                data.splice(at..at, copy);
            }
            4 => {
                let mut field = b"X-Huge: ".to_vec();
                let size = [100, 8 * 1024, 70 * 1024, 200 * 1024][self.below(4)];
                field.resize(field.len() + size, b'a' + self.below(26) as u8);
                field.extend_from_slice(b"\r\n");
                let at = find(data, b"\r\n").map_or(0, |i| i + 2);
                data.splice(at..at, field);
            }
            5 => {
                let n = [1, 16, 512, 4096, 65_000][self.below(5)];
                let garbage: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                let at = self.below(len + 1);
                data.splice(at..at, garbage);
            }
            6 => {
                let tokens: [&[u8]; 8] = [
                    b"\r\n",
                    b"\n",
                    b"\r",
                    b"\0",
                    b" ",
                    b":",
                    b"Content-Length: 99999999999999999999\r\n",
                    b"Expect: 100-continue\r\n",
                ];
                let token = tokens[self.below(tokens.len())];
                let at = self.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
            _ => {
                let keep = self.below(len + 1);
                data.drain(keep..);
                let again = data.clone();
                data.extend_from_slice(&again);
            }
        }
    }

    /// Where to cut an input of `len` bytes into separate writes (sorted,
    /// inside `1..len`): none most of the time, else up to eight.
    pub fn splits(&mut self, len: usize) -> Vec<usize> {
        if len < 2 || self.below(3) > 0 {
            return Vec::new();
        }
        let mut cuts: Vec<usize> = (0..=self.below(8))
            .map(|_| 1 + self.below(len - 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Panics raised on tokio worker threads since the first call to
/// [`server_panics`], by the source file they were raised in.
static PANICS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// How many panics have been raised in the source files whose paths end
/// with one of `files` on a tokio worker thread, where a multi-threaded test
/// runtime runs the servers' tasks (a task's panic is otherwise silent; a
/// test's own failed assertions run on the test's thread and are not
/// counted). Counting starts at the first call.
pub fn server_panics(files: &[&str]) -> u64 {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The workers' name differs between tokio versions.
            let worker = matches!(
                std::thread::current().name(),
                Some("tokio-rt-worker" | "tokio-runtime-worker")
            );
            if let Some(location) = info.location().filter(|_| worker) {
                let mut panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
                match panics.iter_mut().find(|(f, _)| f == location.file()) {
                    Some((_, n)) => *n += 1,
                    None => panics.push((location.file().to_owned(), 1)),
                }
            }
            previous(info);
        }));
    });
    let panics = PANICS.lock().unwrap_or_else(|p| p.into_inner());
    panics
        .iter()
        .filter(|(f, _)| files.iter().any(|end| f.ends_with(end)))
        .map(|(_, n)| n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_damages_the_same_way() {
        let seeds: &[&[u8]] = &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"Ping 1 x"];
        let run = |seed| {
            let mut m = Mutator::new(seed);
            (0..200)
                .map(|_| {
                    let input = m.input(seeds);
                    let cuts = m.splits(input.len());
                    (input, cuts)
                })
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(
            a.iter()
                .all(|(i, c)| i.len() <= MAX_INPUT && c.iter().all(|&c| (1..i.len()).contains(&c)))
        );
        let unchanged = a.iter().filter(|(i, _)| seeds.contains(&&i[..])).count();
        assert!(unchanged < 20, "{unchanged} of 200 left intact");
        assert!(a.iter().any(|(i, _)| i.len() > 64 * 1024));
        assert!(a.iter().any(|(_, c)| !c.is_empty()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_servers_task_panic_is_counted() {
        let here = ["servers/fuzz/bytes.rs"];
        let before = server_panics(&here);
        let task = tokio::spawn(async { panic!("a server task fails") });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(server_panics(&here), before + 1);
        assert_eq!(server_panics(&["servers/nothing.rs"]), 0);
    }
}
