//! Lab specs: the YAML an instructor writes, its validation, and the built-in labs.
//!
//! A lab names its reference servers ([`ServerSpec`]), how to find and run the
//! submission ([`ProgramSpec`]), its checks ([`CheckSpec`]) and how transcripts
//! are normalized ([`TranscriptSpec`]).
//!
//! Loading is three steps, and reports every error it finds, each with its
//! file, line and column, rendered as a snippet: the YAML becomes a tree
//! whose nodes know their positions (`tree.rs`); the tree is walked against
//! the lab's JSON Schema ([`schema`], `shape.rs`) for types, ranges, unknown
//! and misindented fields; then the rules across fields are checked on the
//! typed spec (`load.rs`), each error pointing at the value at fault.

mod dur;
mod error;
pub mod lint;
mod load;
pub mod schema;
mod shape;
mod tree;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use dur::{Dur, Size, trim_float};
pub use error::{SpecError, SpecErrors};
pub use load::{
    BUILTIN, builtin_names, load, load_builtin, load_str, load_zone_file, resolve, source_text,
};

/// A lab: one assignment, as a YAML file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// Short name, used on the command line and in reports, e.g. `udp-pinger`.
    pub name: String,
    /// One-line title for people.
    pub title: String,
    /// Longer description (shown by `netgrade labs`).
    #[serde(default)]
    pub description: String,
    /// Default seed for loss and delay decisions; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Reference servers that netgrade starts for the run.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// How to find, build and run the student's program.
    pub program: ProgramSpec,
    /// Folder of lab files (a web root, a maildrop …), relative to the lab YAML.
    /// They are copied next to the student's program, served by reference
    /// servers, and compared with what programs send.
    #[serde(default)]
    pub data: Option<String>,
    /// Requests netgrade sends, in order, to a student's server (`program.role: server`).
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
    /// Runs of the program, each with its own arguments, standard input and
    /// server settings (a DNS client asked one question per run). Without
    /// cases the program runs once.
    #[serde(default)]
    pub cases: Vec<CaseSpec>,
    /// Torrents the lab's `tracker` and `peer` servers share. Each is made
    /// when a run starts and written next to the program as `NAME.torrent`,
    /// its announce URL the lab's tracker.
    #[serde(default)]
    pub torrents: Vec<TorrentSpec>,
    /// The checks, in report order.
    pub checks: Vec<CheckSpec>,
    /// How transcripts (snapshots) are normalized.
    #[serde(default)]
    pub transcript: TranscriptSpec,
    /// What the run's network does with destinations a program hard-codes.
    #[serde(default)]
    pub capture: CaptureSpec,
    /// How much netgrade's own timing may slip before a run is regraded.
    #[serde(default)]
    pub timing: TimingSpec,
    /// A golden session transcript in the lab's `data` (made by `netgrade golden`
    /// from a reference solution), which the `transcript` check compares with.
    #[serde(default)]
    pub golden: Option<String>,
    /// Homework (`program.role: answers`): parameters drawn for each student
    /// from the lab's seed and the student's identity, named in questions
    /// as `{name}` and in expressions.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// Homework: when reports show each question's expected answer:
    /// `never` (the default), `always`, or a date and time (UTC) after
    /// which they do, e.g. `2026-12-10T23:59:00Z` (the deadline).
    #[serde(default)]
    pub show_expected: Option<String>,
    /// Homework: a plot of expressions over one parameter, with the
    /// student's other numbers, linked from the Markdown report as an SVG.
    #[serde(default)]
    pub plot: Option<PlotSpec>,
    /// The lab's data files, loaded with the spec.
    #[serde(skip)]
    #[schemars(skip)]
    pub files: DataFiles,
    /// SHA-1 of the lab's YAML and data files, in hex: a run graded with
    /// another lab text is not taken over by `--resume`.
    #[serde(skip)]
    #[schemars(skip)]
    pub digest: String,
}

/// A homework parameter: one of `choose`, or a number from `min` to `max`
/// on the `step` grid (default step 1).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The values to choose from (numbers or texts).
    #[serde(default)]
    pub choose: Option<Vec<ParamValue>>,
    /// The smallest number.
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest number.
    #[serde(default)]
    pub max: Option<f64>,
    /// The grid between them (default 1).
    #[serde(default)]
    pub step: Option<f64>,
}

/// A homework's plot: curves of expressions over one parameter `x`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// The title (`{param}` filled in).
    pub title: String,
    /// The parameter along the x axis, e.g. `N`.
    pub x: String,
    /// Its first value.
    pub from: f64,
    /// Its last value.
    pub to: f64,
    /// A logarithmic x axis (`from` above 0).
    #[serde(default)]
    pub log: bool,
    /// The y axis's label, e.g. `seconds`.
    #[serde(default)]
    pub unit: Option<String>,
    /// The curves.
    pub series: Vec<SeriesSpec>,
}

/// One curve of a plot.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// Its name in the legend.
    pub name: String,
    /// Its value: an expression over the lab's params and `x`.
    pub expect: String,
}

/// A parameter's value: a number or a text.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    /// A number.
    Number(f64),
    /// A text (a host name, a date).
    Text(String),
}

/// A question's expected answer: a number or an expression (`numeric`,
/// `expression`), a text (`choice`, `exact`, `regex`), or a list (`set`).
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Expected {
    /// A number.
    Number(f64),
    /// A text, an expression or a pattern.
    Text(String),
    /// The members of a set.
    List(Vec<String>),
}

/// A wrong answer students give, and what to tell them.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MistakeSpec {
    /// The wrong answer: as `expect` is written for the check's kind (an
    /// expression for `expression`).
    pub answer: Expected,
    /// What it shows, for the student: `F/u_s is one copy; the server
    /// sends N of them`.
    pub says: String,
}

/// A torrent of a lab: its content, made of seeded bytes or taken from the
/// lab's data.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TorrentSpec {
    /// The torrent's name: it is written as `NAME.torrent`, and peers name it
    /// in `torrent:`.
    pub name: String,
    /// Bytes per piece: a power of two from 16 KiB to 16 MiB.
    #[serde(default = "default_piece_length")]
    pub piece_length: u64,
    /// The content: this many pseudo-random bytes drawn from the run's seed,
    /// in one file called `NAME.bin`.
    #[serde(default)]
    pub size: Option<u64>,
    /// The content: a file of the lab's data (a single-file torrent), or a
    /// folder of it (a multi-file torrent of the folder's files, in path order).
    #[serde(default)]
    pub path: Option<String>,
}

fn default_piece_length() -> u64 {
    32768
}

/// The files of a lab's `data` folder: relative path (with `/`) → bytes.
#[derive(Clone, Debug, Default)]
pub struct DataFiles(pub Vec<(String, Vec<u8>)>);

impl DataFiles {
    /// The bytes of `path` (leading `/` ignored), if the lab has that file.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        let path = path.trim_start_matches('/');
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.as_slice())
    }

    /// Writes every file under `dir`.
    pub fn write_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        for (path, bytes) in &self.0 {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, bytes)?;
            // The same modification time every run: a server's
            // Last-Modified, and a cache's revalidation, never depend on
            // when the run started.
            std::fs::File::options()
                .write(true)
                .open(&target)?
                .set_modified(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(DATA_MODIFIED_SECS),
                )?;
        }
        Ok(())
    }
}

/// The modification time of every file of a lab's data as a run writes it
/// out, in seconds since 1970: 2026-01-01 00:00:00 UTC.
pub const DATA_MODIFIED_SECS: u64 = 1_767_225_600;

/// One run of the program in a lab of several: what differs from the lab's
/// own settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Stable id, shown in every report, e.g. `mx-record`.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// What the case asks, for people.
    #[serde(default)]
    pub title: Option<String>,
    /// The program's arguments in this case, instead of `program.args` (same placeholders).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Standard input in this case, instead of `program.stdin`.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Settings of the lab's servers in this case, by server name: the
    /// fields given replace the server's.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerPatch>,
}

/// Server settings a case changes; each one given replaces the server's.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerPatch {
    /// udp-pinger: the datagrams dropped.
    #[serde(default)]
    pub drop: Option<Vec<u32>>,
    /// udp-pinger: the loss rate.
    #[serde(default)]
    pub loss: Option<f64>,
    /// udp-pinger, http, dns: the reply delay.
    #[serde(default)]
    pub delay: Option<DelayRange>,
    /// smtp: the wait before the greeting.
    #[serde(default)]
    pub greeting_delay: Option<Dur>,
    /// smtp: the injected replies.
    #[serde(default)]
    pub inject: Option<Vec<InjectSpec>>,
    /// dns: the faults, in place of the server's (`{}` for none).
    #[serde(default)]
    pub faults: Option<DnsFaults>,
}

impl ServerPatch {
    /// `server` with this patch's fields in place of its own.
    pub fn apply(&self, server: &mut ServerSpec) {
        if let Some(drop) = &self.drop {
            server.drop = Some(drop.clone());
            server.loss = None;
        }
        if let Some(loss) = self.loss {
            server.loss = Some(Spanned::new(
                loss,
                serde_saphyr::Location::UNKNOWN,
                serde_saphyr::Location::UNKNOWN,
            ));
            server.drop = None;
        }
        if let Some(delay) = self.delay {
            server.delay = Some(delay);
        }
        if let Some(d) = self.greeting_delay {
            server.greeting_delay = Some(d);
        }
        if let Some(inject) = &self.inject {
            server.inject = inject.clone();
        }
        if let Some(faults) = &self.faults {
            server.faults = Some(faults.clone());
        }
    }
}

impl Lab {
    /// Whether the student's server serves on UDP: the lab sends it DNS
    /// queries over UDP, or heartbeats (else its probes connect over TCP).
    pub fn probes_over_udp(&self) -> bool {
        self.probes.iter().any(|p| {
            p.heartbeat.is_some()
                || p.dns
                    .as_ref()
                    .is_some_and(|d| d.transport == DnsTransport::Udp)
        })
    }

    /// The lab as case `case` runs it: the case's arguments, input and server
    /// settings, and only the checks that judge this case.
    pub fn for_case(&self, case: &CaseSpec) -> Lab {
        let mut lab = self.clone();
        if let Some(args) = &case.args {
            lab.program.args = args.clone();
        }
        if let Some(stdin) = &case.stdin {
            lab.program.stdin = Some(stdin.clone());
        }
        for server in &mut lab.servers {
            if let Some(patch) = case.servers.get(&server.name) {
                patch.apply(server);
            }
        }
        lab.checks
            .retain(|c| c.case.as_ref().is_none_or(|k| k.value == case.id.value));
        // What a check builds on is judged over the merged cases.
        for check in &mut lab.checks {
            check.requires.clear();
        }
        lab.cases = Vec::new();
        lab
    }
}

fn default_seed() -> u64 {
    1
}

/// Capture of hard-coded destinations (inside a run's network namespace,
/// every host reaches the lab's servers and every name resolves to them).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Deliver traffic for a port no server uses to the lab's server for that
    /// protocol (a client hard-coding port 587 or 10000 still reaches the lab).
    /// Default: on for client labs, off for server labs.
    #[serde(default)]
    pub redirect_ports: Option<bool>,
}

/// How much netgrade's own timing may slip on a busy machine.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingSpec {
    /// A run whose servers ran later than this behind their schedule (a
    /// reply due after 112 ms sent after 400 ms) is graded again, with fewer
    /// runs at once, instead of from that evidence. Default 250ms.
    #[serde(default = "default_tolerance")]
    pub tolerance: Dur,
}

impl Default for TimingSpec {
    fn default() -> Self {
        TimingSpec {
            tolerance: default_tolerance(),
        }
    }
}

fn default_tolerance() -> Dur {
    Dur::from_millis(250)
}

/// A reference server started for each run.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Name used in placeholders and transcripts, e.g. `pinger`.
    pub name: String,
    /// Which server: `udp-pinger`, `http`, `smtp`, `pop3`, `dns`, `tracker` or `peer`.
    #[schemars(with = "ServerKind")]
    pub kind: Spanned<ServerKind>,
    /// Address to bind. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port to bind. With network isolation every run can use the handout's fixed port.
    pub port: u16,
    /// udp-pinger: drop exactly these datagrams (1-based, in order of arrival).
    #[serde(default)]
    pub drop: Option<Vec<u32>>,
    /// udp-pinger: drop each datagram with this probability (seeded), when `drop` is not given.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub loss: Option<Spanned<f64>>,
    /// udp-pinger: the delay before each reply; http: before each response;
    /// dns: before each answer over UDP. Drawn uniformly (seeded) from this range.
    #[serde(default)]
    pub delay: Option<DelayRange>,
    /// smtp: wait this long before the 220 greeting (catches clients that talk first).
    #[serde(default)]
    pub greeting_delay: Option<Dur>,
    /// smtp: answer bare-LF command lines with 500, and never end DATA on `\n.\n`.
    #[serde(default)]
    pub strict_crlf: Option<bool>,
    /// smtp: advertise PIPELINING in the EHLO reply.
    #[serde(default)]
    pub pipelining: Option<bool>,
    /// smtp: replies that replace the normal reply to a command.
    #[serde(default)]
    pub inject: Vec<InjectSpec>,
    /// smtp: offer STARTTLS (RFC 3207) in the EHLO reply, with a certificate
    /// from the run's certificate authority. Default true.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// smtp: also serve implicit TLS (SMTPS, RFC 8314) on this port, e.g. 465.
    #[serde(default)]
    pub tls_port: Option<u16>,
    /// pop3: the mailbox's user name.
    #[serde(default)]
    pub user: Option<String>,
    /// pop3: the mailbox's password.
    #[serde(default)]
    pub password: Option<String>,
    /// pop3: folder in the lab's `data` holding the maildrop, one message per file, in name order.
    #[serde(default)]
    pub maildrop: Option<String>,
    /// http: each folder of the lab's `data` is the site of the host it is
    /// named after (`www.example.com/`), served by that host's name (the
    /// request's absolute-form target, else its `Host`), else by the first
    /// site that has the path; `POST` is answered with an echo of its body.
    /// A web proxy's origin servers.
    #[serde(default)]
    pub sites: Option<bool>,
    /// dns: the zones the server answers for, authoritatively.
    #[serde(default)]
    pub zones: Option<Vec<ZoneSpec>>,
    /// dns: serve the zones as a hierarchy of name servers: each zone at the
    /// IPv4 addresses (127.x.x.x) of its own name servers (its NS records at
    /// the origin and their A records, from the lab's zones), so a root at
    /// 127.0.0.2 refers to a TLD server at 127.0.0.3, which refers to an
    /// authoritative server at 127.0.0.4. The root zone `.` is required; the
    /// root hints are written next to the program as `named.root`.
    #[serde(default)]
    pub hierarchy: Option<bool>,
    /// dns: misbehaviour on purpose, over UDP, for clients to cope with.
    #[serde(default)]
    pub faults: Option<DnsFaults>,
    /// tracker: seconds clients are told to wait between announces. Default 60.
    #[serde(default)]
    pub interval: Option<u32>,
    /// peer: the torrent it seeds (a name from the lab's `torrents`); the
    /// lab's first torrent by default.
    #[serde(default)]
    pub torrent: Option<String>,
    /// peer: has only these pieces (0-based); all of them by default.
    #[serde(default)]
    pub has: Option<Vec<u32>>,
    /// peer: gets these pieces during the download, announcing each with a
    /// `have` after every fourth block it serves (so `have` messages arrive
    /// between pieces).
    #[serde(default)]
    pub gains: Option<Vec<u32>>,
    /// peer: stays choked until the other side says it is interested.
    #[serde(default)]
    pub choke_until_interested: Option<bool>,
    /// peer: sends one byte of each of these pieces flipped every time it
    /// serves it (the piece's SHA-1 fails); the byte is drawn from the run's
    /// seed.
    #[serde(default)]
    pub corrupt_pieces: Option<Vec<u32>>,
    /// peer: asked for a block of one of these pieces, sends half the
    /// message and closes the connection.
    #[serde(default)]
    pub disconnect_pieces: Option<Vec<u32>>,
    /// peer: waits this long before sending each block.
    #[serde(default)]
    pub slow: Option<Dur>,
}

/// A file of DNS zones, for `netgrade serve dns --zone FILE`: the fields of
/// a lab's `dns` server that say what it serves.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// The zones, as a lab's `dns` server lists them.
    pub zones: Vec<ZoneSpec>,
    /// Serve the zones as a hierarchy (see [`ServerSpec::hierarchy`]).
    #[serde(default)]
    pub hierarchy: Option<bool>,
    /// Misbehaviour on purpose (see [`ServerSpec::faults`]).
    #[serde(default)]
    pub faults: Option<DnsFaults>,
}

/// A DNS zone a `dns` server serves.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    /// The zone's name, e.g. `example.com` (`.` for the root).
    pub origin: String,
    /// TTL of the records that give none, in seconds (default 3600).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// The zone's records. Names are as in a master file (RFC 1035 §5.1):
    /// `www` is relative to the origin, `@` is the origin, and a name ending
    /// in `.` is absolute.
    pub records: Vec<RecordSpec>,
}

/// One resource record of a zone.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSpec {
    /// Owner name: `www`, `@`, or `www.example.com.`.
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: DnsType,
    /// The data, as in a master file: `10.0.0.1` (A), `2001:db8::1` (AAAA),
    /// `ns1` (NS), `www` (CNAME), `10 mail` (MX), `ns1 hostmaster 1 3600 600
    /// 86400 300` (SOA: primary server, contact, serial, refresh, retry,
    /// expire, negative TTL); a TXT record's text as it is (split into
    /// strings of 255 bytes).
    pub value: String,
    /// TTL in seconds (default: the zone's).
    #[serde(default)]
    pub ttl: Option<u32>,
}

/// The record types a zone may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum DnsType {
    /// An IPv4 address.
    A,
    /// An IPv6 address.
    AAAA,
    /// A name server of the zone, or of a delegated child zone.
    NS,
    /// An alias: the canonical name.
    CNAME,
    /// A mail exchanger: preference and name.
    MX,
    /// The start of the zone's authority (one, at the origin).
    SOA,
    /// Text.
    TXT,
}

impl DnsType {
    /// The mnemonic, e.g. `MX`.
    pub fn name(self) -> &'static str {
        match self {
            DnsType::A => "A",
            DnsType::AAAA => "AAAA",
            DnsType::NS => "NS",
            DnsType::CNAME => "CNAME",
            DnsType::MX => "MX",
            DnsType::SOA => "SOA",
            DnsType::TXT => "TXT",
        }
    }
}

/// What a `dns` server does wrong on purpose. Queries are numbered from 1
/// in order of arrival over UDP, at all of the server's addresses together;
/// TCP is always answered correctly.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsFaults {
    /// The first this many queries get no answer (a client must retransmit).
    #[serde(default)]
    pub drop_first: Option<u32>,
    /// These queries first get a response with another ID, whose addresses
    /// are decoys (A records moved into 192.0.2.0/24, AAAA into 100::/64),
    /// then the right one (a client must match IDs).
    #[serde(default)]
    pub wrong_id: Vec<u32>,
    /// These queries get a response cut off inside its first record instead
    /// of the answer (a client must not trust the counts).
    #[serde(default)]
    pub truncated: Vec<u32>,
    /// These queries get a malformed response instead of the answer: a
    /// compression pointer that points at itself (a client must not loop).
    #[serde(default)]
    pub malformed: Vec<u32>,
}

/// An injected SMTP reply.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectSpec {
    /// The command verb it answers, e.g. `RCPT`.
    pub command: String,
    /// The reply line sent instead, e.g. `550 5.1.1 No such user here`.
    pub reply: String,
    /// How many times (default: every time).
    #[serde(default)]
    pub times: Option<u32>,
}

impl ServerSpec {
    /// The maildrop's messages, from the lab's data (name order).
    pub fn maildrop_messages(&self, files: &DataFiles) -> Vec<Vec<u8>> {
        let Some(dir) = &self.maildrop else {
            return Vec::new();
        };
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        files
            .0
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

/// The kinds of reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// The lossy UDP pinger: upper-cases and echoes datagrams, drops and delays some.
    UdpPinger,
    /// An HTTP/1.1 server for the lab's `data` folder.
    Http,
    /// An SMTP server (RFC 5321) that delivers into a mailbox the checks read.
    Smtp,
    /// A POP3 server (RFC 1939) for a maildrop from the lab's data.
    Pop3,
    /// Authoritative DNS name servers (RFC 1034, 1035) for zones in the lab,
    /// over UDP and TCP; optionally a hierarchy (root, TLD, authoritative).
    Dns,
    /// A BitTorrent tracker over HTTP (BEP 3, 23) for the lab's torrents,
    /// listing the lab's peers.
    Tracker,
    /// A BitTorrent peer (BEP 3) seeding one of the lab's torrents, with
    /// seeded misbehaviour.
    Peer,
}

impl ServerKind {
    /// The kebab-case name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::UdpPinger => "udp-pinger",
            ServerKind::Http => "http",
            ServerKind::Smtp => "smtp",
            ServerKind::Pop3 => "pop3",
            ServerKind::Dns => "dns",
            ServerKind::Tracker => "tracker",
            ServerKind::Peer => "peer",
        }
    }
}

/// A range of delays; `min == max` gives a fixed delay (the default: none).
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DelayRange {
    /// Shortest delay.
    pub min: Dur,
    /// Longest delay.
    pub max: Dur,
}

/// How to find and run the submission.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Entry-file candidates, tried in order; globs like `*.py` allowed.
    pub entry: Vec<String>,
    /// When a glob matches several files, prefer those containing this text (e.g. `SOCK_DGRAM`).
    #[serde(default)]
    pub contains: Option<String>,
    /// Arguments appended to the language's run command. Placeholders:
    /// `{host}`, `{port}`, `{addr}` (`host:port`, the first server), `{entry}`, `{stem}`, `{dir}`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Full command instead of the language preset (same placeholders), e.g. `python3 {entry}`.
    #[serde(default)]
    pub command: Option<String>,
    /// Build command instead of the language preset's (Java, C).
    #[serde(default)]
    pub build: Option<String>,
    /// Text given on standard input (default: none, stdin is empty).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Wall-clock limit for the program; it is stopped (whole process group) after it.
    #[serde(default = "default_time_limit")]
    pub time_limit: Dur,
    /// Wall-clock limit for the build step.
    #[serde(default = "default_build_limit")]
    pub build_time_limit: Dur,
    /// Cap on stdout and stderr together; a program printing more is stopped.
    #[serde(default = "default_output_limit")]
    pub output_limit: Size,
    /// `client` (default): the program runs to its end against netgrade's
    /// servers. `server`: netgrade waits until it listens, sends the lab's
    /// probes, then stops it.
    #[serde(default)]
    pub role: Role,
    /// Role server: the port to use when netgrade cannot see which port the
    /// program listens on (`--port` overrides).
    #[serde(default)]
    pub port: Option<u16>,
    /// Role server: how long to wait for the program to listen.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout: Dur,
    /// Role server: how many instances of the program run side by side (a
    /// swarm of peers), 1 to 8. Instance `k` listens on `port + k - 1`
    /// (the `{listen}` placeholder) and runs in a copy of the work folder
    /// of its own, as a user of its own.
    #[serde(default = "default_instances")]
    pub instances: u8,
    /// Role client: file names (globs) that mark a file as the lab's server,
    /// e.g. the handout's `UDPPingerServer.py`; such a file is not graded
    /// while a client is there. Default: `*Server*`, `*server*`, `*SERVER*`.
    /// A name that also says `client` is never taken for a server's.
    #[serde(default)]
    pub server_names: Option<Vec<String>>,
    /// Python packages the course allows beyond the standard library, as pip
    /// requirements (`numpy`, `numpy==1.26.4`). netgrade installs them once
    /// into a cached virtual environment and runs Python programs with it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub python_packages: Vec<Spanned<String>>,
    /// What the program (and its build step) may use; each one left out
    /// takes its default (README, "Security").
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// The limits of `program.limits`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Processes and threads at once (default 256).
    #[serde(default)]
    pub processes: Option<u64>,
    /// Memory of the whole run, e.g. `512MiB` (default `1GiB`).
    #[serde(default)]
    pub memory: Option<Size>,
    /// CPU time of each process, e.g. `30s` (default `60s`).
    #[serde(default)]
    pub cpu_time: Option<Dur>,
    /// Largest file the program may write (default `256MiB`).
    #[serde(default)]
    pub file_size: Option<Size>,
    /// Open files of each process (default 1024).
    #[serde(default)]
    pub open_files: Option<u64>,
    /// What the work folder, and each private temporary folder, may hold
    /// (default `512MiB`; needs root).
    #[serde(default)]
    pub disk: Option<Size>,
    /// CPUs the whole run may keep busy at once, e.g. `0.5` (default 1;
    /// needs a cgroup with the `cpu` controller).
    #[serde(default)]
    pub cpus: Option<f64>,
}

impl LimitsSpec {
    /// The limits, defaults filled in.
    pub fn resolve(&self) -> crate::sandbox::Limits {
        let d = crate::sandbox::Limits::default();
        crate::sandbox::Limits {
            processes: self.processes.unwrap_or(d.processes).max(1),
            memory: self.memory.map_or(d.memory, |s| s.0),
            cpu: self.cpu_time.map_or(d.cpu, |t| t.get()),
            file_size: self.file_size.map_or(d.file_size, |s| s.0),
            open_files: self.open_files.unwrap_or(d.open_files).max(16),
            disk: self.disk.map_or(d.disk, |s| s.0).max(1 << 20),
            cpu_share: self.cpus.map_or(d.cpu_share, |c| {
                (c * 1000.0).round().clamp(10.0, 1e6) as u64
            }),
        }
    }
}

/// The file names [`ProgramSpec::server_names`] defaults to.
pub const DEFAULT_SERVER_NAMES: [&str; 3] = ["*Server*", "*server*", "*SERVER*"];

impl ProgramSpec {
    /// The globs that mark a file as the lab's server (the lab's, or the defaults).
    pub fn server_names(&self) -> Vec<String> {
        match &self.server_names {
            Some(names) => names.clone(),
            None => DEFAULT_SERVER_NAMES.map(String::from).to_vec(),
        }
    }

    /// The allowed Python packages, as written.
    pub fn python_packages(&self) -> Vec<String> {
        self.python_packages
            .iter()
            .map(|p| p.value.clone())
            .collect()
    }
}

fn default_instances() -> u8 {
    1
}

fn default_ready_timeout() -> Dur {
    Dur::from_secs(5)
}

/// Whether the student's program is a client or a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs to its end against netgrade's reference servers.
    #[default]
    Client,
    /// Listens; netgrade drives it with probes and stops it afterwards.
    Server,
    /// Homework: the submission is an answers file (the `entry`), graded
    /// question by question; nothing runs.
    Answers,
}

/// One request netgrade sends to a student's server.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Id that checks refer to.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Request method (with `target`), e.g. `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Request target, e.g. `/HelloWorld.html`.
    #[serde(default)]
    pub target: Option<String>,
    /// Protocol version in the request line.
    #[serde(default = "default_http_version")]
    pub version: String,
    /// Extra header lines, `Name: value`. A `Host` line is added unless one is given.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Exact bytes to send instead of method/target/headers (YAML escapes like `\r\n` apply).
    #[serde(default)]
    pub raw: Option<String>,
    /// Open the connection and send nothing on it until the next probe has
    /// finished; then send the request and read the response (a client that
    /// connects and is slow to ask: only a server that serves connections
    /// concurrently answers the next probe meanwhile).
    #[serde(default)]
    pub hold: bool,
    /// Deadline for the whole exchange.
    #[serde(default = "default_probe_timeout")]
    pub timeout: Dur,
    /// The response ends when nothing arrives for this long (servers that
    /// neither send Content-Length nor close).
    #[serde(default = "default_probe_idle")]
    pub idle: Dur,
    /// A DNS query instead of an HTTP request (see [`DnsProbeSpec`]).
    #[serde(default)]
    pub dns: Option<DnsProbeSpec>,
    /// A BitTorrent download from the student's peer instead of an HTTP
    /// request (see [`LeechProbeSpec`]).
    #[serde(default)]
    pub leech: Option<LeechProbeSpec>,
    /// Announces of fake peers to a student's BitTorrent tracker instead of
    /// an HTTP request (see [`AnnounceProbeSpec`]).
    #[serde(default)]
    pub announce: Option<AnnounceProbeSpec>,
    /// Heartbeats to a student's UDP heartbeat server instead of an HTTP
    /// request (see [`HeartbeatProbeSpec`]).
    #[serde(default)]
    pub heartbeat: Option<HeartbeatProbeSpec>,
    /// Which instance of the student's server the probe goes to (from 1; a
    /// lab of `program.instances`); the first by default.
    #[serde(default)]
    pub instance: Option<u8>,
}

/// Heartbeats netgrade's client sends a student's UDP heartbeat server: one
/// datagram `<seq> <timestamp>` every `interval`, the timestamp the wall
/// clock's seconds since 1970 backdated by a seeded delay (the heartbeat's
/// true one-way delay); some sequence numbers are never sent (lost); then
/// silence, the client having stopped; then a second client (a new socket)
/// starts again from 1.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatProbeSpec {
    /// Heartbeats of the first client, sequence numbers 1 to `count`
    /// (default 12).
    #[serde(default = "default_beats")]
    pub count: u32,
    /// Between heartbeats (default 500ms).
    #[serde(default = "default_beat_interval")]
    pub interval: Dur,
    /// Sequence numbers never sent (lost on the way); not the last one.
    #[serde(default)]
    pub lost: Vec<u32>,
    /// Each heartbeat's one-way delay, drawn (seeded) from this range: its
    /// timestamp is that much before it leaves (default 40ms to 400ms).
    #[serde(default = "default_beat_delay")]
    pub delay: DelayRange,
    /// Quiet after the first client's last heartbeat (default 6s).
    #[serde(default = "default_beat_silence")]
    pub silence: Dur,
    /// Heartbeats of the second client, from sequence number 1 (default 3).
    #[serde(default = "default_then")]
    pub then: u32,
}

fn default_beats() -> u32 {
    12
}

fn default_beat_interval() -> Dur {
    Dur::from_millis(500)
}

fn default_beat_delay() -> DelayRange {
    DelayRange {
        min: Dur::from_millis(40),
        max: Dur::from_millis(400),
    }
}

fn default_beat_silence() -> Dur {
    Dur::from_secs(6)
}

fn default_then() -> u32 {
    3
}

/// A scenario of announces netgrade's fake peers make to a student's
/// tracker, judged for one check; each scenario uses a torrent of its own.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnounceProbeSpec {
    /// `bencoded`, `interval`, `peer-list`, `events`, `failure-reason`,
    /// `concurrent-announces` (over HTTP) or `udp-tracker` (BEP 15).
    pub scenario: String,
    /// The announce path over HTTP (default `/announce`).
    #[serde(default)]
    pub path: Option<String>,
    /// udp-tracker: the tracker's UDP port (default: the port it listens
    /// on over TCP).
    #[serde(default)]
    pub udp_port: Option<u16>,
    /// udp-tracker: how long to wait for the first reply to a request
    /// before sending it again; the wait doubles at each retry (BEP 15
    /// says 15 s, shortened for grading; default 250ms, 4 sends).
    #[serde(default)]
    pub udp_retry: Option<Dur>,
}

/// The scenarios an `announce` probe may run: those over HTTP, and
/// `udp-tracker`.
pub fn announce_scenarios() -> impl Iterator<Item = &'static str> {
    crate::probes::tracker::CHECKS
        .into_iter()
        .chain(["udp-tracker"])
}

/// A download netgrade's leecher makes from a student's BitTorrent peer:
/// handshake, bitfield, interested, then blocks of 16 KiB, each checked.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeechProbeSpec {
    /// The torrent (a name from the lab's `torrents`); the first by default.
    #[serde(default)]
    pub torrent: Option<String>,
    /// Only these pieces (0-based); every piece by default.
    #[serde(default)]
    pub pieces: Option<Vec<u32>>,
    /// Requests kept outstanding at once (default 5).
    #[serde(default)]
    pub pipeline: Option<usize>,
    /// Requests a block, then cancels it at once, then goes on.
    #[serde(default)]
    pub cancel: bool,
    /// Downloads from every instance of the student's program at once
    /// (`program.instances`), piece `i` from instance `i mod N + 1`.
    #[serde(default)]
    pub swarm: bool,
    /// A crowd of leechers at once, fast and slow, for judging choking
    /// (see [`CrowdSpec`]).
    #[serde(default)]
    pub crowd: Option<CrowdSpec>,
}

/// A crowd of leechers downloading from the student's peer at once, round
/// the torrent, until the time is up, one block at a time: the fast ones
/// ask for the next 4 ms after a block, the slow ones after `gap`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrowdSpec {
    /// Fast leechers (default 4).
    #[serde(default = "default_fast")]
    pub fast: u8,
    /// Slow leechers (default 4).
    #[serde(default = "default_slow")]
    pub slow: u8,
    /// How long they download (default 9s).
    #[serde(default = "default_crowd_duration")]
    pub duration: Dur,
    /// A slow leecher's wait after each block (default 250ms).
    #[serde(default = "default_crowd_gap")]
    pub gap: Dur,
    /// When the slow leechers join, after the fast ones (default 1.5s).
    #[serde(default = "default_crowd_stagger")]
    pub stagger: Dur,
}

fn default_crowd_stagger() -> Dur {
    Dur::from_millis(1500)
}

fn default_fast() -> u8 {
    4
}

fn default_slow() -> u8 {
    4
}

fn default_crowd_duration() -> Dur {
    Dur::from_secs(9)
}

fn default_crowd_gap() -> Dur {
    Dur::from_millis(250)
}

/// A DNS query a probe sends: a question (or several), or exact bytes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsProbeSpec {
    /// `udp` (default): one datagram; `tcp`: with the 2-octet length prefix.
    #[serde(default)]
    pub transport: DnsTransport,
    /// The message ID (default: drawn from the lab's seed and the probe's id).
    #[serde(default)]
    pub id: Option<u16>,
    /// The question's name, e.g. `www.example.com`.
    #[serde(default)]
    pub name: Option<String>,
    /// The question's type (default `A`): a mnemonic or `TYPE<n>`.
    #[serde(default, rename = "type")]
    pub qtype: Option<String>,
    /// The question's class (default `IN`): a mnemonic or `CLASS<n>`.
    #[serde(default)]
    pub class: Option<String>,
    /// Several questions in one query, instead of `name`.
    #[serde(default)]
    pub questions: Vec<DnsQuestionSpec>,
    /// RD, recursion desired (default true).
    #[serde(default)]
    pub rd: Option<bool>,
    /// The OPCODE (default 0, a standard query).
    #[serde(default)]
    pub opcode: Option<u8>,
    /// Write each name with a compression pointer (RFC 1035 §4.1.4): to the
    /// longest suffix written before it, else to the header's last octet
    /// (ARCOUNT's low octet, 0: the root).
    #[serde(default)]
    pub compress: bool,
    /// Exact bytes to send, in hex (spaces allowed), instead of a question:
    /// a truncated or garbage message.
    #[serde(default)]
    pub hex: Option<String>,
}

/// One question of a DNS probe.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsQuestionSpec {
    /// The name.
    pub name: String,
    /// The type (default `A`).
    #[serde(default, rename = "type")]
    pub qtype: Option<String>,
    /// The class (default `IN`).
    #[serde(default)]
    pub class: Option<String>,
}

/// How a DNS probe reaches the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DnsTransport {
    /// One datagram each way.
    #[default]
    Udp,
    /// A TCP connection, each message after its 2-octet length.
    Tcp,
}

fn default_http_version() -> String {
    "HTTP/1.1".into()
}
fn default_probe_timeout() -> Dur {
    Dur::from_secs(5)
}
fn default_probe_idle() -> Dur {
    Dur::from_millis(1500)
}

impl ProbeSpec {
    /// The bytes to send, with `{host}` and `{port}` filled in.
    pub fn bytes(&self, host: &str, port: u16) -> Vec<u8> {
        let fill = |s: &str| {
            s.replace("{host}", host)
                .replace("{port}", &port.to_string())
        };
        if let Some(raw) = &self.raw {
            return fill(raw).into_bytes();
        }
        let mut out = format!(
            "{} {} {}\r\n",
            self.method.as_deref().unwrap_or("GET"),
            self.target.as_deref().unwrap_or("/"),
            self.version
        );
        if !self
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("host:"))
        {
            out.push_str(&format!("Host: {host}:{port}\r\n"));
        }
        for h in &self.headers {
            out.push_str(&fill(h));
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The request for people: `GET /HelloWorld.html` (for `raw`, its first
    /// line without the version; for a DNS probe, its question).
    pub fn request_line(&self) -> String {
        if let Some(dns) = &self.dns {
            return crate::probes::dns::describe_spec(dns);
        }
        let bytes = self.bytes("host", 0);
        let first = bytes
            .split(|b| *b == b'\r' || *b == b'\n')
            .next()
            .unwrap_or_default();
        let line = String::from_utf8_lossy(first).into_owned();
        match line.rsplit_once(' ') {
            Some((head, version)) if version.starts_with("HTTP/") => head.to_string(),
            _ => line,
        }
    }

    /// Whether the request is a HEAD (its response has no body).
    pub fn is_head(&self) -> bool {
        match &self.raw {
            Some(raw) => raw.starts_with("HEAD "),
            None => self.method.as_deref() == Some("HEAD"),
        }
    }
}

fn default_time_limit() -> Dur {
    Dur::from_secs(20)
}
fn default_build_limit() -> Dur {
    Dur::from_secs(60)
}
fn default_output_limit() -> Size {
    Size(64 * 1024)
}

/// One check: what it looks for, what it is worth, and what to tell a student.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Stable id used in every report, e.g. `ping-format`.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// The check kind; defaults to the id (see the README's check vocabulary).
    #[serde(default)]
    #[schemars(with = "Option<CheckKind>")]
    pub kind: Option<Spanned<CheckKind>>,
    /// One-line title.
    pub title: String,
    /// Points for a pass.
    pub points: f64,
    /// Advice shown to students when the check does not pass.
    #[serde(default)]
    pub hint: Option<String>,
    /// In a lab of several cases: the one case this check judges (default:
    /// every case; it passes when it passes in each).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub case: Option<Spanned<String>>,
    /// Ids of checks this one builds on: when one of them does not pass,
    /// this one is not judged (it says so and points there), so that one
    /// fault is charged once.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Who may see the check: `visible` (the default), `hidden`,
    /// `after_due_date` or `after_published`, as Gradescope names them.
    /// Students see only visible checks by name before grades are out.
    #[serde(default)]
    pub visibility: crate::outcome::Visibility,
    /// Whether the check may award part of its points: for a check that
    /// judges several items (reports-rtt: each answered ping), the share
    /// of them that were right. Default: all or nothing.
    #[serde(default)]
    pub partial: bool,
    /// A regular expression for the code that usually explains this
    /// check's failure (`settimeout` for waits-for-timeout): JUnit reports
    /// point a failure at the first line of the entry file it matches,
    /// unless a traceback or compiler already named a line.
    #[serde(default)]
    pub code: Option<String>,
    /// ping-count, ping-format, reports-stats: how many pings the handout asks
    /// for; sends-heartbeats: how many heartbeats (default 10).
    #[serde(default)]
    pub count: Option<u32>,
    /// ping-format: the first sequence number (default 1).
    #[serde(default)]
    pub first_seq: Option<u32>,
    /// waits-for-timeout: shortest acceptable wait after a lost ping (default
    /// 0.75s); retransmits: before a lost query is sent again (default 0.5s);
    /// detects-stop: after the last heartbeat, before the stop is reported
    /// (default 2.5s).
    #[serde(default)]
    pub min_wait: Option<Dur>,
    /// waits-for-timeout: longest acceptable wait after a lost ping (default
    /// 3s); retransmits: before a lost query is sent again (default 6s);
    /// no-hang-on-loss: after a lost reply, beyond the interval (default 3s);
    /// detects-stop: after the last heartbeat, the stop reported (default 5s).
    #[serde(default)]
    pub max_wait: Option<Dur>,
    /// reports-rtt, reports-stats: how far above the server-side RTT a reported
    /// value is expected to be, on top of twice the server's median lateness
    /// (default 100ms); the run's timeline bounds every value regardless;
    /// one-way-delay: beyond the true delay and the timeline (default 20ms).
    #[serde(default)]
    pub tolerance: Option<Dur>,
    /// tit-for-tat: how often the peer rechokes (default 1s; BEP 3 says 10 s);
    /// sends-heartbeats, no-hang-on-loss: the heartbeat interval (default 1s).
    #[serde(default)]
    pub interval: Option<Dur>,
    /// tit-for-tat: how often the optimistic unchoke moves (default 3s; BEP 3 says 30 s).
    #[serde(default)]
    pub optimistic: Option<Dur>,
    /// tit-for-tat: peers unchoked for their rate, the optimistic one aside (default 4).
    #[serde(default)]
    pub slots: Option<u32>,
    /// reports-timeouts: regex for a timeout line (default: "request timed out" in any case).
    #[serde(default)]
    pub pattern: Option<String>,
    /// runs: the exit status expected (default 0).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// HTTP checks: the probe whose exchange is judged.
    #[serde(default)]
    pub probe: Option<String>,
    /// HTTP checks: several probes (keeps-serving, status-line, headers).
    #[serde(default)]
    pub probes: Option<Vec<String>>,
    /// serves-file, binary-file: the lab data file the body must equal.
    #[serde(default)]
    pub file: Option<String>,
    /// Homework: the question, in Markdown, with `{param}` and `{expression}`
    /// filled in from the student's variant.
    #[serde(default)]
    pub question: Option<String>,
    /// Homework: the label the answers file gives the question (`1`, `b`);
    /// default its number among the lab's questions. Its id works too.
    #[serde(default)]
    pub label: Option<String>,
    /// Homework: the expected answer: a number (`numeric`), an expression
    /// over the parameters (`expression`), an option's letter or text
    /// (`choice`), a text (`exact`), a pattern (`regex`), members (`set`).
    #[serde(default)]
    pub expect: Option<Expected>,
    /// Homework, numeric and expression: the unit of the expected value
    /// (`s`, `ms`, `Mbps`, `MB`, or a word such as `URLs`); answers in
    /// another unit of the same kind are converted.
    #[serde(default)]
    pub unit: Option<String>,
    /// Homework, numeric and expression: how far an answer may be from the
    /// expected value, absolute (`0.5`, in `unit`) or relative (`1%`);
    /// default `1%`.
    #[serde(default)]
    #[schemars(with = "Option<Expected>")]
    pub within: Option<Expected>,
    /// Homework, choice: the options, lettered A, B, C … in order.
    #[serde(default)]
    pub options: Vec<String>,
    /// Homework: wrong answers students give, each with what to tell them.
    #[serde(default)]
    pub mistakes: Vec<MistakeSpec>,
    /// HTTP checks: the expected status code.
    #[serde(default)]
    pub status: Option<u16>,
}

impl CheckSpec {
    /// The kind of check, from `kind` or else from the id.
    pub fn kind(&self) -> Option<CheckKind> {
        match &self.kind {
            Some(k) => Some(k.value),
            None => CheckKind::from_id(&self.id.value),
        }
    }
}

/// The vocabulary of check kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The program exits on its own, with the expected status, within the time limit.
    Runs,
    /// Exactly `count` pings reach the server.
    PingCount,
    /// Each ping is `Ping <seq> <time>`, sequence `first_seq`.. in order.
    PingFormat,
    /// After a dropped ping the client waits about one second, no less, and does not hang.
    WaitsForTimeout,
    /// A "Request timed out" line for each dropped ping.
    ReportsTimeouts,
    /// The server's reply is printed for each answered ping.
    PrintsReplies,
    /// An RTT for each answered ping, matching the server-side RTT.
    ReportsRtt,
    /// Minimum, maximum and average RTT and the loss rate match what happened.
    ReportsStats,
    /// A probe's response has the expected status and exactly a data file's bytes.
    ServesFile,
    /// Every response starts with a well-formed status line, CRLF endings and a blank line.
    StatusLine,
    /// A request for a missing file gets a 404 status line, and the server keeps running.
    NotFound,
    /// Several requests in a row are all answered.
    KeepsServing,
    /// A binary file comes back byte for byte.
    BinaryFile,
    /// Content-Length, when sent, matches the body; Content-Type, when sent, fits the file.
    Headers,
    /// A request is answered while another connection is held open, half-sent.
    Concurrent,
    /// The client's request line is `GET /<file> HTTP/1.x`.
    RequestLine,
    /// The client sends a Host header (HTTP/1.1 requires it).
    HostHeader,
    /// Every request line ends with CRLF, and an empty line ends the head.
    Crlf,
    /// The client prints what the server sent.
    PrintsResponse,
    /// SMTP: nothing is sent before the 220 greeting.
    WaitsForGreeting,
    /// SMTP: HELO or EHLO with a domain, after the greeting.
    Helo,
    /// SMTP: `MAIL FROM:<address>`, accepted.
    MailFrom,
    /// SMTP: `RCPT TO:<address>`, accepted.
    RcptTo,
    /// SMTP: DATA only after RCPT, the message only after the 354.
    Data,
    /// SMTP: the message ends with `CRLF.CRLF`.
    EndOfData,
    /// SMTP, POP3: the session ends with QUIT (and its reply is read).
    Quit,
    /// SMTP: no command before the reply to the previous one (unless pipelining was offered).
    WaitsForReplies,
    /// SMTP: a message arrived with the body the lab asks for.
    Delivered,
    /// SMTP: after a rejected command the client stops cleanly instead of looping.
    HandlesRejection,
    /// POP3: USER and PASS accepted.
    Login,
    /// POP3: LIST (or STAT) is used to learn the messages.
    Lists,
    /// POP3: every message is retrieved with RETR.
    RetrievesAll,
    /// POP3: the saved or printed messages equal the originals byte for byte.
    SavesExact,
    /// POP3: every message is deleted, and the deletion takes effect (QUIT).
    Deletes,
    /// POP3: the maildrop is left untouched.
    Keeps,
    /// The session equals the lab's golden transcript, after redaction.
    Transcript,
    /// The program talks to the host and port it is given, not hard-coded ones.
    UsesArguments,
    /// DNS client: each query has a valid header, one question, RD set, the name as labels, the right type and class.
    QueryFormat,
    /// DNS client: query IDs are not fixed or predictable.
    RandomId,
    /// DNS client: the A records of the answer are printed, correctly decoded.
    PrintsAnswers,
    /// DNS client: an MX answer is printed with its preference and exchange.
    Mx,
    /// DNS client: a CNAME chain is printed with the address it leads to.
    Cname,
    /// DNS: a name that does not exist is reported as such (client, resolver) or answered NXDOMAIN (server).
    Nxdomain,
    /// DNS client: a response with another ID is not accepted.
    IgnoresWrongId,
    /// DNS client: a lost query is sent again after a timeout, and the client does not hang.
    Retransmits,
    /// DNS client: a truncated (TC) answer makes the client ask again over TCP.
    TcpFallback,
    /// DNS server: the ID, opcode and RD are echoed, QR is set, an unknown opcode gets NOTIMP.
    Header,
    /// DNS server: the question is echoed in the response.
    Question,
    /// DNS server: the zone's records are answered.
    Answers,
    /// DNS server: a question whose name uses a compression pointer is understood.
    CompressedQuery,
    /// DNS server: a query with several questions is answered for each.
    MultipleQuestions,
    /// DNS server: a name outside the zone is forwarded to the upstream resolver and its answer relayed.
    Forwards,
    /// DNS server: a truncated or garbage datagram does not stop the server answering.
    Malformed,
    /// DNS resolver: the first query goes to a root server from the root hints.
    StartsAtRoot,
    /// DNS resolver: root, then TLD, then authoritative server, each query with RD=0.
    FollowsReferrals,
    /// DNS resolver: the glue addresses of a referral are used.
    UsesGlue,
    /// DNS resolver: a name server without glue is resolved from the root first.
    ResolvesGluelessNs,
    /// DNS resolver: a CNAME answer is followed to the address.
    FollowsCname,
    /// DNS resolver: the address printed is the right one.
    FinalAnswer,
    /// DNS resolver: a second name in the same zone skips the root and TLD while their TTL lasts.
    Caches,
    /// BitTorrent client: the first announce carries the torrent's info_hash and a peer_id as 20 raw bytes, port, uploaded, downloaded, left and event=started.
    Announce,
    /// BitTorrent client: each handshake is 68 bytes with the protocol string, reserved bytes and the torrent's info_hash.
    Handshake,
    /// BitTorrent client: `interested` is sent on a connection before its first request.
    InterestedBeforeRequest,
    /// BitTorrent client: no request while the peer chokes the client.
    RespectsChoke,
    /// BitTorrent client: requests are blocks of at most 16 KiB, within a piece the peer has (the last piece short).
    RequestsBlocks,
    /// BitTorrent client: a piece whose SHA-1 fails is discarded and fetched again.
    VerifiesPieces,
    /// BitTorrent client: a peer that disconnects mid-piece does not stop the download.
    SurvivesPeerLoss,
    /// BitTorrent client: the output equals the torrent's content byte for byte.
    FileExact,
    /// BitTorrent client: blocks come from more than one peer.
    MultiplePeers,
    /// BitTorrent client: several requests are outstanding on a connection at once.
    Pipelining,
    /// BitTorrent client: the first piece asked of a peer is one of the rarest the client knows of.
    RarestFirst,
    /// BitTorrent client: an announce with event=completed and left=0 once the download is done.
    CompletedEvent,
    /// BitTorrent peer: the handshake is answered with 68 bytes for the same torrent.
    HandshakeReply,
    /// BitTorrent peer: a bitfield after the handshake says the peer has every piece.
    Bitfield,
    /// BitTorrent peer: interested is answered with unchoke.
    Unchokes,
    /// BitTorrent peer: every block requested comes back right, byte for byte.
    ServesPieces,
    /// BitTorrent peer: after a cancel the peer keeps the connection and serves on.
    HandlesCancel,
    /// BitTorrent peer: instances side by side, each on the port it is told,
    /// serve one download together (a `swarm` leech probe).
    Swarm,
    /// BitTorrent peer: unchokes the peers it uploads to fastest and
    /// rotates an optimistic unchoke (a `crowd` leech probe).
    TitForTat,
    /// UDP heartbeat client: `count` heartbeats, sequence and timestamp, at the interval.
    SendsHeartbeats,
    /// UDP heartbeat client: a lost reply never blocks the next heartbeat.
    NoHangOnLoss,
    /// UDP heartbeat server: the sequence numbers of lost heartbeats are named.
    ReportsLost,
    /// UDP heartbeat server: each heartbeat's printed one-way delay is its true one.
    OneWayDelay,
    /// UDP heartbeat server: after a silence, says the client stopped, in the lab's window.
    DetectsStop,
    /// UDP heartbeat server: outlives the client and serves the next one.
    KeepsRunning,
    /// Web proxy: the origin receives a well-formed request for the right path and host.
    ProxyForwards,
    /// Web proxy: the client gets the origin's status line, headers and body.
    ProxyRelays,
    /// Web proxy: a repeated request is answered from the cache, status line first.
    ProxyCaches,
    /// Web proxy: each URL has its own cache entry.
    CacheKey,
    /// Web proxy: binary and large objects come through byte for byte.
    BinaryAndLarge,
    /// Web proxy: an origin 404 is relayed; an unknown host gets an error response.
    ProxyNotFound,
    /// Web proxy: the browser's absolute-form request is forwarded and relayed.
    AbsoluteForm,
    /// Web proxy: a cache hit is revalidated with If-Modified-Since.
    ConditionalGet,
    /// Web proxy: a POST and its body reach the origin, its reply the client.
    ProxyPost,
    /// Homework: a number, within `within` of `expect`, units converted.
    Numeric,
    /// Homework: a number, within `within` of `expect` computed from the
    /// student's parameters.
    Expression,
    /// Homework: one of the `options`, by letter or text.
    Choice,
    /// Homework: a text, equal to `expect` but for case, spaces and a final period.
    Exact,
    /// Homework: a text matching the pattern `expect`.
    Regex,
    /// Homework: the members of `expect`, in any order.
    Set,
    /// Homework: graded by a person; pending in every report until then.
    Manual,
    /// Homework: a POP3 session's transcript, its client lines replayed
    /// against the lab's POP3 server and its server lines compared.
    Pop3Session,
    /// BitTorrent tracker: every reply is one valid, canonical bencoded dictionary.
    Bencoded,
    /// BitTorrent tracker: the reply has an integer interval.
    Interval,
    /// BitTorrent tracker: the peers of the swarm, compact and as dictionaries, never the requester.
    PeerList,
    /// BitTorrent tracker: a stopped peer disappears, completed updates the counts.
    Events,
    /// BitTorrent tracker: bad requests get a bencoded failure reason, and the tracker goes on.
    FailureReason,
    /// BitTorrent tracker: announces at once (one connection idle) are all answered.
    ConcurrentAnnounces,
    /// BitTorrent tracker: the UDP tracker protocol (BEP 15).
    UdpTracker,
}

impl CheckKind {
    /// All kinds, in documentation order.
    pub const ALL: [CheckKind; 109] = [
        CheckKind::Runs,
        CheckKind::PingCount,
        CheckKind::PingFormat,
        CheckKind::WaitsForTimeout,
        CheckKind::ReportsTimeouts,
        CheckKind::PrintsReplies,
        CheckKind::ReportsRtt,
        CheckKind::ReportsStats,
        CheckKind::ServesFile,
        CheckKind::StatusLine,
        CheckKind::NotFound,
        CheckKind::KeepsServing,
        CheckKind::BinaryFile,
        CheckKind::Headers,
        CheckKind::Concurrent,
        CheckKind::RequestLine,
        CheckKind::HostHeader,
        CheckKind::Crlf,
        CheckKind::PrintsResponse,
        CheckKind::WaitsForGreeting,
        CheckKind::Helo,
        CheckKind::MailFrom,
        CheckKind::RcptTo,
        CheckKind::Data,
        CheckKind::EndOfData,
        CheckKind::Quit,
        CheckKind::WaitsForReplies,
        CheckKind::Delivered,
        CheckKind::HandlesRejection,
        CheckKind::Login,
        CheckKind::Lists,
        CheckKind::RetrievesAll,
        CheckKind::SavesExact,
        CheckKind::Deletes,
        CheckKind::Keeps,
        CheckKind::Transcript,
        CheckKind::UsesArguments,
        CheckKind::QueryFormat,
        CheckKind::RandomId,
        CheckKind::PrintsAnswers,
        CheckKind::Mx,
        CheckKind::Cname,
        CheckKind::Nxdomain,
        CheckKind::IgnoresWrongId,
        CheckKind::Retransmits,
        CheckKind::TcpFallback,
        CheckKind::Header,
        CheckKind::Question,
        CheckKind::Answers,
        CheckKind::CompressedQuery,
        CheckKind::MultipleQuestions,
        CheckKind::Forwards,
        CheckKind::Malformed,
        CheckKind::StartsAtRoot,
        CheckKind::FollowsReferrals,
        CheckKind::UsesGlue,
        CheckKind::ResolvesGluelessNs,
        CheckKind::FollowsCname,
        CheckKind::FinalAnswer,
        CheckKind::Caches,
        CheckKind::Announce,
        CheckKind::Handshake,
        CheckKind::InterestedBeforeRequest,
        CheckKind::RespectsChoke,
        CheckKind::RequestsBlocks,
        CheckKind::VerifiesPieces,
        CheckKind::SurvivesPeerLoss,
        CheckKind::FileExact,
        CheckKind::MultiplePeers,
        CheckKind::Pipelining,
        CheckKind::RarestFirst,
        CheckKind::CompletedEvent,
        CheckKind::HandshakeReply,
        CheckKind::Bitfield,
        CheckKind::Unchokes,
        CheckKind::ServesPieces,
        CheckKind::HandlesCancel,
        CheckKind::Swarm,
        CheckKind::TitForTat,
        CheckKind::SendsHeartbeats,
        CheckKind::NoHangOnLoss,
        CheckKind::ReportsLost,
        CheckKind::OneWayDelay,
        CheckKind::DetectsStop,
        CheckKind::KeepsRunning,
        CheckKind::ProxyForwards,
        CheckKind::ProxyRelays,
        CheckKind::ProxyCaches,
        CheckKind::CacheKey,
        CheckKind::BinaryAndLarge,
        CheckKind::ProxyNotFound,
        CheckKind::AbsoluteForm,
        CheckKind::ConditionalGet,
        CheckKind::ProxyPost,
        CheckKind::Numeric,
        CheckKind::Expression,
        CheckKind::Choice,
        CheckKind::Exact,
        CheckKind::Regex,
        CheckKind::Set,
        CheckKind::Manual,
        CheckKind::Pop3Session,
        CheckKind::Bencoded,
        CheckKind::Interval,
        CheckKind::PeerList,
        CheckKind::Events,
        CheckKind::FailureReason,
        CheckKind::ConcurrentAnnounces,
        CheckKind::UdpTracker,
    ];

    /// The kebab-case name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Runs => "runs",
            CheckKind::PingCount => "ping-count",
            CheckKind::PingFormat => "ping-format",
            CheckKind::WaitsForTimeout => "waits-for-timeout",
            CheckKind::ReportsTimeouts => "reports-timeouts",
            CheckKind::PrintsReplies => "prints-replies",
            CheckKind::ReportsRtt => "reports-rtt",
            CheckKind::ReportsStats => "reports-stats",
            CheckKind::ServesFile => "serves-file",
            CheckKind::StatusLine => "status-line",
            CheckKind::NotFound => "not-found",
            CheckKind::KeepsServing => "keeps-serving",
            CheckKind::BinaryFile => "binary-file",
            CheckKind::Headers => "headers",
            CheckKind::Concurrent => "concurrent",
            CheckKind::RequestLine => "request-line",
            CheckKind::HostHeader => "host-header",
            CheckKind::Crlf => "crlf",
            CheckKind::PrintsResponse => "prints-response",
            CheckKind::WaitsForGreeting => "waits-for-greeting",
            CheckKind::Helo => "helo",
            CheckKind::MailFrom => "mail-from",
            CheckKind::RcptTo => "rcpt-to",
            CheckKind::Data => "data",
            CheckKind::EndOfData => "end-of-data",
            CheckKind::Quit => "quit",
            CheckKind::WaitsForReplies => "waits-for-replies",
            CheckKind::Delivered => "delivered",
            CheckKind::HandlesRejection => "handles-rejection",
            CheckKind::Login => "login",
            CheckKind::Lists => "lists",
            CheckKind::RetrievesAll => "retrieves-all",
            CheckKind::SavesExact => "saves-exact",
            CheckKind::Deletes => "deletes",
            CheckKind::Keeps => "keeps",
            CheckKind::Transcript => "transcript",
            CheckKind::UsesArguments => "uses-arguments",
            CheckKind::QueryFormat => "query-format",
            CheckKind::RandomId => "random-id",
            CheckKind::PrintsAnswers => "prints-answers",
            CheckKind::Mx => "mx",
            CheckKind::Cname => "cname",
            CheckKind::Nxdomain => "nxdomain",
            CheckKind::IgnoresWrongId => "ignores-wrong-id",
            CheckKind::Retransmits => "retransmits",
            CheckKind::TcpFallback => "tcp-fallback",
            CheckKind::Header => "header",
            CheckKind::Question => "question",
            CheckKind::Answers => "answers",
            CheckKind::CompressedQuery => "compressed-query",
            CheckKind::MultipleQuestions => "multiple-questions",
            CheckKind::Forwards => "forwards",
            CheckKind::Malformed => "malformed",
            CheckKind::StartsAtRoot => "starts-at-root",
            CheckKind::FollowsReferrals => "follows-referrals",
            CheckKind::UsesGlue => "uses-glue",
            CheckKind::ResolvesGluelessNs => "resolves-glueless-ns",
            CheckKind::FollowsCname => "follows-cname",
            CheckKind::FinalAnswer => "final-answer",
            CheckKind::Caches => "caches",
            CheckKind::Announce => "announce",
            CheckKind::Handshake => "handshake",
            CheckKind::InterestedBeforeRequest => "interested-before-request",
            CheckKind::RespectsChoke => "respects-choke",
            CheckKind::RequestsBlocks => "requests-blocks",
            CheckKind::VerifiesPieces => "verifies-pieces",
            CheckKind::SurvivesPeerLoss => "survives-peer-loss",
            CheckKind::FileExact => "file-exact",
            CheckKind::MultiplePeers => "multiple-peers",
            CheckKind::Pipelining => "pipelining",
            CheckKind::RarestFirst => "rarest-first",
            CheckKind::CompletedEvent => "completed-event",
            CheckKind::HandshakeReply => "handshake-reply",
            CheckKind::Bitfield => "bitfield",
            CheckKind::Unchokes => "unchokes",
            CheckKind::ServesPieces => "serves-pieces",
            CheckKind::HandlesCancel => "handles-cancel",
            CheckKind::Swarm => "swarm",
            CheckKind::TitForTat => "tit-for-tat",
            CheckKind::SendsHeartbeats => "sends-heartbeats",
            CheckKind::NoHangOnLoss => "no-hang-on-loss",
            CheckKind::ReportsLost => "reports-lost",
            CheckKind::OneWayDelay => "one-way-delay",
            CheckKind::DetectsStop => "detects-stop",
            CheckKind::KeepsRunning => "keeps-running",
            CheckKind::ProxyForwards => "proxy-forwards",
            CheckKind::ProxyRelays => "proxy-relays",
            CheckKind::ProxyCaches => "proxy-caches",
            CheckKind::CacheKey => "cache-key",
            CheckKind::BinaryAndLarge => "binary-and-large",
            CheckKind::ProxyNotFound => "proxy-not-found",
            CheckKind::AbsoluteForm => "absolute-form",
            CheckKind::ConditionalGet => "conditional-get",
            CheckKind::ProxyPost => "proxy-post",
            CheckKind::Numeric => "numeric",
            CheckKind::Expression => "expression",
            CheckKind::Choice => "choice",
            CheckKind::Exact => "exact",
            CheckKind::Regex => "regex",
            CheckKind::Set => "set",
            CheckKind::Manual => "manual",
            CheckKind::Pop3Session => "pop3-session",
            CheckKind::Bencoded => "bencoded",
            CheckKind::Interval => "interval",
            CheckKind::PeerList => "peer-list",
            CheckKind::Events => "events",
            CheckKind::FailureReason => "failure-reason",
            CheckKind::ConcurrentAnnounces => "concurrent-announces",
            CheckKind::UdpTracker => "udp-tracker",
        }
    }

    /// The kind whose name is `id`, if any.
    pub fn from_id(id: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.name() == id)
    }

    /// The optional parameters this kind reads.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            CheckKind::Runs => &["exit_code"],
            CheckKind::PingCount => &["count"],
            CheckKind::PingFormat => &["count", "first_seq"],
            CheckKind::WaitsForTimeout => &["min_wait", "max_wait"],
            CheckKind::ReportsTimeouts => &["pattern"],
            CheckKind::PrintsReplies => &[],
            CheckKind::ReportsRtt => &["tolerance"],
            CheckKind::ReportsStats => &["count", "tolerance"],
            CheckKind::ServesFile | CheckKind::BinaryFile => &["probe", "file", "status"],
            CheckKind::NotFound => &["probe", "probes", "status"],
            CheckKind::StatusLine | CheckKind::KeepsServing | CheckKind::Headers => &["probes"],
            CheckKind::Concurrent => &["probe", "probes", "status"],
            CheckKind::RequestLine => &["file"],
            CheckKind::HostHeader | CheckKind::Crlf => &[],
            CheckKind::PrintsResponse => &["file"],
            CheckKind::Delivered => &["pattern"],
            CheckKind::SavesExact => &["pattern"],
            CheckKind::WaitsForGreeting
            | CheckKind::Helo
            | CheckKind::MailFrom
            | CheckKind::RcptTo
            | CheckKind::Data
            | CheckKind::EndOfData
            | CheckKind::Quit
            | CheckKind::WaitsForReplies
            | CheckKind::HandlesRejection
            | CheckKind::Login
            | CheckKind::Lists
            | CheckKind::RetrievesAll
            | CheckKind::Deletes
            | CheckKind::Keeps
            | CheckKind::Transcript
            | CheckKind::UsesArguments => &[],
            CheckKind::QueryFormat => &[],
            CheckKind::RandomId => &[],
            CheckKind::PrintsAnswers => &[],
            CheckKind::Mx => &[],
            CheckKind::Cname => &[],
            CheckKind::Nxdomain => &["probe"],
            CheckKind::IgnoresWrongId => &[],
            CheckKind::Retransmits => &["min_wait", "max_wait"],
            CheckKind::TcpFallback => &[],
            CheckKind::Header => &["probe", "probes", "file"],
            CheckKind::Question => &["probe", "probes", "file"],
            CheckKind::Answers => &["probe", "probes", "file"],
            CheckKind::CompressedQuery => &["probe", "probes", "file"],
            CheckKind::MultipleQuestions => &["probe", "probes", "file"],
            CheckKind::Forwards => &["probe", "probes", "file"],
            CheckKind::Malformed => &["probe", "probes", "file"],
            CheckKind::StartsAtRoot => &[],
            CheckKind::FollowsReferrals => &[],
            CheckKind::UsesGlue => &[],
            CheckKind::ResolvesGluelessNs => &[],
            CheckKind::FollowsCname => &[],
            CheckKind::FinalAnswer => &[],
            CheckKind::Caches => &[],
            CheckKind::FileExact => &["file"],
            CheckKind::Announce => &[],
            CheckKind::Handshake => &[],
            CheckKind::InterestedBeforeRequest => &[],
            CheckKind::RespectsChoke => &[],
            CheckKind::RequestsBlocks => &[],
            CheckKind::VerifiesPieces => &[],
            CheckKind::SurvivesPeerLoss => &[],
            CheckKind::MultiplePeers => &[],
            CheckKind::Pipelining => &[],
            CheckKind::RarestFirst => &[],
            CheckKind::CompletedEvent => &[],
            CheckKind::HandshakeReply => &["probe", "probes"],
            CheckKind::Bitfield => &["probe", "probes"],
            CheckKind::Unchokes => &["probe", "probes"],
            CheckKind::ServesPieces => &["probe", "probes"],
            CheckKind::HandlesCancel => &["probe", "probes"],
            CheckKind::Swarm => &["probe", "probes"],
            CheckKind::TitForTat => &["probe", "interval", "optimistic", "slots"],
            CheckKind::SendsHeartbeats => &["count", "interval"],
            CheckKind::NoHangOnLoss => &["interval", "max_wait"],
            CheckKind::ReportsLost | CheckKind::KeepsRunning => &["probe"],
            CheckKind::OneWayDelay => &["probe", "tolerance"],
            CheckKind::DetectsStop => &["probe", "min_wait", "max_wait"],
            CheckKind::ProxyForwards
            | CheckKind::ProxyRelays
            | CheckKind::ProxyCaches
            | CheckKind::CacheKey
            | CheckKind::BinaryAndLarge
            | CheckKind::ProxyNotFound
            | CheckKind::AbsoluteForm
            | CheckKind::ConditionalGet
            | CheckKind::ProxyPost => &["probe", "probes"],
            CheckKind::Numeric | CheckKind::Expression => {
                &["question", "label", "expect", "unit", "within", "mistakes"]
            }
            CheckKind::Choice => &["question", "label", "expect", "options", "mistakes"],
            CheckKind::Exact | CheckKind::Regex | CheckKind::Set => {
                &["question", "label", "expect", "mistakes"]
            }
            CheckKind::Manual => &["question", "label"],
            CheckKind::Pop3Session => &["question", "label", "expect"],
            CheckKind::Bencoded => &["probe"],
            CheckKind::Interval => &["probe"],
            CheckKind::PeerList => &["probe"],
            CheckKind::Events => &["probe"],
            CheckKind::FailureReason => &["probe"],
            CheckKind::ConcurrentAnnounces => &["probe"],
            CheckKind::UdpTracker => &["probe"],
        }
    }

    /// The server kind whose traffic the check reads, if any.
    pub fn needs_server(self) -> Option<ServerKind> {
        match self {
            CheckKind::Runs | CheckKind::UsesArguments => None,
            CheckKind::PingCount
            | CheckKind::PingFormat
            | CheckKind::WaitsForTimeout
            | CheckKind::ReportsTimeouts
            | CheckKind::PrintsReplies
            | CheckKind::ReportsRtt
            | CheckKind::ReportsStats
            | CheckKind::SendsHeartbeats
            | CheckKind::NoHangOnLoss => Some(ServerKind::UdpPinger),
            CheckKind::RequestLine | CheckKind::HostHeader | CheckKind::PrintsResponse => {
                Some(ServerKind::Http)
            }
            CheckKind::WaitsForGreeting
            | CheckKind::Helo
            | CheckKind::MailFrom
            | CheckKind::RcptTo
            | CheckKind::Data
            | CheckKind::EndOfData
            | CheckKind::WaitsForReplies
            | CheckKind::Delivered
            | CheckKind::HandlesRejection => Some(ServerKind::Smtp),
            CheckKind::Login
            | CheckKind::Lists
            | CheckKind::RetrievesAll
            | CheckKind::SavesExact
            | CheckKind::Deletes
            | CheckKind::Keeps => Some(ServerKind::Pop3),
            // These read whichever session server the lab has (HTTP, SMTP or POP3).
            CheckKind::Crlf | CheckKind::Quit | CheckKind::Transcript => None,
            CheckKind::ServesFile
            | CheckKind::StatusLine
            | CheckKind::NotFound
            | CheckKind::KeepsServing
            | CheckKind::BinaryFile
            | CheckKind::Headers
            | CheckKind::Concurrent => None,
            CheckKind::QueryFormat
            | CheckKind::RandomId
            | CheckKind::PrintsAnswers
            | CheckKind::Mx
            | CheckKind::Cname
            | CheckKind::IgnoresWrongId
            | CheckKind::Retransmits
            | CheckKind::TcpFallback
            | CheckKind::StartsAtRoot
            | CheckKind::FollowsReferrals
            | CheckKind::UsesGlue
            | CheckKind::ResolvesGluelessNs
            | CheckKind::FollowsCname
            | CheckKind::FinalAnswer
            | CheckKind::Caches => Some(ServerKind::Dns),
            CheckKind::Announce | CheckKind::CompletedEvent => Some(ServerKind::Tracker),
            CheckKind::Handshake
            | CheckKind::InterestedBeforeRequest
            | CheckKind::RespectsChoke
            | CheckKind::RequestsBlocks
            | CheckKind::VerifiesPieces
            | CheckKind::SurvivesPeerLoss
            | CheckKind::FileExact
            | CheckKind::MultiplePeers
            | CheckKind::Pipelining
            | CheckKind::RarestFirst => Some(ServerKind::Peer),
            // These read leech probes of a student's peer.
            CheckKind::HandshakeReply
            | CheckKind::Bitfield
            | CheckKind::Unchokes
            | CheckKind::ServesPieces
            | CheckKind::HandlesCancel
            | CheckKind::Swarm
            | CheckKind::TitForTat => None,
            // These read probes of a student's proxy and the origin's log.
            CheckKind::ProxyForwards
            | CheckKind::ProxyRelays
            | CheckKind::ProxyCaches
            | CheckKind::CacheKey
            | CheckKind::BinaryAndLarge
            | CheckKind::ProxyNotFound
            | CheckKind::AbsoluteForm
            | CheckKind::ConditionalGet
            | CheckKind::ProxyPost => Some(ServerKind::Http),
            // These read a homework's answers.
            CheckKind::Numeric
            | CheckKind::Expression
            | CheckKind::Choice
            | CheckKind::Exact
            | CheckKind::Regex
            | CheckKind::Set
            | CheckKind::Manual => None,
            CheckKind::Pop3Session => Some(ServerKind::Pop3),
            // These read heartbeat probes of a student's server.
            CheckKind::ReportsLost
            | CheckKind::OneWayDelay
            | CheckKind::DetectsStop
            | CheckKind::KeepsRunning => None,
            // These read announce probes of a student's tracker.
            CheckKind::Bencoded
            | CheckKind::Interval
            | CheckKind::PeerList
            | CheckKind::Events
            | CheckKind::FailureReason
            | CheckKind::ConcurrentAnnounces
            | CheckKind::UdpTracker => None,
            // These read probe exchanges (dns-server) or the lab's DNS server (dns-client, dns-resolver).
            CheckKind::Header
            | CheckKind::Question
            | CheckKind::Answers
            | CheckKind::CompressedQuery
            | CheckKind::MultipleQuestions
            | CheckKind::Forwards
            | CheckKind::Malformed
            | CheckKind::Nxdomain => None,
        }
    }

    /// Whether the check reads probe exchanges with a student's server.
    pub fn needs_probes(self) -> bool {
        matches!(
            self,
            CheckKind::ServesFile
                | CheckKind::StatusLine
                | CheckKind::NotFound
                | CheckKind::KeepsServing
                | CheckKind::BinaryFile
                | CheckKind::Headers
                | CheckKind::Concurrent
                | CheckKind::Header
                | CheckKind::Question
                | CheckKind::Answers
                | CheckKind::CompressedQuery
                | CheckKind::MultipleQuestions
                | CheckKind::Forwards
                | CheckKind::Malformed
                | CheckKind::HandshakeReply
                | CheckKind::Bitfield
                | CheckKind::Unchokes
                | CheckKind::ServesPieces
                | CheckKind::HandlesCancel
                | CheckKind::Swarm
                | CheckKind::TitForTat
                | CheckKind::Bencoded
                | CheckKind::Interval
                | CheckKind::PeerList
                | CheckKind::Events
                | CheckKind::FailureReason
                | CheckKind::ConcurrentAnnounces
                | CheckKind::UdpTracker
                | CheckKind::ReportsLost
                | CheckKind::OneWayDelay
                | CheckKind::DetectsStop
                | CheckKind::KeepsRunning
                | CheckKind::ProxyForwards
                | CheckKind::ProxyRelays
                | CheckKind::ProxyCaches
                | CheckKind::CacheKey
                | CheckKind::BinaryAndLarge
                | CheckKind::ProxyNotFound
                | CheckKind::AbsoluteForm
                | CheckKind::ConditionalGet
                | CheckKind::ProxyPost
        )
    }
}

/// How transcripts are normalized so that repeated runs compare equal.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptSpec {
    /// Replacements applied, in order, to every datagram and output line.
    #[serde(default = "default_redactions")]
    pub redact: Vec<Redaction>,
}

impl Default for TranscriptSpec {
    fn default() -> Self {
        TranscriptSpec {
            redact: default_redactions(),
        }
    }
}

/// One normalization rule: every match of `pattern` becomes `replace`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// Its replacement, e.g. `<time>`.
    pub replace: String,
}

fn default_redactions() -> Vec<Redaction> {
    vec![
        Redaction {
            pattern: r"(?i)\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d+ \d\d:\d\d:\d\d \d{4}\b".into(),
            replace: "<date>".into(),
        },
        Redaction {
            pattern: r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?".into(),
            replace: "<date>".into(),
        },
        Redaction {
            // A clock in the program's own text (`Ping 1 02:21:03.5`).
            pattern: r"\b\d{1,2}:\d\d:\d\d(\.\d+)?\b".into(),
            replace: "<time>".into(),
        },
        Redaction {
            // Epoch seconds, milliseconds … (`Ping 1 1733150463.123`), not
            // the digits after a decimal point or inside a word.
            pattern: r"(^|[^\w.])\d{10,}(\.\d+)?\b".into(),
            replace: "${1}<time>".into(),
        },
        Redaction {
            // A port the kernel picked (`127.0.0.1:54321`, `('127.0.0.1', 54321)`).
            pattern: r#"\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(:|['"]?,\s*)(3[2-9]|[4-6]\d)\d{3}\b"#.into(),
            replace: "${1}${2}<port>".into(),
        },
        Redaction {
            // Measurements (RTTs); addresses stay whole (see `Redactor`).
            pattern: r"\d+\.\d+(e-?\d+)?".into(),
            replace: "<num>".into(),
        },
    ]
}
