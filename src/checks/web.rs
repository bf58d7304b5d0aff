//! Checks over netgrade's probe exchanges with a student's web server.
//!
//! One fault is charged once. When a request ends the student's server,
//! netgrade restarts it for the next request (see `run::probing`), and the
//! trace says after which request each instance ended. Who pays for an end:
//!
//! - the request got no answer, or one cut short: the check that owns that
//!   request (its `probe`), with the traceback — a crash on `/image.png`
//!   costs `binary-file`, one on `/missing.html` costs `not-found`;
//! - the request was answered and the server ended anyway: `keeps-serving`
//!   (no `while True:`, a closed listening socket), unless it ended only
//!   after the 404, which `not-found` (with follow-up requests) owns.
//!
//! Every other check judges its own request, answered by whichever instance
//! was running.

use super::{Ctx, Verdict, quote, secs, tail};
use crate::outcome::{ExitKind, Status};
use crate::probes::http::{self, DeviationKind, Framing, Parsed, parse_response};
use crate::spec::{CheckKind, CheckSpec};
use crate::trace::{EventKind, ExchangeEnd, Stream};

/// Most offending items listed as evidence.
const MAX_EVIDENCE: usize = 8;
/// Lines of a traceback shown as evidence.
const TRACEBACK_LINES: usize = 8;

/// One probe's exchange, parsed.
struct Ex<'a> {
    /// Probe id.
    probe: &'a str,
    /// The request, for messages: `GET /HelloWorld.html` (from the spec, even
    /// when nothing was sent).
    request: String,
    received: &'a [u8],
    end: &'a ExchangeEnd,
    elapsed: std::time::Duration,
    parsed: Parsed,
}

impl Ex<'_> {
    /// The request, for messages: `GET /HelloWorld.html`.
    fn request(&self) -> String {
        self.request.clone()
    }

    /// What the server did when there is no usable response.
    fn silence(&self, ctx: &Ctx) -> String {
        let ended = ends(ctx)
            .into_iter()
            .find(|e| e.probe == Some(self.probe))
            .map(|e| format!(": the server {} on this request", e.exit.describe()))
            .unwrap_or_default();
        match self.end {
            ExchangeEnd::ConnectFailed(why) => format!("netgrade could not connect ({why}){ended}"),
            ExchangeEnd::Reset => {
                format!("the server reset the connection without answering{ended}")
            }
            ExchangeEnd::TimedOut => format!(
                "the server sent nothing in {} and kept the connection open; reply to each request, then close the connection",
                secs(self.elapsed)
            ),
            ExchangeEnd::Closed | ExchangeEnd::Complete => {
                format!("the server closed the connection without sending anything{ended}")
            }
        }
    }
}

/// An instance of the student's server that ended during probing.
#[derive(Clone)]
struct End<'a> {
    /// The last probe whose request reached it.
    probe: Option<&'a str>,
    /// How it ended.
    exit: &'a ExitKind,
    /// Its stderr since that request.
    stderr: Vec<&'a str>,
}

impl End<'_> {
    /// What failed, to tell one fault from another: the innermost `File
    /// …, line N` of the traceback and the exception on its last line.
    fn signature(&self) -> Option<(&str, &str)> {
        let frame = self
            .stderr
            .iter()
            .rev()
            .find(|l| l.trim_start().starts_with("File \""))?;
        let error = self.stderr.iter().rev().find(|l| !l.trim().is_empty())?;
        Some((frame.trim(), error.trim()))
    }

    /// The traceback as evidence lines.
    fn evidence(&self) -> Vec<String> {
        let skip = self.stderr.len().saturating_sub(TRACEBACK_LINES);
        self.stderr[skip..]
            .iter()
            .map(|l| format!("stderr: {l}"))
            .collect()
    }
}

/// Every instance that ended during probing, in order.
fn ends<'a>(ctx: &Ctx<'a>) -> Vec<End<'a>> {
    ctx.trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ServerEnded { probe, exit, since } => Some(End {
                probe: probe.as_deref(),
                exit,
                stderr: ctx.trace.stderr_between(*since, e.at),
            }),
            _ => None,
        })
        .collect()
}

/// Whether netgrade started the server again after an end (for messages).
fn restarted(ctx: &Ctx) -> bool {
    ctx.trace
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::ServerRestarted { addr: Some(_), .. }))
}

/// The check that owns `probe`: the one whose `probe` it is, or a
/// `concurrent` check that holds it.
fn owner<'a>(ctx: &Ctx<'a>, probe: &str) -> Option<&'a CheckSpec> {
    let checks = &ctx.lab.checks;
    checks
        .iter()
        .find(|c| c.probe.as_deref() == Some(probe))
        .or_else(|| {
            checks.iter().find(|c| {
                c.kind() == Some(CheckKind::Concurrent)
                    && c.probes.iter().flatten().any(|p| p == probe)
            })
        })
}

/// The owner of another probe sending the same request as `probe` (a
/// request repeated later, e.g. `/HelloWorld.html` after the 404): the same
/// fault on the same request is that check's, not a new one.
fn same_request_owner<'a>(ctx: &Ctx<'a>, probe: &str) -> Option<&'a CheckSpec> {
    let request = |id: &str| {
        ctx.lab
            .probes
            .iter()
            .find(|p| p.id.value == id)
            .map(|p| p.request_line())
    };
    let mine = request(probe)?;
    ctx.lab
        .probes
        .iter()
        .filter(|p| p.id.value != probe && p.request_line() == mine)
        .find_map(|p| owner(ctx, &p.id.value))
}

/// Whether `probe` got no answer, or one cut short: nothing, fewer bytes than
/// its `Content-Length`, or the start of the owner's file and no more.
fn cut_short(ctx: &Ctx, probe: &str) -> bool {
    let Ok(ex) = exchange(ctx, probe) else {
        return true;
    };
    if ex.received.is_empty() {
        return true;
    }
    let short_length = ex.parsed.deviations.iter().any(|d| {
        matches!(d.kind, DeviationKind::ContentLengthMismatch { declared, received } if received < declared)
    });
    let file = owner(ctx, probe)
        .or_else(|| same_request_owner(ctx, probe))
        .and_then(|c| c.file.as_deref())
        .and_then(|f| ctx.lab.files.get(f));
    let short_file = file.is_some_and(|f| {
        let body = &ex.parsed.body;
        body.len() < f.len() && f.starts_with(body)
    });
    short_length || short_file
}

/// The check that pays for `end` (see the module docs), if the lab has it.
fn payer<'a>(ctx: &Ctx<'a>, all: &[End], end: &End) -> Option<&'a CheckSpec> {
    let keeps = ctx
        .lab
        .checks
        .iter()
        .find(|c| c.kind() == Some(CheckKind::KeepsServing));
    let Some(probe) = end.probe else {
        return keeps;
    };
    // netgrade hung up once the announced Content-Length was read; a server
    // still sending more (its fault: `headers`) then dies of the broken pipe.
    if hung_up_on_extra_bytes(ctx, probe, end) {
        let headers = ctx
            .lab
            .checks
            .iter()
            .find(|c| c.kind() == Some(CheckKind::Headers));
        if headers.is_some() {
            return headers;
        }
    }
    let owner = owner(ctx, probe).or_else(|| same_request_owner(ctx, probe));
    if cut_short(ctx, probe) || silent_like_another(ctx, all, end) {
        return owner.or_else(|| same_fault_owner(ctx, all, end)).or(keeps);
    }
    // Answered, and then the server ended. After the 404 only: the missing file did it.
    let only_after_404 = all
        .iter()
        .all(|e| e.probe == Some(probe) || e.probe.is_some_and(|p| cut_short(ctx, p)));
    match owner {
        Some(c)
            if c.kind() == Some(CheckKind::NotFound)
                && c.probes.as_ref().is_some_and(|p| !p.is_empty())
                && only_after_404 =>
        {
            Some(c)
        }
        _ => keeps,
    }
}

/// Whether `end` came right after its request got no body, with the very
/// failure an earlier request of a file already showed (the same code
/// crashing on another text file).
fn silent_like_another(ctx: &Ctx, all: &[End], end: &End) -> bool {
    let (Some(probe), Some(signature)) = (end.probe, end.signature()) else {
        return false;
    };
    let empty_body = exchange(ctx, probe).is_ok_and(|ex| ex.parsed.body.is_empty());
    empty_body
        && all.iter().any(|other| {
            other.probe != Some(probe)
                && other.signature() == Some(signature)
                && other.probe.is_some_and(|p| cut_short(ctx, p))
        })
}

/// Whether `end` is the server dying of a broken pipe after netgrade read
/// `probe`'s whole response, framed by its Content-Length, and hung up:
/// the server wrote past the end it announced (the extra bytes may have
/// come in time to be seen, or not).
fn hung_up_on_extra_bytes(ctx: &Ctx, probe: &str, end: &End) -> bool {
    let broken_pipe = end
        .stderr
        .iter()
        .any(|l| l.contains("BrokenPipeError") || l.contains("ConnectionResetError"));
    broken_pipe
        && exchange(ctx, probe).is_ok_and(|ex| {
            let extra = ex
                .parsed
                .deviations
                .iter()
                .any(|d| matches!(d.kind, DeviationKind::BytesAfterEnd(_)));
            let whole = *ex.end == ExchangeEnd::Complete
                && matches!(ex.parsed.framing, Framing::ContentLength(_));
            extra || whole
        })
}

/// The check charged for an earlier end with the same failure as `end`.
fn same_fault_owner<'a>(ctx: &Ctx<'a>, all: &[End], end: &End) -> Option<&'a CheckSpec> {
    let signature = end.signature()?;
    all.iter()
        .filter(|other| other.probe != end.probe && other.signature() == Some(signature))
        .find_map(|other| {
            let p = other.probe?;
            owner(ctx, p).filter(|_| cut_short(ctx, p))
        })
}

/// What to do about a crash on a missing file: catch the error, or, when
/// it was caught and the handler itself failed, fix the handler.
fn missing_file_advice(end: &End) -> String {
    let handled = end
        .stderr
        .iter()
        .any(|l| l.contains("During handling of the above exception"));
    if !handled {
        return ": it crashed on a file that does not exist; catch IOError around open() and send a 404".into();
    }
    let error = end
        .stderr
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim())
        .unwrap_or("an error");
    let bytes = if error.contains("a bytes-like object is required") {
        " (encode what you send: `.encode()`)"
    } else {
        ""
    };
    format!(
        ": the missing file was caught, but the code that sends the 404 failed ({error}){bytes}; fix the except block"
    )
}

/// The ends `check` pays for.
fn charged<'a>(ctx: &Ctx<'a>, check: &CheckSpec) -> Vec<End<'a>> {
    let all = ends(ctx);
    all.iter()
        .filter(|e| payer(ctx, &all, e).is_some_and(|c| c.id.value == check.id.value))
        .cloned()
        .collect()
}

/// The end `probe`'s request caused by getting no answer (or one cut short), if any.
fn crash_on<'a>(ctx: &Ctx<'a>, probe: &str) -> Option<End<'a>> {
    ends(ctx)
        .into_iter()
        .find(|e| e.probe == Some(probe) && cut_short(ctx, probe))
}

/// ` (netgrade started it again for the requests after it)` when it did.
fn restart_note(ctx: &Ctx) -> &'static str {
    if restarted(ctx) {
        " (netgrade started it again for the requests after it)"
    } else {
        ""
    }
}

/// A failure for a request the server crashed on without a complete answer.
fn crashed(ctx: &Ctx, ex: &Ex, end: &End, advice: &str) -> Verdict {
    Verdict::fail(format!(
        "{} got no response: the server {} on this request{}{advice}",
        ex.request(),
        end.exit.describe(),
        restart_note(ctx)
    ))
    .with_evidence(end.evidence())
}

fn stderr_tail(ctx: &Ctx, n: usize) -> Vec<String> {
    tail(ctx, Stream::Stderr, n)
}

/// The request `probe` sends, for messages.
fn request_of(ctx: &Ctx, probe: Option<&str>) -> String {
    probe
        .and_then(|p| ctx.lab.probes.iter().find(|s| s.id.value == p))
        .map(|s| s.request_line())
        .unwrap_or_else(|| "no request".to_string())
}

/// Why `probe` was never sent, as a failing verdict.
fn not_reached(ctx: &Ctx) -> Verdict {
    let listen = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::NotListening { waited, exited } => Some((*waited, *exited)),
        _ => None,
    });
    let last_exit = ctx.trace.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Exited { exit } => Some(exit),
        _ => None,
    });
    let failed_restart = ctx
        .trace
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::ServerRestarted { addr: None, .. }));
    let last_end = ends(ctx).pop();
    let message = match (listen, last_exit) {
        (Some((_, true)), Some(exit)) => format!(
            "the server {} before it listened on a TCP port, so no request could be sent",
            exit.describe()
        ),
        (Some((waited, false)), _) => format!(
            "the server did not listen on any TCP port within {}: call serverSocket.bind((\"\", port)) and serverSocket.listen(1) before accept()",
            secs(waited)
        ),
        _ => match last_end {
            Some(end) if failed_restart => format!(
                "the server {} after {}, and when netgrade started it again it did not listen in time ({}), so this request could not be sent",
                end.exit.describe(),
                request_of(ctx, end.probe),
                last_exit.map(|e| e.describe()).unwrap_or_default()
            ),
            Some(end) => format!(
                "the server {} after {}, and the time limit left no time to start it again, so this request could not be sent",
                end.exit.describe(),
                request_of(ctx, end.probe)
            ),
            None => "the time limit ran out before this request could be sent".to_string(),
        },
    };
    let mut evidence = stderr_tail(ctx, 6);
    let out = ctx.trace.lines(Stream::Stdout);
    evidence.extend(out.iter().take(4).map(|l| format!("stdout: {l}")));
    Verdict::fail(message).with_evidence(evidence)
}

/// The parsed exchange of `probe`, or the verdict explaining its absence. A
/// request sent again after a restart (the first try found the server gone)
/// is judged by its last exchange.
fn exchange<'a>(ctx: &Ctx<'a>, probe: &'a str) -> Result<Ex<'a>, Verdict> {
    let found = ctx.trace.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Exchange {
            probe: p,
            received,
            end,
            elapsed,
            ..
        } if p == probe => Some((received, end, elapsed)),
        _ => None,
    });
    let Some((received, end, elapsed)) = found else {
        return Err(not_reached(ctx));
    };
    let spec = ctx.lab.probes.iter().find(|p| p.id.value == probe);
    let head = spec.is_some_and(|p| p.is_head());
    Ok(Ex {
        probe,
        request: spec.map(|p| p.request_line()).unwrap_or_default(),
        received,
        end,
        elapsed: *elapsed,
        parsed: parse_response(received, head),
    })
}

/// A failure for an exchange that got no bytes back.
fn no_answer(ctx: &Ctx, ex: &Ex) -> Verdict {
    if let Some(end) = crash_on(ctx, ex.probe) {
        return crashed(ctx, ex, &end, "");
    }
    Verdict::fail(format!(
        "{} got no response: {}",
        ex.request(),
        ex.silence(ctx)
    ))
    .with_evidence(stderr_tail(ctx, 6))
}

/// The status code of `ex`, or a verdict explaining why there is none.
fn status_of(ctx: &Ctx, ex: &Ex) -> Result<u16, Verdict> {
    if ex.received.is_empty() {
        return Err(no_answer(ctx, ex));
    }
    match &ex.parsed.status_line {
        Some(line) => Ok(line.code),
        None => Err(Verdict::fail(format!(
            "the response to {} has no status line: it starts with {}; the first line must be like \"HTTP/1.1 200 OK\\r\\n\"",
            ex.request(),
            quote(&ex.received[..ex.received.len().min(40)])
        ))),
    }
}

/// Whether `expected` is a binary file (a text-mode read cannot decode it).
fn is_binary(expected: &[u8]) -> bool {
    expected.iter().any(|b| *b >= 0x80) && std::str::from_utf8(expected).is_err()
}

/// serves-file and binary-file: status and exact body.
pub(super) fn serves_file(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (Some(probe), Some(file)) = (spec.probe.as_deref(), spec.file.as_deref()) else {
        return Verdict::fail("the lab names no probe or file for this check");
    };
    let want_status = spec.status.unwrap_or(200);
    let Some(expected) = ctx.lab.files.get(file) else {
        return Verdict::fail(format!("the lab has no data file {file}"));
    };
    let ex = match exchange(ctx, probe) {
        Ok(ex) => ex,
        Err(v) => return v,
    };
    if ex.received.is_empty()
        && let Some(end) = crash_on(ctx, probe)
    {
        let text_mode =
            is_binary(expected) && end.stderr.iter().any(|l| l.contains("UnicodeDecodeError"));
        let advice = if text_mode {
            format!(
                ": the traceback shows a text-mode read failing on the first byte of {file} that is not UTF-8; open it with \"rb\" and send the bytes as they are"
            )
        } else {
            String::new()
        };
        return crashed(ctx, &ex, &end, &advice);
    }
    let verdict = judge_file(ctx, &ex, file, expected, want_status);
    // binary-file (and large-file) judge the file's bytes: all there, and
    // unchanged. How they were framed (a missing blank line, extra bytes, a
    // wrong length) is what serves-file, status-line and headers judge.
    if verdict.status == Status::Fail
        && spec.kind() == Some(CheckKind::BinaryFile)
        && arrived_whole(&ex, expected)
    {
        return Verdict {
            message: Some(format!(
                "all of {file}'s bytes arrived, unchanged; how the response framed them is judged by serves-file, status-line and headers"
            )),
            ..Verdict::pass()
        };
    }
    verdict
}

/// serves-file's judgment of a response that came: its status and its body.
fn judge_file(ctx: &Ctx, ex: &Ex, file: &str, expected: &[u8], want_status: u16) -> Verdict {
    let code = match status_of(ctx, ex) {
        Ok(c) => c,
        Err(v) => return v,
    };
    if code != want_status {
        let why = match code {
            404 if ex
                .parsed
                .status_line
                .as_ref()
                .is_some_and(|l| l.reason.eq_ignore_ascii_case("Not Found")) =>
            {
                format!(
                    ": the server did not find {file}, or failed reading it and answered 404 anyway; open the requested path relative to its own folder (`filename[1:]`){}",
                    if is_binary(expected) {
                        ", in binary mode (\"rb\"): a text-mode read fails on an image"
                    } else {
                        ""
                    }
                )
            }
            404 => format!(
                ": the server answered 404 for a file that exists; a text-mode read or another error inside the `try` may have sent it there{}",
                if is_binary(expected) {
                    " (open images with \"rb\")"
                } else {
                    ""
                }
            ),
            500..=599 => ": the server failed on a file that exists".to_string(),
            _ => String::new(),
        };
        return Verdict::fail(format!(
            "{} returned status {code}; expected {want_status}{why}",
            ex.request()
        ));
    }
    // Without the blank line a client reads the file as more header lines: the page never shows.
    if ex.parsed.head_end.is_none() {
        return Verdict::fail(format!(
            "there is no blank line after the status line and headers, so a client reads the {} bytes of {file} as header lines and shows no page: send \"\\r\\n\" after the last header, then the file",
            expected.len()
        ));
    }
    compare_body(ctx, ex, file, expected)
}

/// Whether all of `file`'s bytes arrived, unchanged and in one piece, after
/// a 200 status line.
fn arrived_whole(ex: &Ex, file: &[u8]) -> bool {
    let ok = ex
        .parsed
        .status_line
        .as_ref()
        .is_some_and(|l| l.code == 200);
    if !ok || file.is_empty() || ex.received.len() < file.len() {
        return false;
    }
    let probe = &file[..file.len().min(64)];
    (0..=ex.received.len() - file.len())
        .filter(|&at| ex.received[at..].starts_with(probe))
        .any(|at| ex.received[at..].starts_with(file))
}

/// The body of a 200 response against the file it should be.
fn compare_body(ctx: &Ctx, ex: &Ex, file: &str, expected: &[u8]) -> Verdict {
    let body = &ex.parsed.body;
    if body == expected {
        return Verdict::pass();
    }
    // The handout's skeleton sends "\r\n" after the file and closes: without
    // Content-Length, a client cannot tell it from the file, and the page shows.
    if ex.parsed.framing == Framing::UntilClose
        && body.len() == expected.len() + 2
        && body.starts_with(expected)
        && body.ends_with(b"\r\n")
    {
        return Verdict {
            message: Some(format!(
                "accepted: {file} came followed by \"\\r\\n\" and the close, from the handout's own `connectionSocket.send(\"\\r\\n\".encode())` after the file; harmless without Content-Length (with Content-Length, send exactly the file)"
            )),
            ..Verdict::pass()
        };
    }
    let crash = crash_on(ctx, ex.probe);
    let message = if body.len() > expected.len() && body.starts_with(expected) {
        format!(
            "the body is {file} followed by {} extra byte(s) {}: send the file's bytes only",
            body.len() - expected.len(),
            quote(&body[expected.len()..body.len().min(expected.len() + 20)])
        )
    } else if body.is_empty() && crash.is_none() {
        format!(
            "the response has a status line but no body: none of the {} bytes of {file} were sent; after the header, send the file's bytes (`connectionSocket.sendall(outputdata)`)",
            expected.len()
        )
    } else if body.len() < expected.len() && expected.starts_with(body) {
        let how = match (&crash, ex.end) {
            (Some(end), _) => format!("then the server {}", end.exit.describe()),
            (None, ExchangeEnd::TimedOut) => "then the server sent nothing more".to_string(),
            (None, _) => "then the connection ended".to_string(),
        };
        let advice = if crash.is_some() {
            "see the traceback"
        } else {
            "read the whole file and send it all (sendall)"
        };
        format!(
            "the body stops after {} of the {} bytes of {file}; {how}: {advice}",
            body.len(),
            expected.len()
        )
    } else {
        let at = body
            .iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(body.len().min(expected.len()));
        format!(
            "the body differs from {file} at byte {at} (received {} bytes, the file has {}){}: got {}, expected {}",
            body.len(),
            expected.len(),
            if is_binary(expected) {
                "; a binary file must be read with \"rb\" and sent unchanged"
            } else {
                ""
            },
            quote(&body[at..body.len().min(at + 16)]),
            quote(&expected[at..expected.len().min(at + 16)])
        )
    };
    Verdict::fail(message).with_evidence(crash.map(|e| e.evidence()).unwrap_or_default())
}

/// Deviations that make a status line or head malformed.
fn head_deviation(kind: &DeviationKind) -> bool {
    matches!(
        kind,
        DeviationKind::LeadingWhitespace
            | DeviationKind::BareLf
            | DeviationKind::BareCr
            | DeviationKind::NoStatusLine
            | DeviationKind::MalformedStatusLine(_)
            | DeviationKind::NoBlankLine
            | DeviationKind::BadHeaderLine(_)
    )
}

/// status-line: every response's head is well formed.
pub(super) fn status_line(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let probes = spec.probes.clone().unwrap_or_default();
    let mut judged = 0;
    let mut evidence = Vec::new();
    let mut first: Option<String> = None;
    for probe in &probes {
        // Probes without an answer, or whose head a crash cut off, are judged
        // by the other checks; with none answered at all, the verdict below says why.
        let Ok(ex) = exchange(ctx, probe) else {
            continue;
        };
        if ex.received.is_empty()
            || (ex.parsed.head_end.is_none() && crash_on(ctx, probe).is_some())
        {
            continue;
        }
        judged += 1;
        // Only the head matters here: deviations past its end are body bytes.
        let head_limit = ex.parsed.head_end.unwrap_or(ex.received.len());
        for d in ex
            .parsed
            .deviations
            .iter()
            .filter(|d| head_deviation(&d.kind) && d.offset <= head_limit)
        {
            let line = format!(
                "{}: {} — {}",
                ex.request(),
                d.kind.describe(),
                http::evidence(ex.received, d.offset)
            );
            first.get_or_insert_with(|| {
                format!(
                    "the response to {} is malformed: {}",
                    ex.request(),
                    d.kind.describe()
                )
            });
            if evidence.len() < MAX_EVIDENCE {
                evidence.push(line);
            }
        }
    }
    match first {
        Some(message) => Verdict::fail(message).with_evidence(evidence),
        None if judged == 0 => nothing_to_judge(ctx, &probes, "a status line"),
        None => Verdict::pass(),
    }
}

/// A skip for a check that judges responses when no request got one: the
/// first request's own verdict says why, and its check charges it.
fn nothing_to_judge(ctx: &Ctx, probes: &[String], what: &str) -> Verdict {
    let why = match probes.first().map(|p| exchange(ctx, p)) {
        None => return Verdict::fail("the lab lists no probes for this check"),
        Some(Ok(ex)) => no_answer(ctx, &ex).message,
        Some(Err(v)) => v.message,
    };
    Verdict::skip(format!(
        "not checked: no request got a response with {what} to judge ({})",
        why.unwrap_or_default()
    ))
}

/// not-found: a 404 status line, without the missing file ending the server.
pub(super) fn not_found(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let Some(probe) = spec.probe.as_deref() else {
        return Verdict::fail("the lab names no probe for this check");
    };
    let want = spec.status.unwrap_or(404);
    let ex = match exchange(ctx, probe) {
        Ok(ex) => ex,
        Err(v) => return v,
    };
    if ex.received.is_empty() {
        if let Some(end) = crash_on(ctx, probe) {
            return crashed(ctx, &ex, &end, &missing_file_advice(&end));
        }
        return no_answer(ctx, &ex);
    }
    match &ex.parsed.status_line {
        None => {
            let says_404 = String::from_utf8_lossy(ex.received).contains("404");
            return Verdict::fail(format!(
                "the response to {} has no status line{}: it starts with {}; send \"HTTP/1.1 404 Not Found\\r\\n\\r\\n\" before the page",
                ex.request(),
                if says_404 {
                    " (the page says 404, but the status line must)"
                } else {
                    ""
                },
                quote(&ex.received[..ex.received.len().min(40)])
            ));
        }
        Some(line) if line.code != want => {
            let why = if line.code == 200 {
                ": the server answers files that do not exist; open the requested path and send 404 when it is missing"
            } else {
                ""
            };
            return Verdict::fail(format!(
                "{} returned status {}; expected {want}{why}",
                ex.request(),
                line.code
            ));
        }
        Some(_) => {}
    }
    // The follow-up requests must find the same server running.
    if let Some(end) = charged(ctx, spec).first() {
        let after = spec
            .probes
            .iter()
            .flatten()
            .map(|p| request_of(ctx, Some(p)))
            .collect::<Vec<_>>()
            .join(", ");
        return Verdict::fail(format!(
            "after answering {} with {want}, the server {}, so {after} found it gone{}: a missing file must not end the server; send the 404, close the connection socket and go on serving",
            ex.request(),
            end.exit.describe(),
            restart_note(ctx)
        ))
        .with_evidence(end.evidence());
    }
    Verdict::pass()
}

/// keeps-serving: one run of the server answers every request it did not crash on.
pub(super) fn keeps_serving(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let mine = charged(ctx, spec);
    if let Some(first) = mine.first() {
        return ended_early(ctx, first, &mine);
    }
    let probes = spec.probes.clone().unwrap_or_default();
    // A server that answered nothing at all cannot be judged on going on answering.
    let answered = probes
        .iter()
        .any(|p| exchange(ctx, p).is_ok_and(|ex| !ex.received.is_empty()));
    if !answered {
        return nothing_to_judge(ctx, &probes, "an answer");
    }
    for (n, probe) in probes.iter().enumerate() {
        let ex = match exchange(ctx, probe) {
            Ok(ex) => ex,
            Err(v) => return v,
        };
        // A request that crashed the server is charged to the check that owns it.
        if ex.received.is_empty() && crash_on(ctx, probe).is_none() {
            let mut evidence = vec![format!(
                "request {}: {} → nothing ({})",
                n + 1,
                ex.request(),
                ex.silence(ctx)
            )];
            evidence.extend(stderr_tail(ctx, 4));
            return Verdict::fail(format!(
                "request {} of {} ({}) got no response: {}; the server must answer each connection",
                n + 1,
                probes.len(),
                ex.request(),
                ex.silence(ctx)
            ))
            .with_evidence(evidence);
        }
    }
    Verdict::pass()
}

/// keeps-serving's failure for instances that ended after requests they answered.
fn ended_early(ctx: &Ctx, first: &End, all: &[End]) -> Verdict {
    let request = request_of(ctx, first.probe);
    let more = match all.len() {
        1 => String::new(),
        n => format!(" ({n} times in this run)"),
    };
    let message = match (first.probe, first.exit) {
        (None, exit) => format!(
            "the server {} before netgrade sent it a request{more}",
            exit.describe()
        ),
        (Some(p), exit) if cut_short(ctx, p) => format!(
            "{request} got no response: the server {} on this request{more}{}",
            exit.describe(),
            restart_note(ctx)
        ),
        (Some(_), ExitKind::Stopped) => format!(
            "after answering {request}, the server stopped listening while it kept running, so the next request found no server{more}; netgrade restarted it: close only the connection socket after each request, never serverSocket"
        ),
        (Some(_), ExitKind::Exited { code: 0 }) => format!(
            "after answering {request}, the server exited (status 0), so the next request found no server{more}; netgrade restarted it for each later request: keep `while True:` around accept() so that one run serves every request"
        ),
        (Some(_), exit) if first.stderr.iter().all(|l| l.trim().is_empty()) => format!(
            "after answering {request}, the server {} without an error message, so the next request found no server{more}; netgrade restarted it: look for an exit (`sys.exit()`, `serverSocket.close()`) or a `break` inside the `while True:` loop",
            exit.describe()
        ),
        (Some(_), exit) => format!(
            "after answering {request}, the server {}, so the next request found no server{more}; netgrade restarted it: the traceback shows what failed after the response was sent",
            exit.describe()
        ),
    };
    let mut evidence: Vec<String> = all
        .iter()
        .take(MAX_EVIDENCE)
        .map(|e| {
            format!(
                "after {}: the server {}",
                request_of(ctx, e.probe),
                e.exit.describe()
            )
        })
        .collect();
    evidence.extend(first.evidence());
    Verdict::fail(message).with_evidence(evidence)
}

/// The media type a file's extension calls for.
fn expected_type(target: &str) -> Option<&'static str> {
    let ext = target.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "html" | "htm" => "text/html",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "css" => "text/css",
        "js" => "text/javascript",
        _ => return None,
    })
}

/// A Content-Length problem of `ex`, as a message.
fn length_problem(ex: &Ex) -> Option<String> {
    ex.parsed.deviations.iter().find_map(|d| match &d.kind {
        DeviationKind::ContentLengthMismatch { declared, received } if received > declared => {
            let extra = &ex.received[ex.received.len() - (received - declared) as usize..];
            Some(format!(
                "the response to {} says Content-Length: {declared}, but {} more byte(s) {} followed the body: send exactly Content-Length bytes{}",
                ex.request(),
                received - declared,
                quote(&extra[..extra.len().min(20)]),
                if extra == b"\r\n" {
                    " (the handout's trailing connectionSocket.send(\"\\r\\n\".encode()) is not part of the file: leave it out when you send Content-Length)"
                } else {
                    ""
                }
            ))
        }
        DeviationKind::ContentLengthMismatch { declared, received } => Some(format!(
            "the response to {} says Content-Length: {declared}, but its body has {received} bytes: send len(body) of the bytes you send",
            ex.request()
        )),
        DeviationKind::DuplicateContentLength => Some(format!(
            "the response to {} has two Content-Length headers",
            ex.request()
        )),
        _ => None,
    })
}

/// headers: Content-Length matches the body; Content-Type fits the file.
pub(super) fn headers(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let mut judged = 0;
    for probe in spec.probes.iter().flatten() {
        let Ok(ex) = exchange(ctx, probe) else {
            continue;
        };
        // A response cut short by a crash is charged to the request's own check.
        if ex.parsed.status_line.is_none() || crash_on(ctx, probe).is_some() {
            continue;
        }
        judged += 1;
        if let Some(message) = length_problem(&ex) {
            return Verdict::fail(message);
        }
        let target = ex.request();
        let content_type = ex
            .parsed
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_string());
        if let (Some(value), Some(want)) = (content_type, expected_type(&target)) {
            let media = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if media != want && !(want == "text/javascript" && media == "application/javascript") {
                return Verdict::fail(format!(
                    "the response to {target} says Content-Type: {value}, but the file is {want}: set the type from the file's extension"
                ));
            }
        }
    }
    if let Some(end) = charged(ctx, spec).first() {
        return Verdict::fail(format!(
            "after the whole response to {} (as long as its Content-Length said), the server kept sending; netgrade had hung up, so the server {}{}: send exactly Content-Length bytes of body, then close the connection",
            request_of(ctx, end.probe),
            end.exit.describe(),
            restart_note(ctx)
        ))
        .with_evidence(end.evidence());
    }
    if judged == 0 {
        return nothing_to_judge(ctx, spec.probes.as_deref().unwrap_or_default(), "headers");
    }
    Verdict::pass()
}

/// Whether `probe`'s connection was opened and held with nothing sent.
fn was_held(ctx: &Ctx, probe: &str) -> bool {
    ctx.trace
        .events
        .iter()
        .any(|e| matches!(&e.kind, EventKind::Holding { probe: p, .. } if p == probe))
}

/// What arrived late on `probe`'s connection, after the held request was answered.
fn late_answer<'a>(ctx: &Ctx<'a>, probe: &str) -> Option<&'a [u8]> {
    ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::LateResponse {
            probe: p, received, ..
        } if p == probe && !received.is_empty() => Some(received.as_slice()),
        _ => None,
    })
}

/// concurrent: a request is served while another connection is open and
/// silent; the held request is served once it is sent.
pub(super) fn concurrent(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let Some(probe) = spec.probe.as_deref() else {
        return Verdict::fail("the lab names no probe for this check");
    };
    let want = spec.status.unwrap_or(200);
    let held: Vec<&str> = spec.probes.iter().flatten().map(String::as_str).collect();
    for h in &held {
        if !was_held(ctx, h) {
            return match exchange(ctx, h) {
                Ok(ex) => Verdict::fail(format!(
                    "the first connection could not be opened ({}), so concurrency could not be tested",
                    ex.silence(ctx)
                )),
                Err(v) => v,
            };
        }
    }
    let ex = match exchange(ctx, probe) {
        Ok(ex) => ex,
        Err(v) => return v,
    };
    if ex.received.is_empty() && *ex.end == ExchangeEnd::TimedOut {
        let late = if late_answer(ctx, probe).is_some() {
            "; it was answered only after the first client's request had been sent and answered"
        } else {
            ""
        };
        return Verdict::fail(format!(
            "while a first client had a connection open and had not sent its request yet, {} got no response within {}{late}: the server handles one connection at a time, waiting in recv() on the first; start a thread per connection after accept()",
            ex.request(),
            secs(ex.elapsed)
        ));
    }
    match status_of(ctx, &ex) {
        Ok(code) if code == want => {}
        Ok(code) => {
            return Verdict::fail(format!(
                "while another connection was held open, {} returned status {code}; expected {want}",
                ex.request()
            ));
        }
        Err(v) => return v,
    }
    // The first client's request, sent once the second was answered, is answered too.
    for h in held {
        let hx = match exchange(ctx, h) {
            Ok(hx) => hx,
            Err(v) => return v,
        };
        let code = match status_of(ctx, &hx) {
            Ok(code) => code,
            Err(v) => {
                let why = v.message.unwrap_or_default();
                return Verdict::fail(format!(
                    "the first client's request, sent on its held connection after {} was answered: {why}",
                    ex.request()
                ))
                .with_evidence(v.evidence);
            }
        };
        if code != want {
            return Verdict::fail(format!(
                "the first client's request ({}), sent on its held connection after {} was answered, returned status {code}; expected {want}",
                hx.request(),
                ex.request()
            ));
        }
    }
    Verdict::pass()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;
    use crate::spec::{Lab, load_builtin};
    use crate::trace::{Event, Trace};
    use std::time::Duration;

    fn lab(name: &str) -> Lab {
        load_builtin(name).unwrap().unwrap()
    }

    /// A 200 with Content-Length and the lab's file.
    fn ok(lab: &Lab, file: &str) -> Vec<u8> {
        let body = lab.files.get(file).unwrap();
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\n\r\n<h1>404</h1>";

    /// Builds a trace in order; every event one millisecond after the last.
    #[derive(Default)]
    struct Run(Vec<EventKind>);

    impl Run {
        fn answer(mut self, probe: &str, received: &[u8]) -> Self {
            let end = if received.is_empty() {
                ExchangeEnd::Closed
            } else {
                ExchangeEnd::Complete
            };
            self.0.push(EventKind::Exchange {
                probe: probe.into(),
                sent: b"GET".to_vec(),
                received: received.to_vec(),
                end,
                elapsed: Duration::from_millis(1),
            });
            self
        }

        /// The instance ended after `probe`, printing `stderr` since it began
        /// (two events back: the exchange, then the lines).
        fn ended(mut self, probe: &str, code: i32, stderr: &[&str]) -> Self {
            let since = Duration::from_millis(self.0.len() as u64 - 1);
            for line in stderr {
                self.0.push(EventKind::Output {
                    stream: Stream::Stderr,
                    line: line.to_string(),
                });
            }
            self.0.push(EventKind::Exited {
                exit: ExitKind::Exited { code },
            });
            self.0.push(EventKind::ServerEnded {
                probe: Some(probe.into()),
                exit: ExitKind::Exited { code },
                since,
            });
            self.0.push(EventKind::ServerRestarted {
                attempt: 1,
                addr: Some("127.0.0.1:6789".parse().unwrap()),
            });
            self
        }

        fn trace(self) -> Trace {
            Trace {
                events: self
                    .0
                    .into_iter()
                    .enumerate()
                    .map(|(i, kind)| Event {
                        at: Duration::from_millis(i as u64),
                        kind,
                    })
                    .collect(),
            }
        }
    }

    /// Every probe of the webserver lab answered right, with `change` applied
    /// to the probe named in it.
    fn good_run(lab: &Lab, change: &str, with: &dyn Fn(Run) -> Run) -> Run {
        let mut run = Run::default();
        for p in &lab.probes {
            let id = p.id.value.as_str();
            if id == change {
                run = with(run);
                continue;
            }
            let response = match id {
                "get-missing" => NOT_FOUND.to_vec(),
                "get-image" => ok(lab, "image.png"),
                "get-notes" => ok(lab, "docs/notes.txt"),
                "get-big" => ok(lab, "big.txt"),
                _ => ok(lab, "HelloWorld.html"),
            };
            run = run.answer(id, &response);
        }
        run
    }

    /// Check id → (status, message and evidence).
    fn verdicts(lab: &Lab, trace: &Trace) -> Vec<(String, Status, String)> {
        crate::checks::evaluate(lab, trace)
            .into_iter()
            .map(|c| {
                let text = format!(
                    "{} {}",
                    c.message.unwrap_or_default(),
                    c.evidence.join(" | ")
                );
                (c.id, c.status, text)
            })
            .collect()
    }

    fn failing(v: &[(String, Status, String)]) -> Vec<&str> {
        v.iter()
            .filter(|(_, s, _)| *s != Status::Pass)
            .map(|(id, _, _)| id.as_str())
            .collect()
    }

    fn text<'a>(v: &'a [(String, Status, String)], id: &str) -> &'a str {
        &v.iter().find(|(i, _, _)| i == id).unwrap().2
    }

    #[test]
    fn a_crash_costs_the_check_of_the_request_that_caused_it() {
        let lab = lab("webserver");
        let run = good_run(&lab, "get-image", &|r| {
            r.answer("get-image", b"").ended(
                "get-image",
                1,
                &[
                    "Traceback (most recent call last):",
                    "UnicodeDecodeError: 'utf-8' codec",
                ],
            )
        });
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), ["binary-file"]);
        let m = text(&v, "binary-file");
        assert!(m.contains("exited with status 1 on this request"), "{m}");
        assert!(m.contains("open it with \"rb\""), "{m}");
        assert!(m.contains("stderr: UnicodeDecodeError"), "{m}");
    }

    #[test]
    fn a_crash_on_the_missing_file_is_a_missing_except() {
        let lab = lab("webserver");
        let run = good_run(&lab, "get-missing", &|r| {
            r.answer("get-missing", b"").ended(
                "get-missing",
                1,
                &["FileNotFoundError: missing.html"],
            )
        });
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), ["not-found"]);
        assert!(text(&v, "not-found").contains("catch IOError"));
    }

    #[test]
    fn exiting_after_every_answer_costs_keeps_serving_only() {
        let lab = lab("webserver");
        let mut run = Run::default();
        for p in &lab.probes {
            let id = p.id.value.as_str();
            let response = match id {
                "get-missing" => NOT_FOUND.to_vec(),
                "get-image" => ok(&lab, "image.png"),
                "get-notes" => ok(&lab, "docs/notes.txt"),
                "get-big" => ok(&lab, "big.txt"),
                _ => ok(&lab, "HelloWorld.html"),
            };
            run = run.answer(id, &response).ended(id, 0, &[]);
        }
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), ["keeps-serving"]);
        let m = text(&v, "keeps-serving");
        assert!(
            m.contains("after answering GET /HelloWorld.html, the server exited (status 0)"),
            "{m}"
        );
        assert!(m.contains("while True"), "{m}");
    }

    #[test]
    fn exiting_after_the_404_only_costs_not_found() {
        let lab = lab("webserver");
        let run = good_run(&lab, "get-missing", &|r| {
            r.answer("get-missing", NOT_FOUND)
                .ended("get-missing", 0, &[])
        });
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), ["not-found"]);
        assert!(text(&v, "not-found").contains("must not end the server"));
    }

    #[test]
    fn a_body_cut_short_by_a_crash_is_charged_once() {
        let lab = lab("webserver");
        let mut cut = ok(&lab, "big.txt");
        cut.truncate(5000);
        let run = good_run(&lab, "get-big", &|r| {
            r.answer("get-big", &cut)
                .ended("get-big", 1, &["MemoryError"])
        });
        let v = verdicts(&lab, &run.trace());
        // Not `headers` for the short Content-Length, not `keeps-serving`.
        assert_eq!(failing(&v), ["large-file"]);
        let m = text(&v, "large-file");
        assert!(m.contains("then the server exited with status 1"), "{m}");
    }

    #[test]
    fn the_handouts_trailing_crlf_passes_only_without_content_length() {
        let lab = lab("webserver");
        let html = lab.files.get("HelloWorld.html").unwrap().to_vec();
        let mut bare = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        bare.extend_from_slice(&html);
        bare.extend_from_slice(b"\r\n");
        let run = good_run(&lab, "get-html", &|r| r.answer("get-html", &bare));
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), Vec::<&str>::new());
        assert!(text(&v, "serves-file").contains("accepted"));

        let mut framed = ok(&lab, "HelloWorld.html");
        framed.extend_from_slice(b"\r\n");
        let run = good_run(&lab, "get-html", &|r| r.answer("get-html", &framed));
        let v = verdicts(&lab, &run.trace());
        assert_eq!(failing(&v), ["headers"]);
        assert!(text(&v, "headers").contains("2 more byte(s) \"\\r\\n\""));
        assert_eq!(text(&v, "serves-file").trim(), "");
    }

    fn concurrent_run(lab: &Lab, during: &[u8], late: Option<&[u8]>) -> Trace {
        let mut run = good_run(lab, "", &|r| r);
        run.0.retain(|k| !matches!(k, EventKind::Exchange { probe, .. } if probe == "held" || probe == "while-held"));
        run.0.push(EventKind::Holding {
            probe: "held".into(),
            until: Some("while-held".into()),
        });
        run = run.answer("while-held", during);
        if during.is_empty()
            && let Some(EventKind::Exchange { end, .. }) = run.0.last_mut()
        {
            *end = ExchangeEnd::TimedOut;
        }
        run = run.answer("held", &ok(lab, "HelloWorld.html"));
        if let Some(late) = late {
            run.0.push(EventKind::LateResponse {
                probe: "while-held".into(),
                received: late.to_vec(),
                end: ExchangeEnd::Closed,
            });
        }
        run.trace()
    }

    #[test]
    fn concurrent_needs_the_second_client_served_while_the_first_is_silent() {
        let lab = lab("webserver-threaded");
        let page = ok(&lab, "HelloWorld.html");
        let v = verdicts(&lab, &concurrent_run(&lab, &page, None));
        assert_eq!(failing(&v), Vec::<&str>::new());

        let v = verdicts(&lab, &concurrent_run(&lab, b"", Some(&page)));
        assert_eq!(failing(&v), ["concurrent"]);
        let m = text(&v, "concurrent");
        assert!(m.contains("one connection at a time"), "{m}");
        assert!(
            m.contains("answered only after the first client's request"),
            "{m}"
        );
    }
}
