//! DNS checks: the `dns-client` lab ([`client`]), read from the lab's DNS
//! server's record of queries and responses; the `dns-server` lab
//! ([`server`]), read from the probes netgrade sent to the student's server;
//! and the `dns-resolver` lab ([`resolver`]), read from the record of the
//! lab's hierarchy of name servers.

pub mod client;
pub mod resolver;
pub mod server;

use super::Ctx;

/// What a DNS client's or resolver's output says when a name does not
/// exist, in the words students use (`NXDOMAIN`, "does not exist", "no such
/// host", "could not be resolved", `rcode 3` …).
pub const NXDOMAIN_WORDS: &str = r"(?i)nxdomain|n[o']t\s+exist|non-?existent|no\s+such\s+(name|domain|host)|not\s+found|name\s+error|unknown\s+(host|domain|name)|rcode\s*[:=]?\s*3\b|can'?not\s+(be\s+)?(found|resolved?)|can'?t\s+(find|resolve)|could\s*n[o']t\s+(be\s+)?(found|resolved?)|does\s+not\s+resolve|no\s+answer";
use crate::spec::ServerKind;

/// Whether the lab's DNS server is a hierarchy (a resolver lab).
pub fn is_hierarchy(ctx: &Ctx) -> bool {
    ctx.lab
        .servers
        .iter()
        .any(|s| s.kind.value == ServerKind::Dns && s.hierarchy == Some(true))
}
