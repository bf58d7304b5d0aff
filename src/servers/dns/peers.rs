//! The DNS servers against clients nobody here wrote: dig, kdig, drill and
//! dnspython, in a network namespace of their own where the servers bind port 53 of
//! 127.0.0.1 (one server) or 127.0.0.2–4 (a hierarchy), started as a graded
//! run starts them ([`crate::servers::start`]).

use std::time::Duration;

use tokio::time::timeout;

use crate::sandbox::NetNs;
use crate::servers::RunningServers;
use crate::trace::{Dir, EventKind, Recorder, Transport};

/// The lab servers of `lab` (a fixture spec), running in a namespace.
struct Servers {
    ns: NetNs,
    rec: Recorder,
    running: RunningServers,
}

/// `None` without the privileges for namespaces.
fn start(lab: &str) -> Option<Servers> {
    let lab = crate::spec::load(std::path::Path::new(lab))
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let ns = super::super::udp::tests::capture_ns()?;
    let rec = Recorder::new();
    let running = crate::servers::start(&lab, lab.seed, Some(&ns), None, None, &rec)
        .unwrap_or_else(|e| panic!("{e:#}"));
    Some(Servers { ns, rec, running })
}

/// The flat server of `fixtures/specs/dns.yaml`, at 127.0.0.1:53.
fn flat() -> Option<Servers> {
    start("fixtures/specs/dns.yaml")
}

/// The hierarchy of `fixtures/specs/dns-hierarchy.yaml`.
fn hierarchy() -> Option<Servers> {
    start("fixtures/specs/dns-hierarchy.yaml")
}

impl Servers {
    /// Runs `program` in the namespace and returns its standard output; it
    /// must succeed.
    async fn run(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.ns.command(program);
        cmd.args(args);
        let output = timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{program} {args:?}: {stdout}{stderr}"
        );
        stdout
    }

    /// Runs `program` in the namespace and returns its standard output,
    /// whether it succeeds or not.
    async fn run_status(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.ns.command(program);
        cmd.args(args);
        match timeout(Duration::from_secs(30), cmd.output()).await {
            Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => String::new(),
        }
    }

    /// Runs `program` in the namespace and returns what it printed on
    /// standard output and standard error; it must succeed.
    async fn run_both(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.ns.command(program);
        cmd.args(args);
        let output = timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{program} {args:?}: {text}");
        text
    }

    /// `dig`, retrying after a second (the flat lab drops its first query).
    async fn dig(&self, args: &[&str]) -> String {
        let mut all = vec!["-4", "+tries=3", "+time=1"];
        all.extend_from_slice(args);
        self.run("dig", &all).await
    }

    /// A Python script, with `argv[1]` the given argument.
    async fn python(&self, script: &str, arg: &str) -> String {
        self.run("python3", &["-c", script, arg]).await
    }

    /// The messages recorded: direction, transport, index, where the query
    /// went, and the summary's flags.
    fn messages(&self) -> Vec<(Dir, Transport, u32, String, u16, Option<String>)> {
        self.rec
            .snapshot()
            .events
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::DnsMessage {
                    dir,
                    transport,
                    index,
                    local,
                    summary,
                    fault,
                    ..
                } => Some((
                    dir,
                    transport,
                    index,
                    local.ip().to_string(),
                    summary.map_or(0, |s| s.flags),
                    fault,
                )),
                _ => None,
            })
            .collect()
    }
}

/// Whether `text` has a line whose fields are `fields`, whitespace aside.
fn has_line(text: &str, fields: &str) -> bool {
    let want: Vec<&str> = fields.split_whitespace().collect();
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

#[tokio::test]
async fn dig_gets_answers_cname_chains_mx_nxdomain_and_nodata() {
    let Some(s) = flat() else { return };
    // The lab drops the first query and answers the second with a wrong ID
    // first: dig, asked for one try, meets both on the first lookups.
    let out = s.dig(&["@127.0.0.1", "www.example.com", "A"]).await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains(";; flags: qr aa rd;"), "{out}");
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    let out = s.dig(&["@127.0.0.1", "alias.example.com"]).await;
    assert!(
        has_line(&out, "alias.example.com. 300 IN CNAME www.example.com."),
        "{out}"
    );
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    let out = s.dig(&["@127.0.0.1", "example.com", "MX"]).await;
    assert!(
        has_line(&out, "example.com. 300 IN MX 10 mail.example.com."),
        "{out}"
    );
    assert!(
        has_line(&out, "mail.example.com. 300 IN A 10.0.0.25"),
        "{out}"
    );
    let out = s.dig(&["@127.0.0.1", "nope.example.com"]).await;
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains(";; flags: qr aa rd;"), "{out}");
    assert!(
        has_line(
            &out,
            "example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 60"
        ),
        "{out}"
    );
    let out = s
        .dig(&["+norec", "@127.0.0.1", "www.example.com", "TXT"])
        .await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains(";; flags: qr aa;"),
        "RD is echoed as sent: {out}"
    );
    assert!(out.contains("ANSWER: 0, AUTHORITY: 1"), "{out}");
    let out = s.dig(&["@127.0.0.1", "www.google.com"]).await;
    assert!(out.contains("status: REFUSED"), "{out}");
    // What the record holds: the lost query, the wrong ID then the right one.
    let m = s.messages();
    assert_eq!(m[0].0, Dir::In);
    assert_eq!(m[0].2, 1);
    let first_out = m.iter().find(|x| x.0 == Dir::Out).unwrap();
    assert_eq!(first_out.2, 2, "query 1 was dropped: {m:?}");
    assert_eq!(first_out.5.as_deref(), Some("wrong-id"));
    let trace = s.rec.snapshot();
    assert!(trace.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Dropped { server, index: 1 } if server == "dns"
    )));
    // The +norec query went out without RD.
    let norec = m
        .iter()
        .filter(|x| x.0 == Dir::In)
        .find(|x| x.4 & 0x0100 == 0)
        .expect("a query without RD");
    assert_eq!(norec.1, Transport::Udp);
}

#[tokio::test]
async fn a_large_answer_is_truncated_over_udp_and_dig_retries_over_tcp() {
    let Some(s) = flat() else { return };
    let out = s
        .dig(&["+noedns", "+ignore", "@127.0.0.1", "many.example.com"])
        .await;
    assert!(out.contains(";; flags: qr aa tc rd;"), "{out}");
    assert!(out.contains("ANSWER: 0,"), "{out}");
    let out = s
        .dig(&["+noedns", "+notcp", "@127.0.0.1", "many.example.com"])
        .await;
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(out.contains("ANSWER: 30,"), "{out}");
    let out = s.dig(&["+tcp", "@127.0.0.1", "many.example.com"]).await;
    assert!(out.contains("ANSWER: 30,"), "{out}");
    assert!(out.contains("(TCP)"), "{out}");
    // (A busy machine may make dig try a query twice: counts are at least.)
    let m = s.messages();
    let tcp = |dir: Dir| {
        m.iter()
            .filter(|x| x.1 == Transport::Tcp && x.0 == dir)
            .count()
    };
    assert!(tcp(Dir::In) >= 2 && tcp(Dir::Out) == tcp(Dir::In), "{m:?}");
    let truncated: Vec<bool> = m
        .iter()
        .filter(|x| x.0 == Dir::Out && x.1 == Transport::Udp && x.5.is_none())
        .map(|x| x.4 & 0x0200 != 0)
        .collect();
    assert!(
        truncated.len() >= 2 && truncated.iter().all(|tc| *tc),
        "{m:?}"
    );
}

/// dnspython's own queries, answers and fallback to TCP.
const DNSPYTHON: &str = r#"
import sys, dns.exception, dns.message, dns.query, dns.rcode, dns.rdatatype, dns.flags
server = sys.argv[1]
def ask(name, rdtype, **kw):
    q = dns.message.make_query(name, rdtype, use_edns=False)
    for attempt in range(4):
        try:
            return dns.query.udp(q, server, timeout=2, **kw)
        except (dns.exception.Timeout, dns.query.BadResponse, dns.message.ShortHeader):
            continue
    raise SystemExit("no answer for " + name)
r = ask("www.example.com", "A", ignore_errors=True)
print("A", dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA), [a.address for a in r.answer[0]])
r = ask("alias.example.com", "A")
print("CNAME", [(str(rr.name), dns.rdatatype.to_text(rr.rdtype)) for rr in r.answer])
r = ask("example.com", "MX")
print("MX", [(m.preference, str(m.exchange)) for m in r.answer[0]], [str(a.name) for a in r.additional])
r = ask("nope.example.com", "A")
print("NX", dns.rcode.to_text(r.rcode()), [dns.rdatatype.to_text(a.rdtype) for a in r.authority], r.authority[0].ttl)
r = ask("www.example.com", "MX")
print("NODATA", dns.rcode.to_text(r.rcode()), len(r.answer), dns.rdatatype.to_text(r.authority[0].rdtype))
r = ask("many.example.com", "A")
print("UDP", bool(r.flags & dns.flags.TC), len(r.answer))
q = dns.message.make_query("many.example.com", "A", use_edns=False)
r = dns.query.tcp(q, server, timeout=5)
print("TCP", bool(r.flags & dns.flags.TC), len(r.answer[0]))
r, tcp = dns.query.udp_with_fallback(q, server, timeout=5)
print("FALLBACK", tcp, len(r.answer[0]))
r = ask("example.com", "TXT")
print("TXT", [b"".join(t.strings).decode() for t in r.answer[0]])
"#;

#[tokio::test]
async fn dnspython_reads_every_kind_of_answer_and_falls_back_to_tcp() {
    let Some(s) = flat() else { return };
    let out = s.python(DNSPYTHON, "127.0.0.1").await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "A NOERROR True ['10.0.0.1']",
            "CNAME [('alias.example.com.', 'CNAME'), ('www.example.com.', 'A')]",
            "MX [(10, 'mail.example.com.')] ['mail.example.com.']",
            "NX NXDOMAIN ['SOA'] 60",
            "NODATA NOERROR 0 SOA",
            "UDP True 0",
            "TCP False 30",
            "FALLBACK True 30",
            "TXT ['v=spf1 mx -all']",
        ]
    );
}

#[tokio::test]
async fn the_hierarchy_refers_from_root_to_tld_to_the_authoritative_server() {
    let Some(s) = hierarchy() else { return };
    let out = s.dig(&["+norec", "@127.0.0.2", "www.example.com"]).await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(
        out.contains(";; flags: qr;"),
        "a referral is not authoritative: {out}"
    );
    assert!(
        out.contains("ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 2"),
        "{out}"
    );
    assert!(
        has_line(&out, "com. 3600 IN NS a.gtld-servers.net."),
        "{out}"
    );
    assert!(
        has_line(&out, "a.gtld-servers.net. 3600 IN A 127.0.0.3"),
        "{out}"
    );
    let out = s.dig(&["+norec", "@127.0.0.3", "www.example.com"]).await;
    assert!(out.contains(";; flags: qr;"), "{out}");
    assert!(
        has_line(&out, "example.com. 3600 IN NS ns1.example.com."),
        "{out}"
    );
    assert!(
        has_line(&out, "ns1.example.com. 3600 IN A 127.0.0.4"),
        "{out}"
    );
    let out = s.dig(&["+norec", "@127.0.0.4", "www.example.com"]).await;
    assert!(out.contains(";; flags: qr aa;"), "{out}");
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    // A delegation to a name server in another zone carries no glue.
    let out = s.dig(&["+norec", "@127.0.0.3", "www.glueless.com"]).await;
    assert!(
        has_line(&out, "glueless.com. 3600 IN NS ns.example.net."),
        "{out}"
    );
    assert!(
        out.contains("AUTHORITY: 1, ADDITIONAL: 1"),
        "only the OPT record: {out}"
    );
    // A server answers for its own zones only; a real root's address reaches the root.
    let out = s.dig(&["+norec", "@127.0.0.4", "www.example.org"]).await;
    assert!(out.contains("status: REFUSED"), "{out}");
    let out = s.dig(&["+norec", "@127.0.0.3", "example.com", "NS"]).await;
    assert!(
        out.contains(";; flags: qr;"),
        "the parent's NS is a referral: {out}"
    );
    let hints = String::from_utf8(s.running.files[0].1.clone()).unwrap();
    assert_eq!(s.running.files[0].0, "named.root");
    assert!(
        has_line(&hints, ". 3600000 IN NS a.root-servers.net."),
        "{hints}"
    );
    assert!(
        has_line(&hints, "a.root-servers.net. 3600000 IN A 127.0.0.2"),
        "{hints}"
    );
    let m = s.messages();
    let to: Vec<&str> = m
        .iter()
        .filter(|x| x.0 == Dir::In)
        .map(|x| x.3.as_str())
        .collect();
    assert_eq!(to[..3], ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
}

#[tokio::test]
async fn dig_trace_resolves_through_the_hierarchy() {
    let Some(s) = hierarchy() else { return };
    // dig +trace looks up each name server's address through the system,
    // not from the glue (which the other tests check): a hosts file names them.
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let nsswitch = dir.path().join("nsswitch.conf");
    std::fs::write(
        &hosts,
        "127.0.0.2 a.root-servers.net\n127.0.0.3 a.gtld-servers.net\n127.0.0.4 ns1.example.com\n",
    )
    .unwrap();
    std::fs::write(&nsswitch, "hosts: files\n").unwrap();
    let script = format!(
        "mount --bind {} /etc/hosts && mount --bind {} /etc/nsswitch.conf && dig -4 +tries=1 +time=5 +trace @127.0.0.2 www.example.com",
        hosts.display(),
        nsswitch.display()
    );
    let out = s.run("unshare", &["--mount", "sh", "-c", &script]).await;
    assert!(
        out.contains("from 127.0.0.2#53(a.root-servers.net)"),
        "{out}"
    );
    assert!(
        out.contains("from 127.0.0.3#53(a.gtld-servers.net)"),
        "{out}"
    );
    assert!(out.contains("from 127.0.0.4#53(ns1.example.com)"), "{out}");
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
}

/// An iterative resolver in dnspython: from the root hints, following
/// referrals, their glue, and, for a referral without glue, resolving the
/// name server's name from the root again. Prints each server asked.
const ITERATE: &str = r#"
import sys, dns.message, dns.query, dns.rdatatype, dns.flags, dns.rcode
hints = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) == 5 and f[3] == "A":
        hints[f[0]] = f[4]
roots = list(hints.values())
def resolve(name, depth=0):
    servers = roots
    while True:
        server = servers[0]
        print("  " * depth + "ask", server, name)
        q = dns.message.make_query(name, "A")
        q.flags &= ~dns.flags.RD
        r = dns.query.udp(q, server, timeout=5)
        if r.answer:
            return [a.address for rrset in r.answer for a in rrset if a.rdtype == dns.rdatatype.A]
        if r.rcode() != dns.rcode.NOERROR or r.flags & dns.flags.AA:
            return dns.rcode.to_text(r.rcode())
        ns = [str(rr.target) for rrset in r.authority for rr in rrset if rrset.rdtype == dns.rdatatype.NS]
        glue = [a.address for rrset in r.additional if rrset.rdtype == dns.rdatatype.A for a in rrset]
        servers = glue or resolve(ns[0], depth + 1)
print(resolve(sys.argv[2]))
"#;

#[tokio::test]
async fn dnspython_iterates_from_the_root_hints_with_and_without_glue() {
    let Some(s) = hierarchy() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hints = dir.path().join("named.root");
    std::fs::write(&hints, &s.running.files[0].1).unwrap();
    let hints = hints.to_str().unwrap();
    let out = s
        .run("python3", &["-c", ITERATE, hints, "www.glueless.com"])
        .await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "ask 127.0.0.2 www.glueless.com",
            "ask 127.0.0.3 www.glueless.com",
            "  ask 127.0.0.2 ns.example.net.",
            "  ask 127.0.0.3 ns.example.net.",
            "  ask 127.0.0.4 ns.example.net.",
            "ask 127.0.0.4 www.glueless.com",
            "['10.0.0.2']",
        ]
    );
    let out = s
        .run("python3", &["-c", ITERATE, hints, "nothing.example.com"])
        .await;
    assert_eq!(out.lines().last(), Some("NXDOMAIN"));
}

/// dnspython meets each damaged response: a wrong ID it refuses (or skips
/// with `ignore_errors`), a cut-short and a malformed one it cannot
/// read (an error, not a hang), and then the right answer.
const FAULTS: &str = r#"
import sys, dns.exception, dns.message, dns.query, dns.name
server = sys.argv[1]
def ask(**kw):
    q = dns.message.make_query("www.example.com", "A", use_edns=False)
    try:
        r = dns.query.udp(q, server, timeout=3, **kw)
        return "answer " + r.answer[0][0].address
    except dns.query.BadResponse:
        return "BadResponse"
    except dns.exception.Timeout:
        return "Timeout"
    except (dns.message.ShortHeader, dns.exception.FormError, dns.name.BadPointer, dns.name.BadLabelType) as e:
        return type(e).__name__
print(ask())
print(ask())
print(ask())
print(ask(ignore_errors=True))
print(ask())
"#;

#[tokio::test]
async fn dnspython_meets_each_fault_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("faults.yaml");
    std::fs::write(
        &lab,
        "name: faults\ntitle: F\nservers:\n  - name: dns\n    kind: dns\n    port: 53\n    faults: { wrong_id: [1, 4], truncated: [2], malformed: [3] }\n    zones:\n      - origin: example.com\n        records:\n          - { name: www, type: A, value: 10.0.0.1 }\nprogram:\n  entry: [client.py]\nchecks:\n  - { id: runs, title: r, points: 1 }\n",
    )
    .unwrap();
    let Some(s) = start(lab.to_str().unwrap()) else {
        return;
    };
    let out = s.python(FAULTS, "127.0.0.1").await;
    let lines: Vec<&str> = out.lines().collect();
    // The wrong ID: dnspython refuses the response it reads first.
    assert_eq!(lines[0], "BadResponse", "{out}");
    // Cut short and malformed: errors of dnspython's parser, at once.
    assert!(["FormError", "ShortHeader"].contains(&lines[1]), "{out}");
    assert!(["BadPointer", "FormError"].contains(&lines[2]), "{out}");
    assert_eq!(lines[3..], ["answer 10.0.0.1", "answer 10.0.0.1"], "{out}");
    let faults: Vec<Option<String>> = s
        .messages()
        .into_iter()
        .filter(|m| m.0 == Dir::Out)
        .map(|m| m.5)
        .collect();
    let faults: Vec<Option<&str>> = faults.iter().map(Option::as_deref).collect();
    assert_eq!(
        faults,
        [
            Some("wrong-id"),
            None,
            Some("truncated"),
            Some("malformed"),
            Some("wrong-id"),
            None,
            None
        ]
    );
}

/// A real iterative resolver: unbound, given the lab's root hints and told
/// it may query 127.x servers, resolves through the hierarchy (with and
/// without glue, NXDOMAIN, a CNAME) and answers dig with RA set.
#[tokio::test]
async fn unbound_resolves_through_the_hierarchy_from_its_root_hints() {
    if which("unbound").is_none() {
        eprintln!("skipped: unbound is not installed (.ci/run installs it)");
        return;
    }
    let Some(s) = hierarchy() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hints = dir.path().join("named.root");
    std::fs::write(&hints, &s.running.files[0].1).unwrap();
    let conf = dir.path().join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n  interface: 127.0.0.9\n  port: 53\n  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n  do-not-query-localhost: no\n  root-hints: \"{}\"\n  module-config: \"iterator\"\n  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  num-threads: 1\n",
            hints.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let mut cmd = s.ns.command("unbound");
    cmd.args(["-d", "-c"]).arg(&conf);
    cmd.stdout(std::process::Stdio::null());
    cmd.stderr(std::process::Stdio::piped());
    let mut unbound = cmd.spawn().expect("unbound starts");
    // Wait (10 s at most) for it to listen: a refused query fails fast.
    let mut ready = false;
    for _ in 0..50 {
        let out = s
            .run_status(
                "dig",
                &["+tries=1", "+time=1", "@127.0.0.9", "www.example.com"],
            )
            .await;
        if out.contains("status: NOERROR") {
            ready = true;
            break;
        }
        if let Ok(Some(status)) = unbound.try_wait() {
            panic!("unbound exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "unbound never answered");
    let out = s.dig(&["@127.0.0.9", "www.example.com"]).await;
    assert!(out.contains(";; flags: qr rd ra;"), "{out}");
    assert!(has_record(&out, "www.example.com. IN A 10.0.0.1"), "{out}");
    let out = s.dig(&["@127.0.0.9", "www.glueless.com"]).await;
    assert!(has_record(&out, "www.glueless.com. IN A 10.0.0.2"), "{out}");
    let out = s.dig(&["@127.0.0.9", "nothing.example.com"]).await;
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    let out = s.dig(&["@127.0.0.9", "web.example.com"]).await;
    assert!(
        has_record(&out, "web.example.com. IN CNAME www.example.com."),
        "{out}"
    );
    assert!(has_record(&out, "www.example.com. IN A 10.0.0.1"), "{out}");
    let out = s.dig(&["@127.0.0.9", "example.com", "MX"]).await;
    assert!(
        has_record(&out, "example.com. IN MX 10 mail.example.com."),
        "{out}"
    );
    // unbound asked each level, without RD, as a resolver does.
    let m = s.messages();
    let queries: Vec<_> = m.iter().filter(|x| x.0 == Dir::In).collect();
    for level in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert!(queries.iter().any(|q| q.3 == level), "{level}: {m:?}");
    }
    assert!(queries.iter().all(|q| q.4 & 0x0100 == 0), "RD set: {m:?}");
    let _ = unbound.kill().await;
}

/// Whether `text` has the record `fields` (name, class, type, data) with
/// any TTL (a resolver's cache counts TTLs down).
fn has_record(text: &str, fields: &str) -> bool {
    let want: Vec<&str> = fields.split_whitespace().collect();
    text.lines().any(|l| {
        let mut got: Vec<&str> = l.split_whitespace().collect();
        if got.len() > 1 && got[1].parse::<u32>().is_ok() {
            got.remove(1);
        }
        got == want
    })
}

/// The full path of `program` on PATH (or in /usr/sbin), if it is there.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// kdig (Knot DNS) and drill (ldns): answers over UDP, a lost query and a
/// wrong ID met (kdig waits them out), a truncated answer fetched again over
/// TCP, and TCP asked directly.
#[tokio::test]
async fn kdig_and_drill_read_answers_over_udp_tcp_and_after_truncation() {
    let (Some(_), Some(_)) = (which("kdig"), which("drill")) else {
        eprintln!(
            "skipped: kdig or drill is not installed (.ci/run installs knot-dnsutils and ldnsutils)"
        );
        return;
    };
    let Some(s) = flat() else { return };
    // Query 1 is lost, query 2 first gets a response with another ID.
    let out = s
        .run_both(
            "kdig",
            &[
                "@127.0.0.1",
                "www.example.com",
                "A",
                "+retry=3",
                "+timeout=1",
            ],
        )
        .await;
    assert!(
        out.contains("WARNING: response timeout for 127.0.0.1@53(UDP)"),
        "{out}"
    );
    assert!(out.contains("is different from query ID"), "{out}");
    assert!(out.contains(";; Flags: qr aa rd;"), "{out}");
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    assert!(!out.contains("192.0.2.1"), "kdig took the decoy: {out}");
    let out = s
        .run_both("kdig", &["@127.0.0.1", "many.example.com", "A"])
        .await;
    assert!(
        out.contains("truncated reply from 127.0.0.1@53(UDP), retrying over TCP"),
        "{out}"
    );
    assert!(out.contains("ANSWER: 30;"), "{out}");
    assert!(out.contains("From 127.0.0.1@53(TCP)"), "{out}");
    let out = s
        .run_both("kdig", &["+tcp", "@127.0.0.1", "example.com", "MX"])
        .await;
    assert!(
        has_line(&out, "example.com. 300 IN MX 10 mail.example.com."),
        "{out}"
    );
    assert!(out.contains("(TCP)"), "{out}");
    let out = s
        .run_both("drill", &["nope.example.com", "@127.0.0.1"])
        .await;
    assert!(out.contains("rcode: NXDOMAIN"), "{out}");
    let out = s
        .run_both("drill", &["alias.example.com", "@127.0.0.1"])
        .await;
    assert!(
        has_line(&out, "alias.example.com. 300 IN CNAME www.example.com."),
        "{out}"
    );
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    // drill shows the truncated answer as it came, and reads it whole over TCP.
    let out = s
        .run_both("drill", &["many.example.com", "@127.0.0.1"])
        .await;
    assert!(out.contains(";; flags: qr aa tc rd ;"), "{out}");
    assert!(out.contains("ANSWER: 0,"), "{out}");
    let out = s
        .run_both("drill", &["-t", "many.example.com", "@127.0.0.1"])
        .await;
    assert!(out.contains("ANSWER: 30,"), "{out}");
    assert!(
        has_line(&out, "many.example.com. 300 IN A 10.0.1.30"),
        "{out}"
    );
    let m = s.messages();
    let tcp_in = m
        .iter()
        .filter(|x| x.1 == Transport::Tcp && x.0 == Dir::In)
        .count();
    assert!(tcp_in >= 3, "kdig's fall back, kdig +tcp, drill -t: {m:?}");
}

/// The `dns-client` lab's own answers, read by kdig and drill: the chain of
/// four CNAMEs whose addresses are named through pointers beyond byte 255,
/// two MX records, and the 100 addresses that only TCP carries whole.
#[tokio::test]
async fn kdig_and_drill_read_the_dns_client_labs_answers() {
    let (Some(_), Some(_)) = (which("kdig"), which("drill")) else {
        eprintln!(
            "skipped: kdig or drill is not installed (.ci/run installs knot-dnsutils and ldnsutils)"
        );
        return;
    };
    let Some(s) = start("labs/dns-client.yaml") else {
        return;
    };
    let hop = "a-12.weighted-round-robin.global-cdn.example.net.";
    let out = s
        .run_both("kdig", &["@127.0.0.1", "alias.example.com", "A"])
        .await;
    assert!(out.contains("ANSWER: 7;"), "{out}");
    for addr in ["10.0.3.1", "10.0.3.2", "10.0.3.3"] {
        assert!(has_line(&out, &format!("{hop} 86400 IN A {addr}")), "{out}");
    }
    let out = s
        .run_both("drill", &["alias.example.com", "@127.0.0.1"])
        .await;
    assert!(
        has_line(&out, &format!("{hop} 86400 IN A 10.0.3.1")),
        "{out}"
    );
    assert!(
        has_line(
            &out,
            &format!("e7.origin-pool-balanced-eu.global-cdn.example.net. 86400 IN CNAME {hop}")
        ),
        "{out}"
    );
    let out = s
        .run_both("drill", &["example.com", "MX", "@127.0.0.1"])
        .await;
    assert!(
        has_line(&out, "example.com. 86400 IN MX 20 mx2.example.com."),
        "{out}"
    );
    let out = s
        .run_both("kdig", &["@127.0.0.1", "many.example.com", "A"])
        .await;
    assert!(out.contains("retrying over TCP"), "{out}");
    assert!(out.contains("ANSWER: 100;"), "{out}");
    // With EDNS (1232 octets) the answer does not fit UDP either.
    let out = s
        .run_both(
            "kdig",
            &["@127.0.0.1", "many.example.com", "A", "+edns", "+ignore"],
        )
        .await;
    assert!(out.contains(";; Flags: qr aa tc rd;"), "{out}");
    assert!(out.contains("ANSWER: 0;"), "{out}");
}
