//! The `runs` check: the program exits on its own, with the expected status, in time.

use super::{Ctx, Verdict, last_lines};
use crate::outcome::ExitKind;
use crate::sandbox::diagnose::diagnose;
use crate::spec::CheckSpec;
use crate::trace::{EventKind, Stream};

/// Lines of stderr shown as evidence.
const STDERR_TAIL: usize = 8;

pub(super) fn runs(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let expected = spec.exit_code.unwrap_or(0);
    let stderr = ctx.trace.lines(Stream::Stderr);
    let build_output = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::BuildFailed { output, .. } => Some(output.as_str()),
        _ => None,
    });
    let leftovers = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Leftovers { count } => Some(*count),
        _ => None,
    });
    let mut diag_source = stderr.join("\n");
    if let Some(b) = build_output {
        diag_source.push('\n');
        diag_source.push_str(b);
    }
    let mut evidence: Vec<String> = diagnose(&diag_source)
        .into_iter()
        .map(|d| format!("diagnosis: {d}"))
        .collect();
    let Some((_, exit)) = ctx.trace.exit() else {
        return Verdict::fail("the program never ran").with_evidence(evidence);
    };
    if *exit == ExitKind::Stopped && ctx.lab.program.role == crate::spec::Role::Server {
        // A server runs until netgrade stops it: that is its normal end.
        return Verdict::pass();
    }
    let message = match exit {
        ExitKind::Exited { code } if *code == expected => match leftovers {
            Some(n) if n > 0 => format!(
                "the program exited with status {code} but left {n} process{} running, which netgrade killed; a client should not fork or start background processes",
                if n == 1 { "" } else { "es" }
            ),
            _ => return Verdict::pass(),
        },
        ExitKind::Exited { code } if let Some(step) = super::bt::download::stopped_by(ctx) => {
            // A client that gives up on a refused announce or a peer that
            // never serves it is right to stop; that step is charged.
            return Verdict::skip(format!(
                "not judged: the program exited with status {code} after `{step}` went wrong (see `{step}`)"
            ));
        }
        ExitKind::Exited { code } => {
            evidence.extend(last_lines(stderr.iter().copied(), STDERR_TAIL, "stderr"));
            format!("the program exited with status {code}; expected {expected}")
        }
        ExitKind::DidNotStart { .. } => {
            if let Some(b) = build_output {
                evidence.extend(last_lines(b.lines(), STDERR_TAIL, "build"));
            }
            format!("the program {}", exit.describe())
        }
        ExitKind::TimedOut { .. } if super::heartbeat::hung_on_loss(ctx) => {
            return Verdict::skip(
                "not judged: the program hung waiting for a lost reply (see `no-hang-on-loss`)",
            );
        }
        ExitKind::TimedOut { .. } => {
            evidence.extend(last_lines(stderr.iter().copied(), STDERR_TAIL, "stderr"));
            format!(
                "the program {}: it did not finish on its own in time",
                exit.describe()
            )
        }
        other => {
            evidence.extend(last_lines(stderr.iter().copied(), STDERR_TAIL, "stderr"));
            format!("the program {}", other.describe())
        }
    };
    Verdict::fail(message).with_evidence(evidence)
}
