//! Checks of the `dns-server` lab.

use crate::checks::{Ctx, Verdict};
use crate::spec::CheckSpec;

/// `header`.
pub fn header(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `question`.
pub fn question(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `answers`.
pub fn answers(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `compressed-query`.
pub fn compressed_query(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `multiple-questions`.
pub fn multiple_questions(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `forwards`.
pub fn forwards(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `malformed`.
pub fn malformed(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}

/// `nxdomain`.
pub fn nxdomain(_spec: &CheckSpec, _ctx: &Ctx) -> Verdict {
    Verdict::skip("not implemented yet")
}
