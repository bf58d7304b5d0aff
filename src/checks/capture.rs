//! The `uses-arguments` check: the program talks to the host and port it is
//! given. Hard-coded destinations still reach the lab's servers (the
//! capture); a lab that wants students to use their arguments charges it here.

use super::{Ctx, Verdict};
use crate::trace::{EventKind, Transport};

/// Destinations named in the evidence, at most.
const MAX_SHOWN: usize = 8;

pub(super) fn uses_arguments(ctx: &Ctx) -> Verdict {
    let capturing = ctx
        .trace
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Capturing { .. }));
    if !capturing {
        return Verdict::skip(
            "not checked: without a private network netgrade cannot see where the program sends",
        );
    }
    let given = given(ctx);
    let mut evidence = Vec::new();
    for (name, ip) in looked_up(ctx) {
        evidence.push(format!("looked up the name `{name}` (answered {ip})"));
    }
    for (transport, to, _, n) in ctx.trace.captured() {
        evidence.push(format!(
            "{} to {to} ({n} flow{})",
            verb(transport),
            plural(n)
        ));
    }
    for (transport, to, n) in ctx.trace.strays() {
        evidence.push(format!(
            "{} to {to}, where nothing listens ({n} packet{})",
            verb(transport),
            plural(n)
        ));
    }
    if evidence.is_empty() {
        return Verdict::pass();
    }
    let first = evidence[0].clone();
    evidence.truncate(MAX_SHOWN);
    Verdict::fail(format!(
        "the program did not use the host and port it was given ({given}): it {first}; read the server's host and port from the command line (sys.argv[1], sys.argv[2]) instead of writing them into the program"
    ))
    .with_evidence(evidence)
}

/// The first server's address, as the program's arguments give it.
fn given(ctx: &Ctx) -> String {
    ctx.lab
        .servers
        .first()
        .map(|s| format!("{} {}", s.host, s.port))
        .unwrap_or_else(|| "none".into())
}

/// Names looked up other than `localhost` and reverse lookups, with the answer.
fn looked_up<'a>(ctx: &'a Ctx) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for e in &ctx.trace.events {
        if let EventKind::NameLookup { name, answers, .. } = &e.kind {
            let lower = name.to_ascii_lowercase();
            let skip = name.is_empty()
                || lower == "localhost"
                || lower.ends_with(".localhost")
                || lower.ends_with(".arpa")
                || out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if !skip {
                let answer = answers.first().cloned().unwrap_or_else(|| "nothing".into());
                out.push((name, answer));
            }
        }
    }
    out
}

fn verb(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "connected over TCP",
        Transport::Udp => "sent UDP datagrams",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Recorder;

    fn lab() -> crate::spec::Lab {
        crate::spec::load_builtin("udp-pinger").unwrap().unwrap()
    }

    #[test]
    fn without_capture_it_is_not_checked() {
        let lab = lab();
        let trace = Recorder::new().snapshot();
        let v = uses_arguments(&Ctx {
            trace: &trace,
            lab: &lab,
        });
        assert_eq!(v.status, crate::outcome::Status::Skip);
    }

    #[test]
    fn the_given_address_passes_a_hard_coded_one_fails() {
        let lab = lab();
        let rec = Recorder::new();
        rec.record(EventKind::Capturing {
            redirect_ports: true,
        });
        let clean = rec.snapshot();
        let v = uses_arguments(&Ctx {
            trace: &clean,
            lab: &lab,
        });
        assert_eq!(v.status, crate::outcome::Status::Pass);
        rec.record(EventKind::Captured {
            transport: Transport::Udp,
            from: "127.0.0.1:40000".parse().unwrap(),
            to: "191.101.232.165:12000".parse().unwrap(),
            server: "pinger".into(),
        });
        let trace = rec.snapshot();
        let v = uses_arguments(&Ctx {
            trace: &trace,
            lab: &lab,
        });
        assert_eq!(v.status, crate::outcome::Status::Fail);
        let m = v.message.unwrap();
        assert!(
            m.contains("191.101.232.165:12000") && m.contains("127.0.0.1 12000"),
            "{m}"
        );
    }
}
