//! The `bt-tracker` checks: each reads the scenario of announces netgrade's
//! fake peers made to the student's tracker ([`EventKind::TrackerScenario`])
//! and its judgement, made by `probes::tracker` as the announces ran.

use crate::checks::{Ctx, Verdict};
use crate::spec::CheckSpec;
use crate::trace::EventKind;

/// Check `spec`: the scenario of its `probe`, or the one named as its kind.
pub fn scenario(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let kind = spec.kind().map_or("", |k| k.name());
    let found = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::TrackerScenario {
            probe,
            scenario,
            exchanges,
            judgement,
        } if spec
            .probe
            .as_deref()
            .map_or(scenario == kind, |p| p == probe) =>
        {
            Some((exchanges, judgement))
        }
        _ => None,
    });
    let Some((exchanges, judgement)) = found else {
        return Verdict::skip(format!(
            "not judged: no `{kind}` scenario ran (the tracker had stopped; see `runs`)"
        ));
    };
    match judgement {
        Ok(evidence) => Verdict::pass().with_evidence(evidence.clone()),
        Err(f) => {
            let mut evidence = f.evidence.clone();
            if evidence.is_empty() {
                evidence = exchanges.iter().take(4).cloned().collect();
            }
            Verdict::fail(f.message.clone()).with_evidence(evidence)
        }
    }
}
