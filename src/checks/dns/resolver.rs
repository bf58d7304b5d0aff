//! Checks of the `dns-resolver` lab.

use crate::checks::{Ctx, Verdict};
use crate::spec::CheckSpec;

/// `starts-at-root`.
pub fn starts_at_root(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `follows-referrals`.
pub fn follows_referrals(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `uses-glue`.
pub fn uses_glue(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `resolves-glueless-ns`.
pub fn resolves_glueless_ns(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `follows-cname`.
pub fn follows_cname(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `final-answer`.
pub fn final_answer(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `caches`.
pub fn caches(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `nxdomain`.
pub fn nxdomain(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}
