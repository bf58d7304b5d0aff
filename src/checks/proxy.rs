//! The `webproxy` checks: netgrade's probes ask the student's proxy for
//! objects of netgrade's origin web server (`kind: http` with `sites`), and
//! each check reads two records of the same moment: what the client got
//! (the probe's exchange) and what the origin was asked and answered (its
//! request log), during the probe's turn (from its exchange to the next).
//!
//! One fault is charged to one check: `forwards` owns the request the
//! origin receives, `relays` what the client gets for it, `caches` the
//! repeated request, `cache-key` that each URL has its own entry,
//! `binary-and-large` the bytes of an image and a 1 MiB file, `not-found`
//! the error answers; the optional `absolute-form`, `conditional-get` and
//! `post` their own requests. The origin serves a request by its host, else
//! by whichever site has the path, so a mangled `Host` costs `forwards`
//! alone.

use std::time::Duration;

use super::{Ctx, Verdict, quote};
use crate::outcome::ExitKind;
use crate::probes::http::{self as probe_http, Parsed};
use crate::servers::http::{choose_site, post_echo};
use crate::spec::{CheckSpec, ProbeSpec, ServerKind};
use crate::trace::{EventKind, ExchangeEnd, Stream};

/// Header fields that belong to one connection (RFC 9110 §7.6.1), which a
/// proxy may drop or change; every other field of the origin's must reach
/// the client as it was.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// What a probe asked the proxy for.
#[derive(Clone, Debug, PartialEq)]
struct Wanted {
    method: String,
    host: String,
    /// The path on the origin, from its `/`, with any query.
    path: String,
    /// The request line as sent, for messages.
    line: String,
}

impl Wanted {
    /// From a probe's request line: the handout's `/host/path`, or the
    /// absolute form `http://host/path`.
    fn of(spec: &ProbeSpec) -> Option<Wanted> {
        let bytes = spec.bytes("127.0.0.1", 8888);
        let line = bytes.split(|b| *b == b'\r' || *b == b'\n').next()?;
        let line = String::from_utf8_lossy(line).into_owned();
        let mut words = line.split(' ');
        let (method, target) = (words.next()?.to_string(), words.next()?);
        let rest = match target.split_once("://") {
            Some((_, rest)) => rest,
            None => target.strip_prefix('/')?,
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        Some(Wanted {
            method,
            host: host.to_ascii_lowercase(),
            path: format!("/{path}"),
            line: spec.request_line(),
        })
    }

    fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }
}

/// One request the origin received, and its answer.
#[derive(Debug)]
struct Asked<'a> {
    raw: &'a [u8],
    /// Its status, head and body length, if the origin answered.
    answer: Option<(u16, &'a [u8], u64)>,
}

/// A probe's turn: what it asked, what the client got, what the origin saw.
struct Turn<'a> {
    spec: &'a ProbeSpec,
    wanted: Wanted,
    received: &'a [u8],
    end: &'a ExchangeEnd,
    elapsed: Duration,
    asked: Vec<Asked<'a>>,
    /// When the turn began and ended, on the run's clock.
    from: Duration,
    until: Duration,
}

impl<'a> Turn<'a> {
    /// The turn of probe `id`: its last exchange (one sent again after a
    /// restart counts), up to the next probe's.
    fn of(ctx: &Ctx<'a>, id: &str) -> Option<Turn<'a>> {
        let spec = ctx.lab.probes.iter().find(|p| p.id.value == id)?;
        let wanted = Wanted::of(spec)?;
        let events = &ctx.trace.events;
        let i = events
            .iter()
            .rposition(|e| matches!(&e.kind, EventKind::Exchange { probe, .. } if probe == id))?;
        let EventKind::Exchange {
            received,
            end,
            elapsed,
            ..
        } = &events[i].kind
        else {
            return None;
        };
        let from = events[i].at;
        let until = events[i + 1..]
            .iter()
            .find(|e| matches!(e.kind, EventKind::Exchange { .. }))
            .map_or(Duration::MAX, |e| e.at);
        let origin = origin_name(ctx);
        let mut asked: Vec<(u32, Asked)> = Vec::new();
        for e in events.iter().filter(|e| e.at >= from && e.at < until) {
            match &e.kind {
                EventKind::Request {
                    server, conn, raw, ..
                } if *server == origin => asked.push((*conn, Asked { raw, answer: None })),
                EventKind::Response {
                    server,
                    conn,
                    status,
                    head,
                    body_len,
                } if *server == origin => {
                    if let Some((_, a)) = asked
                        .iter_mut()
                        .find(|(c, a)| c == conn && a.answer.is_none())
                    {
                        a.answer = Some((*status, head, *body_len));
                    }
                }
                _ => {}
            }
        }
        Some(Turn {
            spec,
            wanted,
            received,
            end,
            elapsed: *elapsed,
            asked: asked.into_iter().map(|(_, a)| a).collect(),
            from,
            until,
        })
    }

    /// The client's response, parsed.
    fn response(&self) -> Parsed {
        probe_http::parse_response(self.received, self.spec.is_head())
    }

    /// The probe for people: `` `page` (GET /www.example.com/index.html) ``.
    fn label(&self) -> String {
        format!("`{}` ({})", self.spec.id.value, self.wanted.line)
    }

    /// Requests to the origin that would fetch the object anew (no
    /// `If-Modified-Since` or `If-None-Match`).
    fn fetches(&self) -> Vec<&Asked<'a>> {
        self.asked
            .iter()
            .filter(|a| {
                let head = request_head(a.raw);
                !has_field(&head, "if-modified-since") && !has_field(&head, "if-none-match")
            })
            .collect()
    }

    /// What the client got, in a few words: `HTTP/1.1 200 OK, 314 bytes of
    /// body`, `nothing (the connection closed)`, `nothing within 8 s`.
    fn got(&self) -> String {
        if self.received.is_empty() {
            return match self.end {
                ExchangeEnd::TimedOut => {
                    format!("nothing within {}", crate::spec::Dur(self.elapsed))
                }
                ExchangeEnd::ConnectFailed(why) => format!("no connection ({why})"),
                _ => "nothing: the proxy closed the connection".into(),
            };
        }
        let first = self
            .received
            .split(|b| *b == b'\n')
            .next()
            .unwrap_or_default();
        format!(
            "{} ({} bytes)",
            quote(first.strip_suffix(b"\r").unwrap_or(first)),
            self.received.len()
        )
    }
}

/// The name of the lab's origin server.
fn origin_name(ctx: &Ctx) -> String {
    ctx.lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Http)
        .map_or_else(|| "origin".into(), |s| s.name.clone())
}

/// A request's head fields, lower-cased names, and its request line.
struct RequestHead {
    method: String,
    target: String,
    version: u8,
    fields: Vec<(String, String)>,
    /// Whether a line ends with LF alone.
    bare_lf: bool,
}

fn request_head(raw: &[u8]) -> Result<RequestHead, String> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(len)) => {
            let head = &raw[..len];
            let bare_lf = head
                .iter()
                .enumerate()
                .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
            Ok(RequestHead {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                version: req.version.unwrap_or(1),
                fields: req
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect(),
                bare_lf,
            })
        }
        Ok(httparse::Status::Partial) => Err(
            "its head never ends: an empty line (\\r\\n\\r\\n) must end the request's header lines"
                .into(),
        ),
        Err(e) => Err(format!("it is not an HTTP request ({e})")),
    }
}

fn has_field(head: &Result<RequestHead, String>, name: &str) -> bool {
    head.as_ref()
        .is_ok_and(|h| h.fields.iter().any(|(n, _)| n == name))
}

impl RequestHead {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The target's host (absolute form) and path.
    fn target_parts(&self) -> (Option<String>, String) {
        match self.target.split_once("://") {
            Some((_, rest)) => {
                let cut = rest.find('/').unwrap_or(rest.len());
                let host = strip_port(&rest[..cut]);
                let path = if cut == rest.len() { "/" } else { &rest[cut..] };
                (Some(host), path.to_string())
            }
            None => (None, self.target.clone()),
        }
    }
}

/// `www.example.com:80` → `www.example.com`, lower-cased.
fn strip_port(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    host.to_ascii_lowercase()
}

/// The object the origin serves for `wanted` (the site its host names, else
/// the first with the path, as the origin chooses), from the lab's data.
fn object<'a>(ctx: &Ctx<'a>, wanted: &Wanted) -> Option<&'a [u8]> {
    let files = &ctx.lab.files.0;
    let mut sites: Vec<String> = files
        .iter()
        .filter_map(|(p, _)| p.split_once('/').map(|(s, _)| s.to_string()))
        .collect();
    sites.sort();
    sites.dedup();
    let path = wanted.path.split(['?', '#']).next().unwrap_or_default();
    let mut path = path.trim_start_matches('/').to_string();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let find = |site: &str| {
        let full = format!("{site}/{path}");
        files
            .iter()
            .find(|(p, _)| *p == full)
            .map(|(_, b)| b.as_slice())
    };
    let site = choose_site(&sites, Some(&wanted.host), |s| find(s).is_some())?;
    find(site)
}

/// The object the origin served for `asked` (a request that may name
/// another path or host than `wanted`'s: what the client should get is
/// what the origin sent).
fn served<'a>(ctx: &Ctx<'a>, asked: &Asked, wanted: &Wanted) -> Option<&'a [u8]> {
    let Ok(head) = request_head(asked.raw) else {
        return object(ctx, wanted);
    };
    let (target_host, path) = head.target_parts();
    let host = head
        .field("host")
        .map(strip_port)
        .or(target_host)
        .unwrap_or_default();
    let actual = Wanted {
        host,
        path,
        ..wanted.clone()
    };
    object(ctx, &actual)
}

/// The probes a check names (`probes`, then `probe`).
fn named(spec: &CheckSpec) -> Vec<&str> {
    spec.probes
        .iter()
        .flatten()
        .chain(spec.probe.iter())
        .map(String::as_str)
        .collect()
}

/// The turns of the probes a check names; `Err` with a verdict when one
/// never ran.
fn turns<'a>(spec: &CheckSpec, ctx: &Ctx<'a>) -> Result<Vec<Turn<'a>>, Verdict> {
    let mut out = Vec::new();
    for id in named(spec) {
        match Turn::of(ctx, id) {
            Some(t) => out.push(t),
            None => return Err(not_sent(ctx, id)),
        }
    }
    if out.is_empty() {
        return Err(Verdict::skip("not judged: the check names no probe"));
    }
    Ok(out)
}

/// Why probe `id` has no exchange: the proxy never listened, or ended.
fn not_sent(ctx: &Ctx, id: &str) -> Verdict {
    let never = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::NotListening { waited, exited } => Some((*waited, *exited)),
        _ => None,
    });
    match never {
        Some((waited, exited)) => Verdict::fail(format!(
            "the proxy did not listen on a TCP port within {}{}, so `{id}` could not be sent: bind (sys.argv[1], 8888) and listen before accept()",
            super::secs(waited),
            if exited { " (it had exited)" } else { "" }
        ))
        .with_evidence(stderr_tail(ctx, Duration::ZERO, Duration::MAX)),
        None => Verdict::fail(format!(
            "`{id}` was never sent: the proxy had ended and did not listen again in time"
        )),
    }
}

/// The proxy's stderr during a turn (its traceback), as evidence.
fn stderr_tail(ctx: &Ctx, from: Duration, until: Duration) -> Vec<String> {
    let lines = ctx.trace.stderr_between(from, until);
    let skip = lines.len().saturating_sub(6);
    lines[skip..]
        .iter()
        .map(|l| format!("stderr: {l}"))
        .collect()
}

/// What the proxy printed during a turn, and its end if it ended then.
fn during(ctx: &Ctx, turn: &Turn) -> Vec<String> {
    let mut out: Vec<String> = ctx
        .trace
        .events
        .iter()
        .filter(|e| e.at >= turn.from && e.at < turn.until)
        .filter_map(|e| match &e.kind {
            EventKind::Output {
                stream: Stream::Stdout,
                line,
            } => Some(format!("stdout: {line}")),
            EventKind::ServerEnded { exit, .. } if *exit != ExitKind::Stopped => {
                Some(format!("the proxy {}", exit.describe()))
            }
            _ => None,
        })
        .take(6)
        .collect();
    out.extend(stderr_tail(ctx, turn.from, turn.until));
    out
}

/// The request the origin got, on one line, for evidence.
fn shown(raw: &[u8]) -> String {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| raw.windows(4).position(|w| w == b"\r\n\r\n"))
        .map_or(raw.len(), |i| i + 1);
    quote(&raw[..end.min(300)])
}

/// `forwards`: for each probe, the origin receives a well-formed request
/// with the probe's method, for the right path, naming the right host
/// (`Host`, or the absolute-form target; HTTP/1.1 needs `Host`).
pub fn forwards(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        match forwarded(turn) {
            Ok(line) => evidence.push(line),
            Err(message) => {
                let mut more = during(ctx, turn);
                if let Some(first) = turn.asked.first() {
                    more.insert(0, format!("the origin got {}", shown(first.raw)));
                }
                return Verdict::fail(message).with_evidence(more);
            }
        }
    }
    Verdict::pass().with_evidence(evidence)
}

/// Whether the origin got the request `turn` should have made; the
/// evidence line, or the failure message.
fn forwarded(turn: &Turn) -> Result<String, String> {
    let w = &turn.wanted;
    let Some(first) = turn.asked.first() else {
        return Err(format!(
            "the origin received no request while the proxy handled {}; the client got {}",
            turn.label(),
            turn.got()
        ));
    };
    let head = request_head(first.raw).map_err(|why| {
        format!(
            "the request the proxy sent the origin for {} is not well-formed: {why}",
            turn.label()
        )
    })?;
    if head.method != w.method {
        return Err(format!(
            "the origin was asked `{} {}` for {}; the method is {}",
            head.method,
            head.target,
            turn.label(),
            w.method
        ));
    }
    let (target_host, path) = head.target_parts();
    if path != w.path {
        return Err(format!(
            "the origin was asked for `{path}` while the client asked for {}: send the path that follows the host (`{}`), not {}",
            w.url(),
            w.path,
            if path == "/" {
                "always `/`".to_string()
            } else {
                format!("`{path}`")
            }
        ));
    }
    let host = head.field("host").map(strip_port);
    match (&host, &target_host) {
        (Some(h), _) if *h != w.host => {
            return Err(format!(
                "the request for {} says `Host: {}`; the host is `{}`: send `Host: {}` exactly",
                w.url(),
                head.field("host").unwrap_or_default(),
                w.host,
                w.host
            ));
        }
        (None, Some(t)) if *t != w.host => {
            return Err(format!(
                "the request's target names host `{t}`; the client asked for `{}`",
                w.host
            ));
        }
        (None, None) => {
            return Err(format!(
                "the request for {} has no Host header: one server serves many sites and cannot tell which one is meant; send `Host: {}`",
                w.url(),
                w.host
            ));
        }
        (None, Some(_)) if head.version == 1 => {
            return Err(format!(
                "the HTTP/1.1 request for {} has no Host header, which HTTP/1.1 requires: send `Host: {}`",
                w.url(),
                w.host
            ));
        }
        _ => {}
    }
    let lf = if head.bare_lf {
        " (lines end in LF alone; CRLF is the standard, and this server accepts both)"
    } else {
        ""
    };
    Ok(format!(
        "{}: the origin got `{} {}` for {}{lf}",
        turn.spec.id.value,
        head.method,
        head.target,
        host.unwrap_or(w.host.clone())
    ))
}

/// `relays`: for each probe the origin answered, the client gets the
/// origin's status code and reason, every end-to-end header field with its
/// value, and exactly its body.
pub fn relays(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let Some((asked, (status, head, _))) = turn
            .asked
            .iter()
            .rev()
            .find_map(|a| a.answer.map(|answer| (a, answer)))
        else {
            continue;
        };
        let origin = probe_http::parse_response(head, false);
        let body = match status {
            200 => served(ctx, asked, &turn.wanted).map(<[u8]>::to_vec),
            _ => None,
        };
        if let Err(message) = relayed(turn, &origin, body.as_deref()) {
            return Verdict::fail(message).with_evidence(during(ctx, turn));
        }
        evidence.push(format!(
            "{}: {} came through",
            turn.spec.id.value,
            turn.got()
        ));
    }
    if evidence.is_empty() {
        return Verdict::skip(
            "not judged: the origin answered none of these requests (see `forwards`)",
        );
    }
    Verdict::pass().with_evidence(evidence)
}

/// Whether the client's response to `turn` is the origin's (`body`: the
/// origin's body, when known).
fn relayed(turn: &Turn, origin: &Parsed, body: Option<&[u8]>) -> Result<(), String> {
    let got = turn.response();
    let label = turn.label();
    let Some(line) = &got.status_line else {
        return Err(format!(
            "the client's answer to {label} does not start with a status line: it starts {}",
            turn.got()
        ));
    };
    let want = origin.status_line.as_ref();
    if let Some(second) = second_status_line(turn.received, line.offset) {
        return Err(format!(
            "the client's answer to {label} has a second status line, {}, after `{} {} {}`: send the origin's response as it came, without a status line of your own",
            quote(second),
            line.version,
            line.code,
            line.reason
        ));
    }
    if let Some(w) = want
        && (w.code != line.code || w.reason != line.reason)
    {
        return Err(format!(
            "the origin answered {label} `{} {}`, the client got `{} {}`: relay the origin's status line",
            w.code, w.reason, line.code, line.reason
        ));
    }
    for (name, value) in &origin.headers {
        let lower = name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str()) {
            continue;
        }
        if lower == "content-length" && got.header("transfer-encoding").is_some() {
            continue;
        }
        if got.header(name) != Some(value.as_slice()) {
            return Err(format!(
                "the origin's `{name}: {}` did not reach the client with its answer to {label}: relay every header line of the origin's response",
                String::from_utf8_lossy(value)
            ));
        }
    }
    if let Some(body) = body
        && got.body != body
    {
        return Err(format!(
            "the body the client got for {label} is not the origin's: {}",
            difference(&got.body, body)
        ));
    }
    Ok(())
}

/// A status line where a header line or the body should be (`HTTP/1.1 200 OK`).
fn second_status_line(bytes: &[u8], first: usize) -> Option<&[u8]> {
    let rest = bytes.get(first + 5..)?;
    let at = rest
        .windows(7)
        .position(|w| w.starts_with(b"\nHTTP/1") || w == b"\nHTTP/2")?;
    let line = &rest[at + 1..];
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// How `got` differs from `want`, for people.
fn difference(got: &[u8], want: &[u8]) -> String {
    let same = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    if got.is_empty() {
        return format!(
            "none of its {} bytes arrived, only the head: read the origin's reply until recv returns b\"\" (one recv returns what has arrived so far)",
            want.len()
        );
    }
    if same == got.len() && got.len() < want.len() {
        return format!(
            "only the first {} of its {} bytes arrived: read the origin's reply until recv returns b\"\" (one recv returns what has arrived so far)",
            got.len(),
            want.len()
        );
    }
    format!(
        "{} bytes where the object has {}, the first difference at byte {same}: {}",
        got.len(),
        want.len(),
        probe_http::evidence(got, same)
    )
}

/// `caches`: the repeated request is answered without the origin fetching
/// the object again (a revalidation answered 304 is a hit), with a whole
/// response: status line first, then the object.
pub fn caches(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        if let Err(message) = hit(ctx, turn) {
            let mut more = during(ctx, turn);
            more.extend(cache_files(ctx));
            return Verdict::fail(message).with_evidence(more);
        }
        evidence.push(hit_line(turn));
    }
    Verdict::pass().with_evidence(evidence)
}

/// Whether `turn` was a cache hit that served the right object.
fn hit(ctx: &Ctx, turn: &Turn) -> Result<(), String> {
    let label = turn.label();
    if let Some(again) = turn.fetches().first() {
        return Err(format!(
            "{label} was asked for before, but the origin was asked for it again ({}): the proxy did not answer from its cache; look the object up under the very name it was written to",
            shown(again.raw)
        ));
    }
    let got = turn.response();
    if turn.received.is_empty() {
        return Err(format!("the repeated {label} got {}", turn.got()));
    }
    match &got.status_line {
        Some(line) if line.offset == 0 && line.code == 200 => {}
        Some(line) if line.offset == 0 => {
            return Err(format!(
                "the cached answer to {label} is `{} {}`, not 200",
                line.code, line.reason
            ));
        }
        _ => {
            return Err(format!(
                "the cached answer to {label} does not start with a status line: it starts {}; send the cached response as it came: status line, headers, blank line, body",
                quote(&turn.received[..turn.received.len().min(40)])
            ));
        }
    }
    if let Some(want) = object(ctx, &turn.wanted)
        && got.body != want
    {
        return Err(format!(
            "the cached answer to {label} is not the object: {}",
            difference(&got.body, want)
        ));
    }
    Ok(())
}

/// `page-again: from the cache (the origin was not asked)`.
fn hit_line(turn: &Turn) -> String {
    let how = if turn.asked.is_empty() {
        "the origin was not asked".to_string()
    } else {
        "revalidated: the origin answered 304".to_string()
    };
    format!("{}: from the cache ({how})", turn.spec.id.value)
}

/// The files the proxy wrote, as evidence of its cache's names.
fn cache_files(ctx: &Ctx) -> Vec<String> {
    let files: Vec<&str> = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileWritten { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    if files.is_empty() {
        return vec!["the proxy wrote no file in its folder".into()];
    }
    let shown: Vec<String> = files.iter().take(12).map(|f| format!("`{f}`")).collect();
    vec![format!(
        "files the proxy wrote ({}): {}",
        files.len(),
        shown.join(", ")
    )]
}

/// `cache-key`: each repeated URL (same file name in another folder,
/// another host) is a hit that gives its own object, not another URL's.
pub fn cache_key(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let others: Vec<(String, &[u8])> = ctx
        .lab
        .probes
        .iter()
        .filter_map(Wanted::of)
        .filter_map(|w| object(ctx, &w).map(|o| (w.url(), o)))
        .collect();
    let mut evidence = Vec::new();
    for turn in &turns {
        let got = turn.response();
        let own = object(ctx, &turn.wanted);
        if own.is_some_and(|o| o != got.body)
            && let Some((url, _)) = others
                .iter()
                .find(|(url, o)| *url != turn.wanted.url() && *o == got.body)
        {
            return Verdict::fail(format!(
                "{} got the object of {url}: the two share a cache entry; name the cache file after the whole URL (host and path), not the file name alone",
                turn.label()
            ))
            .with_evidence(cache_files(ctx));
        }
        if let Err(message) = hit(ctx, turn) {
            let mut more = during(ctx, turn);
            more.extend(cache_files(ctx));
            return Verdict::fail(message).with_evidence(more);
        }
        evidence.push(hit_line(turn));
    }
    Verdict::pass().with_evidence(evidence)
}

/// `binary-and-large`: each object comes through with status 200 and
/// exactly its bytes.
pub fn binary_and_large(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let Some(want) = object(ctx, &turn.wanted) else {
            continue;
        };
        let got = turn.response();
        let ok = got.status_line.as_ref().is_some_and(|l| l.code == 200) && got.body == want;
        if !ok {
            let what = match &got.status_line {
                None => format!("the client got {}", turn.got()),
                Some(l) if l.code != 200 => format!("the client got `{} {}`", l.code, l.reason),
                Some(_) => difference(&got.body, want),
            };
            return Verdict::fail(format!("{}: {what}", turn.label()))
                .with_evidence(during(ctx, turn));
        }
        evidence.push(format!(
            "{}: {} bytes, byte for byte",
            turn.spec.id.value,
            want.len()
        ));
    }
    Verdict::pass().with_evidence(evidence)
}

/// `not-found`: an object the origin does not have reaches the client as
/// the origin's 404; a host that does not exist gets an error response
/// (4xx or 5xx), never silence.
pub fn not_found(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let got = turn.response();
        let code = got.status_line.as_ref().map(|l| l.code);
        let origin = turn
            .asked
            .iter()
            .rev()
            .find_map(|a| a.answer.map(|(s, _, _)| s));
        let message = match (origin, code) {
            (Some(404), Some(404)) => None,
            (Some(404), _) => Some(format!(
                "the origin answered {} `404 Not Found`, and the client got {}: relay the origin's 404 as it is",
                turn.label(),
                turn.got()
            )),
            (_, Some(400..=599)) => None,
            (Some(s), _) => Some(format!(
                "the origin answered {} with {s}; the client got {}",
                turn.label(),
                turn.got()
            )),
            (None, _) => Some(format!(
                "the host of {} does not exist, and the client got {}: catch the error of the connect (socket.gaierror) and answer `HTTP/1.1 502 Bad Gateway` or 404 with a short page",
                turn.label(),
                turn.got()
            )),
        };
        if let Some(message) = message {
            return Verdict::fail(message).with_evidence(during(ctx, turn));
        }
        evidence.push(format!("{}: {}", turn.spec.id.value, turn.got()));
    }
    Verdict::pass().with_evidence(evidence)
}

/// `absolute-form`: the browser's request `GET http://host/path` is
/// forwarded as `forwards` asks and the object comes back with 200.
pub fn absolute_form(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let line = match forwarded(turn) {
            Ok(line) => line,
            Err(message) => return Verdict::fail(message).with_evidence(during(ctx, turn)),
        };
        let got = turn.response();
        let want = object(ctx, &turn.wanted);
        let ok = got.status_line.as_ref().is_some_and(|l| l.code == 200)
            && want.is_none_or(|w| got.body == w);
        if !ok {
            return Verdict::fail(format!(
                "the object of {} did not come back: the client got {}",
                turn.label(),
                turn.got()
            ))
            .with_evidence(during(ctx, turn));
        }
        evidence.push(line);
    }
    Verdict::pass().with_evidence(evidence)
}

/// `conditional-get`: on the repeated request the proxy asks the origin
/// with `If-Modified-Since` (the `Last-Modified` the origin sent), the
/// origin answers 304, and the client gets the whole object from the cache.
pub fn conditional_get(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let asked = turn.asked.iter().find_map(|a| {
            let head = request_head(a.raw).ok()?;
            let since = head.field("if-modified-since")?.to_string();
            Some((since, a.answer.map(|(s, _, _)| s)))
        });
        let Some((since, answer)) = asked else {
            return Verdict::fail(format!(
                "{} was served from the cache without asking the origin whether it changed: send the request with `If-Modified-Since: <the Last-Modified of the cached response>`",
                turn.label()
            ));
        };
        if answer != Some(304) {
            return Verdict::fail(format!(
                "the proxy revalidated {} with `If-Modified-Since: {since}`, and the origin answered {}: send the Last-Modified date of the cached response, as it came",
                turn.label(),
                answer.map_or("nothing".into(), |s| s.to_string())
            ));
        }
        if let Err(message) = hit(ctx, turn) {
            return Verdict::fail(message).with_evidence(during(ctx, turn));
        }
        evidence.push(format!(
            "{}: `If-Modified-Since: {since}`, 304, the cached object sent",
            turn.spec.id.value
        ));
    }
    Verdict::pass().with_evidence(evidence)
}

/// `post`: the origin receives the POST with its body, and the client gets
/// the origin's answer (the echo of the body).
pub fn post(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let turns = match turns(spec, ctx) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let mut evidence = Vec::new();
    for turn in &turns {
        let sent = turn.spec.bytes("127.0.0.1", 8888);
        let body = split_body(&sent);
        let reached = turn.asked.iter().find(|a| {
            request_head(a.raw).is_ok_and(|h| h.method == "POST") && split_body(a.raw) == body
        });
        if reached.is_none() {
            let what = match turn.asked.first() {
                Some(a) => format!("the origin got {}", shown(a.raw)),
                None => "the origin got no request".into(),
            };
            return Verdict::fail(format!(
                "{}: {what}; forward the POST line, its headers and its {}-byte body (Content-Length bytes after the blank line)",
                turn.label(),
                body.len()
            ))
            .with_evidence(during(ctx, turn));
        }
        let path = turn.wanted.path.trim_start_matches('/');
        let echo = post_echo(path, body);
        let got = turn.response();
        if got.status_line.as_ref().map(|l| l.code) != Some(200) || got.body != echo {
            return Verdict::fail(format!(
                "the origin answered {} with 200 and the echo of its body, but the client got {}",
                turn.label(),
                turn.got()
            ))
            .with_evidence(during(ctx, turn));
        }
        evidence.push(format!(
            "{}: the origin got the {}-byte body, the client its answer",
            turn.spec.id.value,
            body.len()
        ));
    }
    Verdict::pass().with_evidence(evidence)
}

/// What follows a request's blank line.
fn split_body(raw: &[u8]) -> &[u8] {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &raw[i + 4..])
        .or_else(|| {
            raw.windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| &raw[i + 2..])
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(yaml: &str) -> ProbeSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn both_request_forms_name_a_host_and_a_path() {
        let w = Wanted::of(&probe("{ id: p, target: /www.example.com/a/notes.txt }")).unwrap();
        assert_eq!(
            (w.host.as_str(), w.path.as_str()),
            ("www.example.com", "/a/notes.txt")
        );
        let w = Wanted::of(&probe(
            "{ id: p, target: 'http://WWW.example.com/news.html', headers: ['Host: www.example.com'] }",
        ))
        .unwrap();
        assert_eq!(
            (w.host.as_str(), w.path.as_str()),
            ("www.example.com", "/news.html")
        );
        let w = Wanted::of(&probe("{ id: p, target: /gaia.cs.umass.edu }")).unwrap();
        assert_eq!(w.path, "/");
    }

    #[test]
    fn requests_to_the_origin_are_read_as_sent() {
        let h = request_head(b"GET http://www.example.com/x HTTP/1.0\n\n").unwrap();
        assert!(h.bare_lf);
        assert_eq!(
            h.target_parts(),
            (Some("www.example.com".into()), "/x".into())
        );
        let h = request_head(b"GET / HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n").unwrap();
        assert_eq!(
            h.field("host").map(strip_port).as_deref(),
            Some("www.example.com")
        );
        assert!(request_head(b"GET / HTTP/1.1\r\nHost: x\r\n").is_err());
    }

    #[test]
    fn a_second_status_line_is_found_where_a_header_should_be() {
        let twice = b"HTTP/1.0 200 OK\r\nContent-Type:text/html\r\n\r\nHTTP/1.1 200 OK\r\nServer: netgrade\r\n\r\nhi";
        assert_eq!(second_status_line(twice, 0), Some(&b"HTTP/1.1 200 OK"[..]));
        assert_eq!(second_status_line(b"HTTP/1.1 200 OK\r\n\r\nhi", 0), None);
    }

    #[test]
    fn differences_say_where_and_how_much() {
        assert!(difference(b"abc", b"abcdef").starts_with("only the first 3 of its 6 bytes"));
        assert!(difference(b"abX", b"abc").contains("the first difference at byte 2"));
    }
}
