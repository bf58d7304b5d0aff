//! The numbers a lab's texts name, taken from the lab itself: how many pings
//! it expects, from which sequence number, how long a client may wait after a
//! lost one, where its servers listen, who logs in.
//!
//! Check messages read them here rather than saying "10 pings" or
//! `range(1, 11)` on a lab that asks for five, and a check's `title` and
//! `hint` may name them as placeholders ([`expand`]): `{count}`,
//! `{first_seq}`, `{last_seq}`, `{end_seq}`, `{wait}`, `{min_wait}`,
//! `{max_wait}`, `{host}`, `{port}`, `{addr}`, `{user}`, `{password}`, `{time_limit}`.

use crate::spec::{CheckKind, CheckSpec, Dur, Lab, ServerKind, ServerSpec};

/// Pings a pinger lab expects when no check says (the handout's ten).
pub const DEFAULT_COUNT: u32 = 10;
/// Shortest wait after a lost ping `waits-for-timeout` accepts by default.
pub const DEFAULT_MIN_WAIT: Dur = Dur::from_millis(750);
/// Longest wait after a lost ping `waits-for-timeout` accepts by default.
pub const DEFAULT_MAX_WAIT: Dur = Dur::from_secs(3);

/// The placeholders [`expand`] knows, for documentation and messages.
pub const PLACEHOLDERS: [&str; 13] = [
    "count",
    "first_seq",
    "last_seq",
    "end_seq",
    "wait",
    "min_wait",
    "max_wait",
    "host",
    "port",
    "addr",
    "user",
    "password",
    "time_limit",
];

/// The first of `lab`'s checks of one of `kinds` whose `param` is set.
fn from_checks<T>(
    lab: &Lab,
    kinds: &[CheckKind],
    param: impl Fn(&CheckSpec) -> Option<T>,
) -> Option<T> {
    kinds.iter().find_map(|kind| {
        lab.checks
            .iter()
            .filter(|c| c.kind() == Some(*kind))
            .find_map(&param)
    })
}

/// Whether `lab` has a check that reads a pinger's traffic.
pub fn has_ping_checks(lab: &Lab) -> bool {
    lab.checks
        .iter()
        .any(|c| c.kind().and_then(CheckKind::needs_server) == Some(ServerKind::UdpPinger))
}

/// How many pings `lab` expects: `ping-count`'s `count`, else that of
/// `ping-format` or `reports-stats`, else the handout's ten.
pub fn ping_count(lab: &Lab) -> u32 {
    from_checks(
        lab,
        &[
            CheckKind::PingCount,
            CheckKind::PingFormat,
            CheckKind::ReportsStats,
        ],
        |c| c.count,
    )
    .unwrap_or(DEFAULT_COUNT)
}

/// The first sequence number `lab` expects (`ping-format`'s `first_seq`, else 1).
pub fn first_seq(lab: &Lab) -> u32 {
    from_checks(lab, &[CheckKind::PingFormat], |c| c.first_seq).unwrap_or(1)
}

/// The waits after a lost ping `lab` accepts (`waits-for-timeout`'s, else the defaults).
pub fn waits(lab: &Lab) -> (Dur, Dur) {
    (
        from_checks(lab, &[CheckKind::WaitsForTimeout], |c| c.min_wait).unwrap_or(DEFAULT_MIN_WAIT),
        from_checks(lab, &[CheckKind::WaitsForTimeout], |c| c.max_wait).unwrap_or(DEFAULT_MAX_WAIT),
    )
}

/// The wait after a lost ping that `min`..`max` asks for, for people: "about
/// 1 s" with the defaults (the handout's one-second timeout), else the range.
pub fn wait_wanted(min: Dur, max: Dur) -> String {
    if (min, max) == (DEFAULT_MIN_WAIT, DEFAULT_MAX_WAIT) {
        "about 1 s".into()
    } else {
        format!("between {min} and {max}")
    }
}

/// The first server of `lab` of `kind`.
pub fn server(lab: &Lab, kind: ServerKind) -> Option<&ServerSpec> {
    lab.servers.iter().find(|s| s.kind.value == kind)
}

/// The server check `spec` reads: the first of its kind, else the lab's first.
fn server_of<'a>(spec: &CheckSpec, lab: &'a Lab) -> Option<&'a ServerSpec> {
    spec.kind()
        .and_then(CheckKind::needs_server)
        .and_then(|kind| server(lab, kind))
        .or_else(|| lab.servers.first())
}

/// The value of placeholder `name` in the texts of check `spec`.
fn value(name: &str, spec: &CheckSpec, lab: &Lab) -> Option<String> {
    let takes = |param: &str| spec.kind().is_some_and(|k| k.params().contains(&param));
    let count = spec
        .count
        .filter(|_| takes("count"))
        .unwrap_or_else(|| ping_count(lab));
    let first = spec
        .first_seq
        .filter(|_| takes("first_seq"))
        .unwrap_or_else(|| first_seq(lab));
    let (min, max) = waits(lab);
    let (min, max) = (spec.min_wait.unwrap_or(min), spec.max_wait.unwrap_or(max));
    let read = server_of(spec, lab);
    let pop3 = read
        .filter(|s| s.kind.value == ServerKind::Pop3)
        .or_else(|| server(lab, ServerKind::Pop3));
    Some(match name {
        "count" => count.to_string(),
        "first_seq" => first.to_string(),
        "last_seq" => (u64::from(first) + u64::from(count))
            .saturating_sub(1)
            .to_string(),
        "end_seq" => (u64::from(first) + u64::from(count)).to_string(),
        "wait" => wait_wanted(min, max),
        "min_wait" => min.to_string(),
        "max_wait" => max.to_string(),
        "host" => read?.host.clone(),
        "port" => read?.port.to_string(),
        "addr" => read.map(|s| format!("{}:{}", s.host, s.port))?,
        "user" => pop3?.user.clone()?,
        "password" => pop3?.password.clone()?,
        "time_limit" => lab.program.time_limit.to_string(),
        _ => return None,
    })
}

/// `text` (a check's title or hint) with each placeholder `{name}` replaced
/// by the lab's value. Braces around anything else (`f"Ping {seq}"`) stay as
/// written, as does a placeholder without a value (`{user}` in a lab without
/// a POP3 server); `{{count}}` is a literal `{count}`.
pub fn expand(text: &str, spec: &CheckSpec, lab: &Lab) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let name_of = |s: &str| -> Option<usize> {
            let close = s.find('}')?;
            PLACEHOLDERS.contains(&&s[..close]).then_some(close)
        };
        if let Some(inner) = after.strip_prefix("{{")
            && let Some(close) = name_of(inner)
            && inner[close..].starts_with("}}")
        {
            out.push('{');
            out.push_str(&inner[..close]);
            out.push('}');
            rest = &inner[close + 2..];
            continue;
        }
        let inner = &after[1..];
        match name_of(inner).and_then(|close| Some((close, value(&inner[..close], spec, lab)?))) {
            Some((close, v)) => {
                out.push_str(&v);
                rest = &inner[close + 1..];
            }
            None => {
                out.push('{');
                rest = inner;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(extra_checks: &str, servers: &str) -> Lab {
        let yaml = format!(
            "name: t\ntitle: t\nservers:\n{servers}\nprogram:\n  entry: [client.py]\n  time_limit: 8s\nchecks:\n  - {{ id: runs, title: r, points: 1 }}\n{extra_checks}"
        );
        crate::spec::load_str("t.yaml", &yaml).unwrap()
    }

    const PINGER: &str = "  - { name: pinger, kind: udp-pinger, port: 12000 }";

    #[test]
    fn placeholders_take_the_labs_numbers() {
        let lab = lab(
            "  - { id: ping-count, title: \"Exactly {count} pings\", points: 1, count: 5, hint: \"for seq in range({first_seq}, {end_seq}): f'Ping {seq}' ({first_seq} to {last_seq})\" }\n  - { id: waits-for-timeout, title: w, points: 1, min_wait: 1.5s, max_wait: 4s }\n",
            PINGER,
        );
        let check = &lab.checks[1];
        assert_eq!(expand(&check.title, check, &lab), "Exactly 5 pings");
        assert_eq!(
            expand(check.hint.as_deref().unwrap(), check, &lab),
            "for seq in range(1, 6): f'Ping {seq}' (1 to 5)"
        );
        // Another check of the lab names the same numbers.
        let runs = &lab.checks[0];
        assert_eq!(
            expand(
                "{count} pings to {addr} ({host} {port}) in {time_limit}, waits {min_wait}–{max_wait}, {wait}",
                runs,
                &lab
            ),
            "5 pings to 127.0.0.1:12000 (127.0.0.1 12000) in 8 s, waits 1.5 s–4 s, between 1.5 s and 4 s"
        );
        assert_eq!(
            wait_wanted(waits(&lab).0, waits(&lab).1),
            "between 1.5 s and 4 s"
        );
    }

    #[test]
    fn other_braces_and_escapes_stay() {
        let lab = lab("", PINGER);
        let runs = &lab.checks[0];
        assert_eq!(
            expand(
                "f\"Ping {seq} {time.time()}\" {{count}} {count} {user} {",
                runs,
                &lab
            ),
            "f\"Ping {seq} {time.time()}\" {count} 10 {user} {"
        );
        assert_eq!(ping_count(&lab), DEFAULT_COUNT);
        assert_eq!(wait_wanted(waits(&lab).0, waits(&lab).1), "about 1 s");
    }

    #[test]
    fn mail_placeholders_name_the_pop3_mailbox() {
        let lab = crate::spec::load_builtin("pop3-download-keep")
            .unwrap()
            .unwrap();
        let login = lab.checks.iter().find(|c| c.id.value == "login").unwrap();
        assert_eq!(
            expand("USER {user}, PASS {password} at {addr}", login, &lab),
            "USER alice, PASS wonderland at 127.0.0.1:1110"
        );
        assert_eq!(
            expand(login.hint.as_deref().unwrap(), login, &lab),
            "Send \"USER alice\\r\\n\" and \"PASS wonderland\\r\\n\", each after reading the +OK before it."
        );
    }
}
