//! DNS checks: the `dns-client` lab ([`client`]), read from the lab's DNS
//! server's record of queries and responses; the `dns-server` lab
//! ([`server`]), read from the probes netgrade sent to the student's server;
//! and the `dns-resolver` lab ([`resolver`]), read from the record of the
//! lab's hierarchy of name servers.

pub mod client;
pub mod resolver;
pub mod server;

use super::Ctx;
use crate::spec::ServerKind;

/// Whether the lab's DNS server is a hierarchy (a resolver lab).
pub fn is_hierarchy(ctx: &Ctx) -> bool {
    ctx.lab
        .servers
        .iter()
        .any(|s| s.kind.value == ServerKind::Dns && s.hierarchy == Some(true))
}
