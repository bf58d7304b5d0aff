//! Checks of the `dns-client` lab.

use crate::checks::{Ctx, Verdict};
use crate::spec::CheckSpec;

/// `query-format`.
pub fn query_format(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `random-id`.
pub fn random_id(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `prints-answers`.
pub fn prints_answers(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `mx`.
pub fn mx(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `cname`.
pub fn cname(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `nxdomain`.
pub fn nxdomain(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `ignores-wrong-id`.
pub fn ignores_wrong_id(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `retransmits`.
pub fn retransmits(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `tcp-fallback`.
pub fn tcp_fallback(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}
