//! netgrade grades network-programming labs: it starts reference servers,
//! runs a student's program against them, records every byte and timing on
//! the wire, checks the record against a lab spec written in YAML, and
//! reports to people, to CI and to grading platforms.
//!
//! # Layout
//!
//! One run is one submission graded on one lab. Data flows one way:
//!
//! ```text
//! lab.yaml ─▶ spec::Lab ─▶ run::run_one ─┬─ servers (reference servers) ─┐
//!                                        ├─ sandbox (student process) ───┼─▶ trace::Trace
//!                                        └─ probes (netgrade as client) ─┘
//!                                                                               │
//!                                        checks::evaluate ◀─────────────────────┘
//!                                               │
//!                                        outcome::RunOutcome ─▶ report (console, JSON, JUnit, Markdown)
//! ```
//!
//! - [`spec`]: lab YAML types, validation with line/column snippets, the built-in
//!   labs, and the warnings about labs that cannot grade fairly ([`spec::lint`]).
//! - [`run`]: one run as a pipeline of phases over a [`run::Plan`] — workspace
//!   (work directory, entry file, language preset), network (namespace or port
//!   queue), servers, capture (hard-coded hosts and ports steered to the
//!   servers), program (confined, then built, run or probed), stop, evaluate — its normalized
//!   transcript, and batches ([`run::batch`]: concurrency that adapts to the
//!   machine, regrades, Ctrl-C).
//! - [`sandbox`]: the student's process: process group, deadline, output cap,
//!   network, mount, PID and (without root) user namespaces (a small init of
//!   netgrade's), its own view of the files, its own user, its limits and
//!   cgroup, the helper that starts it, clean-up of leftovers, the janitor,
//!   the capture's routes and BPF steering, diagnoses of common errors.
//! - [`servers`]: one module per reference server (the lossy UDP pinger,
//!   HTTP/1.1 (a folder, or sites by host name: a web proxy's origin), SMTP, POP3, the lab's DNS name servers, the BitTorrent
//!   tracker (HTTP and UDP) and peers (seeders with seeded misbehaviour, and
//!   the leecher that downloads from a student's peer), the capture's DNS
//!   resolver), their TLS, their
//!   runtime and its lateness, a watcher of where a program's traffic went,
//!   and the servers run on their own, as `netgrade serve` runs them.
//! - [`probes`]: netgrade as a client of a student's server (raw HTTP exchanges
//!   and the response parser the checks use; DNS queries over UDP and TCP;
//!   fake peers' announces to a student's BitTorrent tracker, judged as they
//!   run; heartbeats with seeded one-way delays to a student's UDP heartbeat
//!   server).
//! - [`dns_wire`]: DNS messages read field by field, each field with its
//!   offset and each name with the pointers it was reached through, read as
//!   far as they go; the dns-client and dns-server checks and the DNS probes
//!   share it.
//! - [`torrent`]: BitTorrent metainfo files (BEP 3) read, written and made,
//!   their info_hash, and a lab's torrents made for a run.
//! - [`homework`]: the chapter's written problems: answers files, per-student
//!   variants of a lab's parameters, expressions and quantities with units.
//! - [`trace`]: the event record every run produces; checks read only this.
//! - [`checks`]: check kinds, each a function from trace to verdict, and the
//!   lab's numbers their messages, titles and hints name ([`checks::params`]).
//! - [`outcome`]: the result model reporters read.
//! - [`report`]: console, JSON, JUnit and Markdown reporters.
//! - [`rt`]: blocking work kept off the runtime's threads.
//!
//! Checks never touch sockets; reporters never run anything; [`dns_wire`]
//! only reads bytes. A server test
//! asserts on events, a check test feeds a hand-made trace, a reporter test
//! feeds a hand-made outcome.

pub mod autograder;
pub mod checks;
pub mod class;
pub mod dns_wire;
pub mod homework;
pub mod outcome;
pub mod probes;
pub mod report;
pub mod rt;
pub mod run;
pub mod sandbox;
pub mod servers;
pub mod spec;
pub mod torrent;
pub mod trace;
