//! The JSON Schema of lab specs: the shape schemars derives from the spec
//! types, plus what JSON Schema can say about the rules `validate` enforces
//! (ranges, the parameters each check kind takes, the fields each server
//! kind takes, the servers and probes a check needs) and an example for every
//! number, so editors and `validate` give the same verdicts.
//!
//! `validate` walks a spec against this schema for its shape (see
//! `shape.rs`); the rules in `allOf` it enforces with messages of its own
//! (`load.rs`). A test grades one set of broken specs with both.

use serde_json::{Map, Value, json};

use super::{CheckKind, Lab, ServerKind, ZoneFile};

/// Fields whose examples the schema carries, and error messages quote.
fn examples() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("Lab", "seed", json!(1)),
        ("Lab", "name", json!("udp-pinger")),
        ("ServerSpec", "port", json!(12000)),
        ("ServerSpec", "tls_port", json!(465)),
        ("ServerSpec", "loss", json!(0.3)),
        ("ServerSpec", "drop", json!([3, 6, 7])),
        ("ServerSpec", "strict_crlf", json!(true)),
        ("ServerSpec", "pipelining", json!(true)),
        ("ServerSpec", "starttls", json!(false)),
        ("ServerSpec", "greeting_delay", json!("500ms")),
        ("InjectSpec", "times", json!(1)),
        ("DelayRange", "min", json!("40ms")),
        ("DelayRange", "max", json!("200ms")),
        (
            "ProgramSpec",
            "entry",
            json!(["UDPPingerClient.py", "*.py"]),
        ),
        ("ProgramSpec", "args", json!(["{host}", "{port}"])),
        ("ProgramSpec", "time_limit", json!("20s")),
        ("ProgramSpec", "build_time_limit", json!("60s")),
        ("ProgramSpec", "ready_timeout", json!("5s")),
        ("ProgramSpec", "output_limit", json!("64KiB")),
        ("ProgramSpec", "port", json!(6789)),
        ("ProgramSpec", "python_packages", json!(["numpy==1.26.4"])),
        ("LimitsSpec", "processes", json!(256)),
        ("LimitsSpec", "memory", json!("512MiB")),
        ("LimitsSpec", "cpu_time", json!("30s")),
        ("LimitsSpec", "file_size", json!("256MiB")),
        ("LimitsSpec", "open_files", json!(1024)),
        ("LimitsSpec", "disk", json!("512MiB")),
        ("LimitsSpec", "cpus", json!(0.5)),
        ("ProbeSpec", "timeout", json!("5s")),
        ("ProbeSpec", "idle", json!("1500ms")),
        ("ProbeSpec", "hold", json!(true)),
        ("DnsProbeSpec", "id", json!(4660)),
        ("DnsProbeSpec", "name", json!("www.example.com")),
        ("DnsProbeSpec", "opcode", json!(2)),
        (
            "DnsProbeSpec",
            "hex",
            json!("12 34 01 00 00 01 00 00 00 00 00 00 03 77"),
        ),
        ("CheckSpec", "points", json!(2)),
        ("CheckSpec", "count", json!(10)),
        ("CheckSpec", "first_seq", json!(1)),
        ("CheckSpec", "min_wait", json!("750ms")),
        ("CheckSpec", "max_wait", json!("3s")),
        ("CheckSpec", "tolerance", json!("100ms")),
        ("CheckSpec", "pattern", json!("(?i)request timed out")),
        ("CheckSpec", "exit_code", json!(0)),
        ("CheckSpec", "status", json!(200)),
        ("CheckSpec", "probes", json!(["hello", "missing"])),
        ("ServerSpec", "hierarchy", json!(true)),
        ("ZoneSpec", "origin", json!("example.com")),
        ("ZoneSpec", "ttl", json!(3600)),
        ("RecordSpec", "name", json!("www")),
        ("RecordSpec", "value", json!("10.0.0.1")),
        ("RecordSpec", "ttl", json!(300)),
        ("DnsFaults", "drop_first", json!(1)),
        ("ServerSpec", "interval", json!(60)),
        ("ServerSpec", "torrent", json!("payload")),
        ("ServerSpec", "has", json!([0, 1, 5])),
        ("ServerSpec", "gains", json!([7])),
        ("ServerSpec", "choke_until_interested", json!(true)),
        ("ServerSpec", "corrupt_pieces", json!([3])),
        ("ServerSpec", "disconnect_pieces", json!([2])),
        ("ServerSpec", "slow", json!("30ms")),
        ("TorrentSpec", "name", json!("payload")),
        ("LeechProbeSpec", "pieces", json!([0, 1, 2])),
        ("AnnounceProbeSpec", "scenario", json!("peer-list")),
        ("AnnounceProbeSpec", "path", json!("/announce")),
        ("AnnounceProbeSpec", "udp_port", json!(6969)),
        ("AnnounceProbeSpec", "udp_retry", json!("500ms")),
        ("LeechProbeSpec", "pipeline", json!(5)),
        ("LeechProbeSpec", "cancel", json!(true)),
        ("LeechProbeSpec", "swarm", json!(true)),
        ("CrowdSpec", "fast", json!(4)),
        ("CrowdSpec", "slow", json!(4)),
        ("CrowdSpec", "duration", json!("9s")),
        ("CrowdSpec", "gap", json!("250ms")),
        ("CrowdSpec", "stagger", json!("1500ms")),
        ("CheckSpec", "interval", json!("1s")),
        ("CheckSpec", "optimistic", json!("3s")),
        ("CheckSpec", "slots", json!(4)),
        ("ProbeSpec", "instance", json!(2)),
        ("ProgramSpec", "instances", json!(2)),
        ("TorrentSpec", "piece_length", json!(32768)),
        ("TorrentSpec", "size", json!(300000)),
        ("TorrentSpec", "path", json!("album")),
        ("DnsFaults", "wrong_id", json!([2])),
        ("DnsFaults", "truncated", json!([3])),
        ("DnsFaults", "malformed", json!([4])),
        ("CaptureSpec", "redirect_ports", json!(true)),
        ("TimingSpec", "tolerance", json!("250ms")),
    ]
}

/// Every optional check parameter, as named in YAML.
pub const CHECK_PARAMS: [&str; 21] = [
    "count",
    "first_seq",
    "min_wait",
    "max_wait",
    "tolerance",
    "pattern",
    "exit_code",
    "probe",
    "probes",
    "file",
    "status",
    "interval",
    "optimistic",
    "slots",
    "question",
    "label",
    "expect",
    "unit",
    "within",
    "options",
    "mistakes",
];

/// The server fields that belong to one kind of server.
pub fn server_only_fields(kind: ServerKind) -> &'static [&'static str] {
    match kind {
        ServerKind::UdpPinger => &["drop", "loss"],
        ServerKind::Smtp => &[
            "greeting_delay",
            "strict_crlf",
            "pipelining",
            "inject",
            "starttls",
            "tls_port",
        ],
        ServerKind::Pop3 => &["user", "password", "maildrop"],
        ServerKind::Http => &["sites"],
        ServerKind::Dns => &["zones", "hierarchy", "faults"],
        ServerKind::Tracker => &["interval"],
        ServerKind::Peer => &[
            "torrent",
            "has",
            "gains",
            "choke_until_interested",
            "corrupt_pieces",
            "disconnect_pieces",
            "slow",
        ],
    }
}

/// The server kinds, in documentation order.
pub const SERVER_KINDS: [ServerKind; 7] = [
    ServerKind::UdpPinger,
    ServerKind::Http,
    ServerKind::Smtp,
    ServerKind::Pop3,
    ServerKind::Dns,
    ServerKind::Tracker,
    ServerKind::Peer,
];

/// The largest TTL (RFC 2181 §8).
pub const MAX_TTL: u32 = 2_147_483_647;

/// A pip requirement netgrade accepts: a name, optional extras, optional
/// version specifiers; no URLs, markers or options.
pub const REQUIREMENT: &str = r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\])?(?:\s*(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+(?:\s*,\s*(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?$";

/// The lab spec's JSON Schema.
pub fn lab_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Lab)).expect("schema is JSON");
    add_examples(&mut schema);
    shape_rules(&mut schema);
    schema["allOf"] = Value::Array(lab_rules());
    let defs = &mut schema["$defs"];
    defs["CheckSpec"]["allOf"] = Value::Array(check_rules());
    defs["ServerSpec"]["allOf"] = Value::Array(server_rules());
    schema
}

/// The JSON Schema of a zone file (`netgrade serve dns --zone FILE`): its
/// zones as a lab's dns server has them.
pub fn zone_file_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(ZoneFile)).expect("schema is JSON");
    add_examples(&mut schema);
    merge(&mut schema["properties"]["zones"], &json!({"minItems": 1}));
    dns_shape_rules(&mut schema["$defs"]);
    schema
}

fn add_examples(schema: &mut Value) {
    for (def, field, example) in examples() {
        let props = if def == "Lab" {
            &mut schema["properties"]
        } else {
            &mut schema["$defs"][def]["properties"]
        };
        // A zone file has the DNS definitions only.
        let Some(prop) = props.get_mut(field) else {
            assert!(
                schema.get("title") != Some(&json!("Lab")),
                "the schema has no {def}.{field}"
            );
            continue;
        };
        prop["examples"] = json!([example]);
    }
}

/// What the definitions of zones take beyond their types: TTLs within
/// RFC 2181's range, names not blank, query numbers from 1, addresses
/// where A and AAAA records need them.
fn dns_shape_rules(defs: &mut Value) {
    let non_blank = json!({"minLength": 1, "pattern": "\\S"});
    let ttl = json!({"maximum": MAX_TTL});
    merge(&mut defs["ZoneSpec"]["properties"]["ttl"], &ttl);
    merge(&mut defs["RecordSpec"]["properties"]["ttl"], &ttl);
    merge(&mut defs["ZoneSpec"]["properties"]["origin"], &non_blank);
    merge(&mut defs["RecordSpec"]["properties"]["name"], &non_blank);
    for list in ["wrong_id", "truncated", "malformed"] {
        merge(
            &mut defs["DnsFaults"]["properties"][list]["items"],
            &json!({"minimum": 1}),
        );
    }
    let address = |rtype: &str, format: &str| {
        json!({
            "if": {"properties": {"type": {"const": rtype}}, "required": ["type"]},
            "then": {"properties": {"value": {"format": format}}},
        })
    };
    defs["RecordSpec"]["allOf"] = json!([address("A", "ipv4"), address("AAAA", "ipv6")]);
}

/// Ranges and formats the derived schema lacks.
fn shape_rules(schema: &mut Value) {
    let non_blank = json!({"minLength": 1, "pattern": "\\S"});
    merge(&mut schema["properties"]["name"], &non_blank);
    merge(&mut schema["properties"]["checks"], &json!({"minItems": 1}));
    let defs = &mut schema["$defs"];
    merge(&mut defs["ServerSpec"]["properties"]["name"], &non_blank);
    merge(
        &mut defs["ServerSpec"]["properties"]["loss"],
        &json!({"minimum": 0, "maximum": 1}),
    );
    merge(
        &mut defs["ServerSpec"]["properties"]["drop"]["items"],
        &json!({"minimum": 1}),
    );
    merge(
        &mut defs["CheckSpec"]["properties"]["points"],
        &json!({"minimum": 0}),
    );
    merge(
        &mut defs["CheckSpec"]["properties"]["pattern"],
        &json!({"format": "regex"}),
    );
    merge(
        &mut defs["CheckSpec"]["properties"]["code"],
        &json!({"format": "regex"}),
    );
    merge(
        &mut defs["CheckSpec"]["properties"]["status"],
        &json!({"minimum": 100, "maximum": 599}),
    );
    merge(&mut defs["CheckSpec"]["properties"]["id"], &non_blank);
    merge(&mut defs["ProbeSpec"]["properties"]["id"], &non_blank);
    merge(
        &mut defs["DnsProbeSpec"]["properties"]["opcode"],
        &json!({"maximum": 15}),
    );
    merge(
        &mut defs["DnsProbeSpec"]["properties"]["hex"],
        &json!({"pattern": "^\\s*([0-9A-Fa-f]\\s*[0-9A-Fa-f]\\s*)*$"}),
    );
    merge(&mut defs["CaseSpec"]["properties"]["id"], &non_blank);
    merge(
        &mut defs["ServerPatch"]["properties"]["loss"],
        &json!({"minimum": 0, "maximum": 1}),
    );
    merge(
        &mut defs["ServerPatch"]["properties"]["drop"]["items"],
        &json!({"minimum": 1}),
    );
    merge(
        &mut defs["Redaction"]["properties"]["pattern"],
        &json!({"format": "regex"}),
    );
    merge(
        &mut defs["ProgramSpec"]["properties"]["entry"],
        &json!({"minItems": 1}),
    );
    merge(
        &mut defs["ProgramSpec"]["properties"]["python_packages"]["items"],
        &json!({"pattern": REQUIREMENT}),
    );
    merge(
        &mut defs["ServerSpec"]["properties"]["zones"],
        &json!({"minItems": 1}),
    );
    dns_shape_rules(defs);
    merge(
        &mut defs["LimitsSpec"]["properties"]["cpus"],
        &json!({"exclusiveMinimum": 0}),
    );
    let scalar_text = json!({"type": ["string", "integer", "number", "boolean"]});
    defs["ProgramSpec"]["properties"]["env"]["additionalProperties"] = scalar_text.clone();
    defs["ProgramSpec"]["properties"]["args"]["items"] = scalar_text;
}

fn merge(target: &mut Value, extra: &Value) {
    let (Value::Object(t), Value::Object(e)) = (target, extra) else {
        panic!("schema fragments are objects");
    };
    for (k, v) in e {
        t.insert(k.clone(), v.clone());
    }
}

/// A check of kind `kind`: its `kind` says so, or it has none and its id does.
fn check_is(kinds: &[CheckKind]) -> Value {
    let names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
    json!({"anyOf": [
        {"required": ["kind"], "properties": {"kind": {"enum": names}}},
        {"not": {"required": ["kind"]}, "properties": {"id": {"enum": names}}},
    ]})
}

/// Each check kind takes only its own parameters; an id that is no kind needs `kind`.
fn check_rules() -> Vec<Value> {
    let all: Vec<_> = CheckKind::ALL.iter().map(|k| k.name()).collect();
    let mut rules = vec![json!({
        "if": {"not": {"required": ["kind"]}},
        "then": {"properties": {"id": {"enum": all}}},
    })];
    for kind in CheckKind::ALL {
        let refused: Map<String, Value> = CHECK_PARAMS
            .iter()
            .filter(|p| !kind.params().contains(p))
            .map(|p| (p.to_string(), Value::Bool(false)))
            .collect();
        rules.push(json!({"if": check_is(&[kind]), "then": {"properties": refused}}));
    }
    rules
}

/// Each server kind takes only its own fields; pop3 needs its mailbox; the
/// pinger drops by schedule or by rate, not both.
fn server_rules() -> Vec<Value> {
    let mut rules = Vec::new();
    for kind in SERVER_KINDS {
        let refused: Map<String, Value> = SERVER_KINDS
            .iter()
            .filter(|k| **k != kind)
            .flat_map(|k| server_only_fields(*k))
            .map(|f| (f.to_string(), Value::Bool(false)))
            .collect();
        rules.push(json!({
            "if": {"properties": {"kind": {"const": kind.name()}}, "required": ["kind"]},
            "then": {"properties": refused},
        }));
    }
    rules.push(json!({
        "if": {"properties": {"kind": {"const": "pop3"}}, "required": ["kind"]},
        "then": {"required": ["user", "password", "maildrop"]},
    }));
    rules.push(json!({
        "if": {"properties": {"kind": {"const": "dns"}}, "required": ["kind"]},
        "then": {"required": ["zones"], "properties": {"zones": {"type": "array"}}},
    }));
    rules.push(json!({"not": {"required": ["loss", "drop"]}}));
    rules
}

/// Rules across the lab: the servers and probes checks need, the role probes need.
fn lab_rules() -> Vec<Value> {
    let mut rules = vec![
        json!({
            "if": {"required": ["probes"], "properties": {"probes": {"minItems": 1}}},
            "then": {"properties": {"program": {"required": ["role"], "properties": {"role": {"const": "server"}}}}},
        }),
        json!({
            "if": {"required": ["servers"], "properties": {"servers": {"contains": {"properties": {"kind": {"const": "http"}}}}}},
            "then": {"required": ["data"], "properties": {"data": {"type": "string"}}},
        }),
        json!({
            "if": {"properties": {"checks": {"contains": check_is(&[CheckKind::Transcript])}}},
            "then": {"required": ["golden"], "properties": {"golden": {"type": "string"}}},
        }),
    ];
    let probing: Vec<_> = CheckKind::ALL
        .into_iter()
        .filter(|k| k.needs_probes())
        .collect();
    rules.push(json!({
        "if": {"properties": {"checks": {"contains": check_is(&probing)}}},
        "then": {"required": ["probes"], "properties": {"probes": {"minItems": 1}}},
    }));
    for server in SERVER_KINDS {
        let readers: Vec<_> = CheckKind::ALL
            .into_iter()
            .filter(|k| k.needs_server() == Some(server))
            .collect();
        if readers.is_empty() {
            continue;
        }
        rules.push(json!({
            "if": {"properties": {"checks": {"contains": check_is(&readers)}}},
            "then": {
                "required": ["servers"],
                "properties": {"servers": {"contains": {"properties": {"kind": {"const": server.name()}}, "required": ["kind"]}}},
            },
        }));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_a_check_field() {
        let schema = lab_schema();
        let props = &schema["$defs"]["CheckSpec"]["properties"];
        for p in CHECK_PARAMS {
            assert!(props.get(p).is_some(), "{p}");
        }
        for kind in CheckKind::ALL {
            for p in kind.params() {
                assert!(CHECK_PARAMS.contains(p), "{p}");
            }
        }
        let server = &schema["$defs"]["ServerSpec"]["properties"];
        for kind in SERVER_KINDS {
            for f in server_only_fields(kind) {
                assert!(server.get(f).is_some(), "{f}");
            }
        }
    }

    #[test]
    fn numbers_carry_examples() {
        let schema = lab_schema();
        assert_eq!(
            schema["$defs"]["ServerSpec"]["properties"]["port"]["examples"],
            json!([12000])
        );
    }
}
