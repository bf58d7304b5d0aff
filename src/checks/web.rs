//! Checks over netgrade's probe exchanges with a student's web server.

use super::{Ctx, Verdict, quote, secs, tail};
use crate::outcome::ExitKind;
use crate::probes::http::{self, DeviationKind, Parsed, parse_response};
use crate::spec::CheckSpec;
use crate::trace::{EventKind, ExchangeEnd, Stream};

/// Most offending items listed as evidence.
const MAX_EVIDENCE: usize = 8;

/// One probe's exchange, parsed.
struct Ex<'a> {
    /// The request line the probe sends (from the spec, even when nothing was sent).
    line: String,
    received: &'a [u8],
    end: &'a ExchangeEnd,
    elapsed: std::time::Duration,
    parsed: Parsed,
}

impl Ex<'_> {
    /// The request, for messages: `GET /HelloWorld.html`.
    fn request(&self) -> String {
        self.line
            .rsplit_once(' ')
            .map(|(head, _)| head.to_string())
            .unwrap_or_else(|| self.line.clone())
    }

    /// What the server did when there is no usable response.
    fn silence(&self, ctx: &Ctx) -> String {
        match self.end {
            ExchangeEnd::ConnectFailed(why) => {
                format!("netgrade could not connect ({why}){}", exited_note(ctx))
            }
            ExchangeEnd::Reset => format!(
                "the server reset the connection without answering{}",
                exited_note(ctx)
            ),
            ExchangeEnd::TimedOut => format!(
                "the server sent nothing in {} and kept the connection open; reply to each request, then close the connection",
                secs(self.elapsed)
            ),
            ExchangeEnd::Closed | ExchangeEnd::Complete => {
                format!(
                    "the server closed the connection without sending anything{}",
                    exited_note(ctx)
                )
            }
            ExchangeEnd::Held => "the connection was held open on purpose".to_string(),
        }
    }
}

/// ` — the server had exited (status 1)` when the program was gone by the end.
fn exited_note(ctx: &Ctx) -> String {
    match ctx.trace.exit() {
        Some((_, ExitKind::Stopped)) | None => String::new(),
        Some((_, exit)) => format!(
            ": the server {} while netgrade was still sending requests",
            exit.describe()
        ),
    }
}

fn stderr_tail(ctx: &Ctx, n: usize) -> Vec<String> {
    tail(ctx, Stream::Stderr, n)
}

/// Why no probe ran at all, as a failing verdict.
fn not_reached(ctx: &Ctx) -> Verdict {
    let listen = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::NotListening { waited, exited } => Some((*waited, *exited)),
        _ => None,
    });
    let message = match (listen, ctx.trace.exit()) {
        (Some((_, true)), Some((_, exit))) => format!(
            "the server {} before it listened on a TCP port, so no request could be sent",
            exit.describe()
        ),
        (Some((waited, false)), _) => format!(
            "the server did not listen on any TCP port within {}: call serverSocket.bind((\"\", port)) and serverSocket.listen(1) before accept()",
            secs(waited)
        ),
        _ => "no request could be sent to the server".to_string(),
    };
    let mut evidence = stderr_tail(ctx, 6);
    let out = ctx.trace.lines(Stream::Stdout);
    evidence.extend(out.iter().take(4).map(|l| format!("stdout: {l}")));
    Verdict::fail(message).with_evidence(evidence)
}

/// The parsed exchange of `probe`, or the verdict explaining its absence.
fn exchange<'a>(ctx: &'a Ctx, probe: &'a str) -> Result<Ex<'a>, Verdict> {
    let Some((_, event)) = ctx.trace.exchange(probe) else {
        return Err(not_reached(ctx));
    };
    let EventKind::Exchange {
        received,
        end,
        elapsed,
        ..
    } = &event.kind
    else {
        unreachable!("exchange() returns Exchange events");
    };
    let spec = ctx.lab.probes.iter().find(|p| p.id.value == probe);
    let bytes = spec.map(|p| p.bytes("host", 0)).unwrap_or_default();
    let first = bytes
        .split(|b| *b == b'\r' || *b == b'\n')
        .next()
        .unwrap_or_default();
    let line = String::from_utf8_lossy(first).into_owned();
    let head = spec.is_some_and(|p| p.is_head());
    Ok(Ex {
        line,
        received,
        end,
        elapsed: *elapsed,
        parsed: parse_response(received, head),
    })
}

/// A failure for an exchange that got no bytes back.
fn no_answer(ctx: &Ctx, ex: &Ex) -> Verdict {
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
    let code = match status_of(ctx, &ex) {
        Ok(c) => c,
        Err(v) => return v,
    };
    if code != want_status {
        let why = match code {
            404 => format!(
                ": the server did not find {file}; it should open the requested path relative to its own folder (`filename[1:]`)"
            ),
            500..=599 => ": the server failed on a file that exists".to_string(),
            _ => String::new(),
        };
        return Verdict::fail(format!(
            "{} returned status {code}; expected {want_status}{why}",
            ex.request()
        ));
    }
    let body = &ex.parsed.body;
    // Without the blank line a client reads the file as more header lines: the page never shows.
    if ex.parsed.head_end.is_none() {
        return Verdict::fail(format!(
            "there is no blank line after the status line and headers, so a client reads the {} bytes of {file} as header lines and shows no page: send \"\\r\\n\" after the last header, then the file",
            expected.len()
        ));
    }
    if body == expected {
        return Verdict::pass();
    }
    let message = if body.len() > expected.len() && body.starts_with(expected) {
        format!(
            "the body is {file} followed by {} extra byte(s) {}: send the file's bytes only",
            body.len() - expected.len(),
            quote(&body[expected.len()..body.len().min(expected.len() + 20)])
        )
    } else if body.len() < expected.len() && expected.starts_with(body) {
        let how = match ex.end {
            ExchangeEnd::TimedOut => "then the server sent nothing more",
            _ => "then the connection ended",
        };
        format!(
            "the body stops after {} of the {} bytes of {file}; {how}: read the whole file and send it all (sendall)",
            body.len(),
            expected.len()
        )
    } else {
        let at = body
            .iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(body.len().min(expected.len()));
        let text_mode =
            expected.iter().any(|b| *b >= 0x80) && std::str::from_utf8(expected).is_err();
        format!(
            "the body differs from {file} at byte {at} (received {} bytes, the file has {}){}: got {}, expected {}",
            body.len(),
            expected.len(),
            if text_mode {
                "; a binary file must be read with \"rb\" and sent unchanged"
            } else {
                ""
            },
            quote(&body[at..body.len().min(at + 16)]),
            quote(&expected[at..expected.len().min(at + 16)])
        )
    };
    Verdict::fail(message)
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
        // Probes without an answer are judged by the other checks; with none
        // answered at all, the verdict below says why.
        let Ok(ex) = exchange(ctx, probe) else {
            continue;
        };
        if ex.received.is_empty() {
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
        None if judged == 0 => {
            let Some(probe) = probes.first() else {
                return Verdict::fail("the lab lists no probes for this check");
            };
            match exchange(ctx, probe) {
                Ok(ex) => no_answer(ctx, &ex),
                Err(v) => v,
            }
        }
        None => Verdict::pass(),
    }
}

/// not-found: a 404 status line, and the server still answers afterwards.
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
        let crashed = !matches!(ctx.trace.exit(), Some((_, ExitKind::Stopped)) | None);
        let mut v = no_answer(ctx, &ex);
        if crashed {
            v.message = Some(format!(
                "{} got no response, and the server {}: it crashed on a file that does not exist; catch IOError around open() and send a 404",
                ex.request(),
                ctx.trace
                    .exit()
                    .map(|(_, e)| e.describe())
                    .unwrap_or_default()
            ));
        }
        return v;
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
    for follow in spec.probes.iter().flatten() {
        let after = match exchange(ctx, follow) {
            Ok(ex) => ex,
            Err(v) => return v,
        };
        if after.received.is_empty() {
            return Verdict::fail(format!(
                "after the 404, {} got no response: {}; the server must keep running after a missing file",
                after.request(),
                after.silence(ctx)
            ))
            .with_evidence(stderr_tail(ctx, 6));
        }
    }
    Verdict::pass()
}

/// keeps-serving: every listed request gets a response.
pub(super) fn keeps_serving(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let probes = spec.probes.clone().unwrap_or_default();
    let mut evidence = Vec::new();
    for (n, probe) in probes.iter().enumerate() {
        let ex = match exchange(ctx, probe) {
            Ok(ex) => ex,
            Err(v) => return v,
        };
        match status_of(ctx, &ex) {
            Ok(code) => evidence.push(format!("request {}: {} → {code}", n + 1, ex.request())),
            Err(_) if ex.received.is_empty() => {
                evidence.push(format!(
                    "request {}: {} → nothing ({})",
                    n + 1,
                    ex.request(),
                    ex.silence(ctx)
                ));
                evidence.extend(stderr_tail(ctx, 4));
                let advice = if n == 0 {
                    "the server must answer each connection"
                } else {
                    "keep `while True:` around accept() and close only the connection socket after each request"
                };
                return Verdict::fail(format!(
                    "request {} of {} ({}) got no response: {}; {advice}",
                    n + 1,
                    probes.len(),
                    ex.request(),
                    ex.silence(ctx)
                ))
                .with_evidence(evidence);
            }
            // A response without a status line is still an answer; `status-line` judges its form.
            Err(_) => evidence.push(format!(
                "request {}: {} → a response without a status line",
                n + 1,
                ex.request()
            )),
        }
    }
    Verdict::pass()
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

/// headers: Content-Length matches the body; Content-Type fits the file.
pub(super) fn headers(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let mut judged = 0;
    for probe in spec.probes.iter().flatten() {
        let Ok(ex) = exchange(ctx, probe) else {
            continue;
        };
        if ex.parsed.status_line.is_none() {
            continue;
        }
        judged += 1;
        for d in &ex.parsed.deviations {
            match &d.kind {
                DeviationKind::ContentLengthMismatch { declared, received } => {
                    return Verdict::fail(format!(
                        "the response to {} says Content-Length: {declared}, but its body has {received} bytes: send len(body) of the bytes you send",
                        ex.request()
                    ));
                }
                DeviationKind::DuplicateContentLength => {
                    return Verdict::fail(format!(
                        "the response to {} has two Content-Length headers",
                        ex.request()
                    ));
                }
                _ => {}
            }
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
    if judged == 0 {
        return match spec
            .probes
            .iter()
            .flatten()
            .next()
            .map(|p| exchange(ctx, p))
        {
            Some(Err(v)) => v,
            Some(Ok(ex)) if ex.received.is_empty() => no_answer(ctx, &ex),
            _ => Verdict::fail(
                "no response had a status line, so no headers could be read (see `status-line`)",
            ),
        };
    }
    Verdict::pass()
}

/// concurrent: a request is served while another connection is held open.
pub(super) fn concurrent(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let Some(probe) = spec.probe.as_deref() else {
        return Verdict::fail("the lab names no probe for this check");
    };
    for held in spec.probes.iter().flatten() {
        match exchange(ctx, held) {
            Ok(ex) if matches!(ex.end, ExchangeEnd::Held) => {}
            Ok(ex) => {
                return Verdict::fail(format!(
                    "the first connection could not be held open ({}), so concurrency could not be tested",
                    ex.silence(ctx)
                ));
            }
            Err(v) => return v,
        }
    }
    let ex = match exchange(ctx, probe) {
        Ok(ex) => ex,
        Err(v) => return v,
    };
    if ex.received.is_empty() {
        return Verdict::fail(format!(
            "while another client held a connection open with half a request, {} got no response within {}: the server handles one connection at a time; start a thread per connection after accept()",
            ex.request(),
            secs(ex.elapsed)
        ));
    }
    match status_of(ctx, &ex) {
        Ok(code) if code == spec.status.unwrap_or(200) => Verdict::pass(),
        Ok(code) => Verdict::fail(format!(
            "while another connection was held open, {} returned status {code}",
            ex.request()
        )),
        Err(v) => v,
    }
}
