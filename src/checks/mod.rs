//! Check kinds: each reads the [`Trace`] of a run and returns a [`Verdict`].
//!
//! Checks never talk to sockets or processes. [`evaluate`] runs every check a
//! lab lists and turns verdicts into scored [`CheckOutcome`]s. A check either
//! passes (full points) or not (none): scores stay easy to explain.

mod answers;
mod bt;
mod capture;
mod dns;
mod heartbeat;
mod http_client;
pub mod output;
pub mod params;
mod pinger;
mod pop3;
mod process;
mod proxy;
mod session;
mod smtp;
mod web;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use crate::outcome::{CheckOutcome, ExitKind, Fraction, Status};
use crate::spec::{CheckKind, CheckSpec, Lab, ServerKind};
use crate::trace::Trace;

/// What a check concluded.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// pass / fail / error / skip.
    pub status: Status,
    /// One line: what was expected and what was seen.
    pub message: Option<String>,
    /// Supporting lines from the trace.
    pub evidence: Vec<String>,
    /// For a check that judges several items: how many were right, which
    /// earns that share of the points when the lab says `partial: true`.
    pub share: Option<Fraction>,
}

impl Verdict {
    /// A pass, with an optional remark.
    pub fn pass() -> Self {
        Verdict {
            status: Status::Pass,
            message: None,
            evidence: Vec::new(),
            share: None,
        }
    }

    /// A failure with its explanation.
    pub fn fail(message: impl Into<String>) -> Self {
        Verdict {
            status: Status::Fail,
            message: Some(message.into()),
            evidence: Vec::new(),
            share: None,
        }
    }

    /// Not evaluated, and why.
    pub fn skip(message: impl Into<String>) -> Self {
        Verdict {
            status: Status::Skip,
            message: Some(message.into()),
            evidence: Vec::new(),
            share: None,
        }
    }

    /// Records that `right` of `of` judged items were right.
    pub fn with_share(mut self, right: usize, of: usize) -> Self {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        self.share = Some(Fraction {
            right: n(right),
            of: n(of),
        });
        self
    }

    /// Adds evidence lines.
    pub fn with_evidence(mut self, evidence: Vec<String>) -> Self {
        self.evidence = evidence;
        self
    }
}

/// What a check may read besides its own parameters.
pub struct Ctx<'a> {
    /// The run's trace.
    pub trace: &'a Trace,
    /// The lab.
    pub lab: &'a Lab,
}

impl Ctx<'_> {
    /// Name and address text of the lab's udp-pinger server.
    pub fn pinger(&self) -> Option<(&str, String)> {
        self.lab
            .servers
            .iter()
            .find(|s| s.kind.value == ServerKind::UdpPinger)
            .map(|s| (s.name.as_str(), format!("{}:{}", s.host, s.port)))
    }
}

/// Evaluates one check.
pub fn check(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let Some(kind) = spec.kind() else {
        // Validation rejects this; keep the run alive anyway.
        return Verdict {
            status: Status::Error,
            message: Some("unknown check kind".into()),
            evidence: vec![],
            share: None,
        };
    };
    if kind != CheckKind::Runs
        && let Some((_, ExitKind::DidNotStart { .. })) = ctx.trace.exit()
    {
        return Verdict::skip("not checked: the program did not start (see `runs`)");
    }
    match kind {
        CheckKind::Runs => process::runs(spec, ctx),
        CheckKind::Announce => bt::download::announce(spec, ctx),
        CheckKind::Handshake => bt::download::handshake(spec, ctx),
        CheckKind::InterestedBeforeRequest => bt::download::interested_before_request(spec, ctx),
        CheckKind::RespectsChoke => bt::download::respects_choke(spec, ctx),
        CheckKind::RequestsBlocks => bt::download::requests_blocks(spec, ctx),
        CheckKind::VerifiesPieces => bt::download::verifies_pieces(spec, ctx),
        CheckKind::SurvivesPeerLoss => bt::download::survives_peer_loss(spec, ctx),
        CheckKind::FileExact => bt::download::file_exact(spec, ctx),
        CheckKind::MultiplePeers => bt::download::multiple_peers(spec, ctx),
        CheckKind::Pipelining => bt::download::pipelining(spec, ctx),
        CheckKind::RarestFirst => bt::download::rarest_first(spec, ctx),
        CheckKind::CompletedEvent => bt::download::completed_event(spec, ctx),
        CheckKind::HandshakeReply => bt::seed::handshake_reply(spec, ctx),
        CheckKind::Bitfield => bt::seed::bitfield(spec, ctx),
        CheckKind::Unchokes => bt::seed::unchokes(spec, ctx),
        CheckKind::ServesPieces => bt::seed::serves_pieces(spec, ctx),
        CheckKind::HandlesCancel => bt::seed::handles_cancel(spec, ctx),
        CheckKind::Swarm => bt::seed::swarm(spec, ctx),
        CheckKind::TitForTat => bt::seed::tit_for_tat(spec, ctx),
        CheckKind::SendsHeartbeats => heartbeat::sends_heartbeats(spec, ctx),
        CheckKind::NoHangOnLoss => heartbeat::no_hang_on_loss(spec, ctx),
        CheckKind::ReportsLost => heartbeat::reports_lost(spec, ctx),
        CheckKind::OneWayDelay => heartbeat::one_way_delay(spec, ctx),
        CheckKind::DetectsStop => heartbeat::detects_stop(spec, ctx),
        CheckKind::KeepsRunning => heartbeat::keeps_running(spec, ctx),
        CheckKind::ProxyForwards => proxy::forwards(spec, ctx),
        CheckKind::ProxyRelays => proxy::relays(spec, ctx),
        CheckKind::ProxyCaches => proxy::caches(spec, ctx),
        CheckKind::CacheKey => proxy::cache_key(spec, ctx),
        CheckKind::BinaryAndLarge => proxy::binary_and_large(spec, ctx),
        CheckKind::ProxyNotFound => proxy::not_found(spec, ctx),
        CheckKind::AbsoluteForm => proxy::absolute_form(spec, ctx),
        CheckKind::ConditionalGet => proxy::conditional_get(spec, ctx),
        CheckKind::ProxyPost => proxy::post(spec, ctx),
        CheckKind::Numeric | CheckKind::Expression => answers::numeric(spec, ctx),
        CheckKind::Choice => answers::choice(spec, ctx),
        CheckKind::Exact => answers::exact(spec, ctx),
        CheckKind::Regex => answers::regex(spec, ctx),
        CheckKind::Set => answers::set(spec, ctx),
        CheckKind::Manual => answers::manual(spec, ctx),
        CheckKind::Pop3Session => answers::pop3_session(spec, ctx),
        CheckKind::Bencoded
        | CheckKind::Interval
        | CheckKind::PeerList
        | CheckKind::Events
        | CheckKind::FailureReason
        | CheckKind::ConcurrentAnnounces
        | CheckKind::UdpTracker => bt::tracker::scenario(spec, ctx),
        CheckKind::PingCount => pinger::ping_count(spec, ctx),
        CheckKind::PingFormat => pinger::ping_format(spec, ctx),
        CheckKind::WaitsForTimeout => pinger::waits_for_timeout(spec, ctx),
        CheckKind::ReportsTimeouts => pinger::reports_timeouts(spec, ctx),
        CheckKind::PrintsReplies => pinger::prints_replies(spec, ctx),
        CheckKind::ReportsRtt => pinger::reports_rtt(spec, ctx),
        CheckKind::ReportsStats => pinger::reports_stats(spec, ctx),
        CheckKind::ServesFile | CheckKind::BinaryFile => web::serves_file(spec, ctx),
        CheckKind::StatusLine => web::status_line(spec, ctx),
        CheckKind::NotFound => web::not_found(spec, ctx),
        CheckKind::KeepsServing => web::keeps_serving(spec, ctx),
        CheckKind::Headers => web::headers(spec, ctx),
        CheckKind::Concurrent => web::concurrent(spec, ctx),
        CheckKind::RequestLine => http_client::request_line(spec, ctx),
        CheckKind::HostHeader => http_client::host_header(spec, ctx),
        CheckKind::Crlf if has(ctx, ServerKind::Smtp) => smtp::crlf_smtp(ctx),
        CheckKind::Crlf => http_client::crlf(spec, ctx),
        CheckKind::PrintsResponse => http_client::prints_response(spec, ctx),
        CheckKind::WaitsForGreeting => smtp::waits_for_greeting(spec, ctx),
        CheckKind::Helo => smtp::helo(spec, ctx),
        CheckKind::MailFrom => smtp::mail_from(spec, ctx),
        CheckKind::RcptTo => smtp::rcpt_to(spec, ctx),
        CheckKind::Data => smtp::data(spec, ctx),
        CheckKind::EndOfData => smtp::end_of_data(spec, ctx),
        CheckKind::Quit if has(ctx, ServerKind::Pop3) => pop3::quit_pop3(ctx),
        CheckKind::Quit => smtp::quit_smtp(ctx),
        CheckKind::WaitsForReplies => smtp::waits_for_replies(spec, ctx),
        CheckKind::Delivered => smtp::delivered(spec, ctx),
        CheckKind::HandlesRejection => smtp::handles_rejection(spec, ctx),
        CheckKind::Login => pop3::login(spec, ctx),
        CheckKind::Lists => pop3::lists(spec, ctx),
        CheckKind::RetrievesAll => pop3::retrieves_all(spec, ctx),
        CheckKind::SavesExact => pop3::saves_exact(spec, ctx),
        CheckKind::Deletes => pop3::deletes(spec, ctx),
        CheckKind::Keeps => pop3::keeps(spec, ctx),
        CheckKind::Transcript => golden(ctx),
        CheckKind::UsesArguments => capture::uses_arguments(ctx),
        CheckKind::QueryFormat => dns::client::query_format(spec, ctx),
        CheckKind::RandomId => dns::client::random_id(spec, ctx),
        CheckKind::PrintsAnswers => dns::client::prints_answers(spec, ctx),
        CheckKind::Mx => dns::client::mx(spec, ctx),
        CheckKind::Cname => dns::client::cname(spec, ctx),
        CheckKind::IgnoresWrongId => dns::client::ignores_wrong_id(spec, ctx),
        CheckKind::Retransmits => dns::client::retransmits(spec, ctx),
        CheckKind::TcpFallback => dns::client::tcp_fallback(spec, ctx),
        CheckKind::Nxdomain if !ctx.lab.probes.is_empty() => dns::server::nxdomain(spec, ctx),
        CheckKind::Nxdomain if dns::is_hierarchy(ctx) => dns::resolver::nxdomain(spec, ctx),
        CheckKind::Nxdomain => dns::client::nxdomain(spec, ctx),
        CheckKind::Header => dns::server::header(spec, ctx),
        CheckKind::Question => dns::server::question(spec, ctx),
        CheckKind::Answers => dns::server::answers(spec, ctx),
        CheckKind::CompressedQuery => dns::server::compressed_query(spec, ctx),
        CheckKind::MultipleQuestions => dns::server::multiple_questions(spec, ctx),
        CheckKind::Forwards => dns::server::forwards(spec, ctx),
        CheckKind::Malformed => dns::server::malformed(spec, ctx),
        CheckKind::StartsAtRoot => dns::resolver::starts_at_root(spec, ctx),
        CheckKind::FollowsReferrals => dns::resolver::follows_referrals(spec, ctx),
        CheckKind::UsesGlue => dns::resolver::uses_glue(spec, ctx),
        CheckKind::ResolvesGluelessNs => dns::resolver::resolves_glueless_ns(spec, ctx),
        CheckKind::FollowsCname => dns::resolver::follows_cname(spec, ctx),
        CheckKind::FinalAnswer => dns::resolver::final_answer(spec, ctx),
        CheckKind::Caches => dns::resolver::caches(spec, ctx),
    }
}

/// Whether the lab has a server of `kind`.
fn has(ctx: &Ctx, kind: ServerKind) -> bool {
    ctx.lab.servers.iter().any(|s| s.kind.value == kind)
}

/// Lines of diff shown as evidence.
const MAX_DIFF_LINES: usize = 40;

/// transcript: the run's session equals the lab's golden transcript.
fn golden(ctx: &Ctx) -> Verdict {
    if has(ctx, ServerKind::Smtp)
        && let Some(why) = smtp::transaction_broke(ctx)
    {
        return Verdict::skip(format!(
            "not compared: {why}; step by step, the rest of the session would only repeat that"
        ));
    }
    let Some(expected) = ctx.lab.golden.as_deref().and_then(|g| ctx.lab.files.get(g)) else {
        return Verdict {
            status: Status::Error,
            message: Some("the lab has no golden transcript".into()),
            evidence: vec![],
            share: None,
        };
    };
    let expected = String::from_utf8_lossy(expected);
    let actual = crate::run::transcript::session(ctx.lab, ctx.trace);
    if actual == expected {
        return Verdict::pass();
    }
    let diff = similar::TextDiff::from_lines(expected.as_ref(), actual.as_str());
    let changed = diff
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .count();
    let first = diff
        .iter_all_changes()
        .find(|c| c.tag() != similar::ChangeTag::Equal && !c.value().trim().is_empty())
        .map(|c| format!("{}{}", c.tag(), c.value().trim_end()))
        .unwrap_or_default();
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header("golden (reference solution)", "this run")
        .to_string();
    let evidence: Vec<String> = text
        .lines()
        .take(MAX_DIFF_LINES)
        .map(str::to_string)
        .collect();
    Verdict::fail(format!(
        "the session differs from the reference solution's in {changed} line(s); the first: `{first}` (- reference, + this run)"
    ))
    .with_evidence(evidence)
}

/// Evaluates every check of `lab` over `trace`.
pub fn evaluate(lab: &Lab, trace: &Trace) -> Vec<CheckOutcome> {
    let ctx = Ctx { trace, lab };
    let mut outcomes: Vec<CheckOutcome> = lab
        .checks
        .iter()
        .map(|spec| {
            let mut v = check(spec, &ctx);
            // A failure over a cut recording says so: its evidence may be missing.
            if v.status == Status::Fail
                && let Some(note) = trace.cut_note()
            {
                v.message = Some(format!("{} ({note})", v.message.unwrap_or_default()));
            }
            outcome(spec, lab, v)
        })
        .collect();
    // A lab of cases applies `requires` to the merged outcomes.
    if lab.cases.is_empty() {
        apply_requires(lab, &mut outcomes);
    }
    outcomes
}

/// Marks "not judged" each check whose `requires` names a check that did
/// not pass (in report order, so a chain of requirements follows through).
pub fn apply_requires(lab: &Lab, outcomes: &mut [CheckOutcome]) {
    for spec in &lab.checks {
        let Some(at) = outcomes.iter().position(|o| o.id == spec.id.value) else {
            continue;
        };
        if outcomes[at].status == Status::Pass {
            continue;
        }
        let unmet = spec.requires.iter().find(|r| {
            outcomes
                .iter()
                .any(|o| &o.id == *r && o.status != Status::Pass)
        });
        if let Some(r) = unmet {
            let o = &mut outcomes[at];
            o.status = Status::Skip;
            o.points = 0.0;
            o.message = Some(format!(
                "not judged: it builds on `{r}`, which did not pass (see `{r}`)"
            ));
            o.evidence.clear();
        }
    }
}

/// The scored outcome of `spec`'s verdict `v`.
fn outcome(spec: &CheckSpec, lab: &Lab, v: Verdict) -> CheckOutcome {
    let passed = v.status == Status::Pass;
    // Partial credit: a failed check of `partial: true` earns the share
    // of its items that were right (rounded to hundredths of a point).
    let fraction = v
        .share
        .filter(|f| spec.partial && v.status == Status::Fail && f.of > 0 && f.right < f.of);
    let points = match fraction {
        _ if passed => spec.points,
        Some(f) => (spec.points * f64::from(f.right) / f64::from(f.of) * 100.0).floor() / 100.0,
        None => 0.0,
    };
    CheckOutcome {
        id: spec.id.value.clone(),
        title: params::expand(&spec.title, spec, lab),
        status: v.status,
        points,
        max_points: spec.points,
        message: v.message,
        evidence: v.evidence,
        hint: if passed {
            None
        } else {
            spec.hint
                .as_ref()
                .map(|h| params::expand(h.trim(), spec, lab))
        },
        case: spec.case.as_ref().map(|c| c.value.clone()),
        visibility: spec.visibility,
        fraction,
        line: None,
    }
}

/// What a lab of several cases keeps of each case's run for the checks
/// that compare the cases with each other (the IDs of `random-id`): a few
/// facts, not the run's trace.
#[derive(Clone, Debug, Default)]
pub struct CaseEvidence {
    /// The DNS lookups of the run, with the ID of each.
    lookups: Vec<dns::client::Lookup>,
}

impl CaseEvidence {
    /// What `lab`'s checks across cases need of the run recorded in `trace`.
    pub fn of(lab: &Lab, trace: &Trace) -> Self {
        let wanted = lab
            .checks
            .iter()
            .any(|c| c.kind() == Some(CheckKind::RandomId));
        CaseEvidence {
            lookups: if wanted {
                dns::client::lookups(lab, trace)
            } else {
                Vec::new()
            },
        }
    }
}

/// The outcome of `spec`, a check of every case, judged over all the cases'
/// runs at once, for the kinds that compare cases (`random-id`: one fixed
/// ID shows only across runs); `None` for the others, which judge each case
/// on its own.
pub fn across_cases(
    spec: &CheckSpec,
    lab: &Lab,
    cases: &[(&str, &CaseEvidence)],
) -> Option<CheckOutcome> {
    if spec.case.is_some() || cases.is_empty() {
        return None;
    }
    let v = match spec.kind()? {
        CheckKind::RandomId => dns::client::judge_ids(
            &cases
                .iter()
                .map(|(id, e)| (id.to_string(), e.lookups.clone()))
                .collect::<Vec<_>>(),
        ),
        _ => return None,
    };
    Some(outcome(spec, lab, v))
}

/// Shows bytes as a quoted string, escaping what is not printable.
pub fn quote(bytes: &[u8]) -> String {
    let s = quote_all(bytes);
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        return format!("{cut}…\"");
    }
    s
}

/// Like [`quote`], however long: every byte, escaped only as needed to be
/// one line of text.
pub fn quote_all(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                c if c.is_control() => s.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

/// The last `n` of `lines`, each prefixed with `label: ` (evidence lines).
pub fn last_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    n: usize,
    label: &str,
) -> Vec<String> {
    let lines: Vec<&str> = lines.into_iter().collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..]
        .iter()
        .map(|l| format!("{label}: {l}"))
        .collect()
}

/// The last `n` lines the program printed on `stream`, as evidence.
fn tail(ctx: &Ctx, stream: crate::trace::Stream, n: usize) -> Vec<String> {
    last_lines(ctx.trace.lines(stream), n, stream.name())
}

/// Seconds with millisecond precision: `1.002 s`.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Milliseconds: `87 ms`.
pub fn millis(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Regexes compiled once per process: the labs' patterns are few, and
/// compiling one (`(?i)`, Unicode classes) costs more than a whole check.
static COMPILED: LazyLock<Mutex<HashMap<String, regex::Regex>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `pattern`, compiled (once per process); `None` when it is not a regex.
pub fn compiled(pattern: &str) -> Option<regex::Regex> {
    let mut cache = COMPILED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = cache.get(pattern) {
        return Some(re.clone());
    }
    let re = regex::Regex::new(pattern).ok()?;
    // Labs are few; a bound keeps a long-running process honest all the same.
    if cache.len() < 1024 {
        cache.insert(pattern.to_string(), re.clone());
    }
    Some(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_hostile_bytes() {
        assert_eq!(quote(b"Ping 1 x"), "\"Ping 1 x\"");
        assert_eq!(quote(b"a\r\n\x1b[31m\xff"), "\"a\\r\\n\\u{1b}[31m\\xff\"");
        assert!(quote(&[b'a'; 500]).ends_with("…\""));
    }
}
