//! The `webproxy` lab graded for real: the student's proxy (each fixture)
//! between netgrade's probes and its origin web server, whose log shows
//! what each request made the proxy ask. Every fixture gets the verdict an
//! expert would give, one fault charged once; same seed, same transcript.

mod common;

use common::*;

const LAB: &str = "webproxy";

const CHECKS: [&str; 9] = [
    "forwards",
    "relays",
    "caches",
    "cache-key",
    "binary-and-large",
    "not-found",
    "absolute-form",
    "conditional-get",
    "post",
];

/// The optional checks (0 points) each fixture passes, when not all.
const OPTIONAL: [&str; 3] = ["absolute-form", "conditional-get", "post"];

const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: a cache without revalidation and without the
    // optional forms; the handout's own `GET http://host/path HTTP/1.0\n\n`
    // to the origin; HTTP/1.1 to the origin, read by Content-Length.
    (
        "simple-cache",
        &["absolute-form", "conditional-get", "post"],
        None,
    ),
    (
        "handout-style",
        &["absolute-form", "conditional-get", "post"],
        None,
    ),
    ("no-connection-close", &[], None),
    (
        "always-root",
        &["forwards"],
        Some(&["relays", "caches", "post"]),
    ),
    (
        "mangled-host",
        &["forwards"],
        Some(&[
            "relays",
            "caches",
            "cache-key",
            "binary-and-large",
            "not-found",
            "conditional-get",
            "post",
        ]),
    ),
    (
        "duplicate-status",
        &["relays"],
        Some(&["forwards", "caches", "cache-key", "conditional-get"]),
    ),
    (
        "body-first-on-hit",
        &["caches"],
        Some(&[
            "forwards",
            "relays",
            "binary-and-large",
            "not-found",
            "absolute-form",
            "post",
        ]),
    ),
    (
        "never-hits",
        &["caches"],
        Some(&[
            "forwards",
            "relays",
            "binary-and-large",
            "not-found",
            "absolute-form",
            "post",
        ]),
    ),
    ("collide", &["cache-key"], None),
    ("single-recv", &["binary-and-large"], None),
    ("text-mode", &["binary-and-large"], None),
    ("crash-unknown-host", &["not-found"], None),
    // A NameError under a bare `except:`: nothing reaches the origin,
    // charged to `forwards`; the rest is not judged.
    ("bare-except", &["forwards"], Some(&[])),
];

fn fixture(name: &str) -> String {
    format!("fixtures/{LAB}/{name}")
}

#[test]
fn every_proxy_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("webproxy.json");
    netgrade()
        .args(["run", LAB, "-j", "7", "--quiet", "--json"])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    // A failed optional check costs nothing.
    for name in ["simple-cache", "handout-style"] {
        let run = run_of(&report, &fixture(name));
        assert_eq!(run["score"], run["max_score"], "{run}");
    }
    for name in [
        "always-root",
        "duplicate-status",
        "body-first-on-hit",
        "never-hits",
        "bare-except",
    ] {
        let run = run_of(&report, &fixture(name));
        for id in CHECKS {
            let st = status(run, id);
            assert!(
                st == "pass"
                    || st == "skip"
                    || EXPECTED
                        .iter()
                        .any(|(n, fail, _)| *n == name && fail.contains(&id))
                    || OPTIONAL.contains(&id),
                "{name}/{id} is {st}: one fault is charged once"
            );
        }
    }
    for (name, id, needle) in [
        (
            "always-root",
            "forwards",
            "the origin was asked for `/` while the client asked for http://www.example.com/index.html",
        ),
        (
            "mangled-host",
            "forwards",
            "says `Host: www.www.example.com`; the host is `www.example.com`",
        ),
        (
            "duplicate-status",
            "relays",
            "has a second status line, \\\"HTTP/1.1 200 OK\\\", after `HTTP/1.0 200 OK`",
        ),
        (
            "body-first-on-hit",
            "caches",
            "does not start with a status line: it starts \\\"<!DOCTYPE html>",
        ),
        (
            "never-hits",
            "caches",
            "but the origin was asked for it again",
        ),
        (
            "collide",
            "cache-key",
            "`notes-b-again` (GET /www.example.com/b/notes.txt) got the object of http://www.example.com/a/notes.txt",
        ),
        (
            "single-recv",
            "binary-and-large",
            // How much came with the one recv depends on the moment.
            "read the origin's reply until recv returns b\\\"\\\"",
        ),
        (
            "text-mode",
            "binary-and-large",
            "the client got `500 Internal Server Error`",
        ),
        (
            "crash-unknown-host",
            "not-found",
            "the host of `unknown-host` (GET /no-such-host.invalid/index.html) does not exist, and the client got nothing",
        ),
        (
            "bare-except",
            "forwards",
            "the origin received no request while the proxy handled `page`",
        ),
        (
            "simple-cache",
            "conditional-get",
            "was served from the cache without asking the origin whether it changed",
        ),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    let evidence = |name: &str, id: &str| {
        run_of(&report, &fixture(name))["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["evidence"]
            .to_string()
    };
    // The proxy's own words and traceback come with the verdict.
    let crash = evidence("crash-unknown-host", "not-found");
    assert!(crash.contains("socket.gaierror"), "{crash}");
    assert!(evidence("bare-except", "forwards").contains("Illegal request"));
    assert!(evidence("never-hits", "caches").contains("files the proxy wrote"));
    let reference = evidence("reference", "conditional-get");
    assert!(
        reference.contains("If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT"),
        "{reference}"
    );
    let handout = evidence("handout-style", "forwards");
    assert!(handout.contains("lines end in LF alone"), "{handout}");
}

/// Same seed, same transcript: the origin's delays come from the seed and
/// its files' dates are fixed.
#[test]
fn the_same_seed_gives_the_same_transcript() {
    let transcript = || {
        let dir = tempfile::tempdir().unwrap();
        netgrade()
            .args(["run", LAB, "--quiet", "--snapshots"])
            .arg(dir.path())
            .arg(fixture("reference"))
            .assert()
            .code(0);
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        std::fs::read_to_string(file.path()).unwrap()
    };
    let (first, second) = (transcript(), transcript());
    assert_eq!(first, second);
    assert!(first.contains("GET /www.example.com/index.html"), "{first}");
}

/// Real proxies nobody here wrote, graded as a browser asks
/// (`fixtures/specs/webproxy-browser.yaml`: every request in the absolute
/// form, the only one they speak): squid gets full marks (it does not
/// revalidate an object it holds fresh, so the optional conditional GET is
/// reported, not charged); tinyproxy, which keeps no cache, loses exactly
/// the caching checks. The reference proxy gets everything.
#[test]
fn real_proxies_are_graded_fairly() {
    let lab = "fixtures/specs/webproxy-browser.yaml";
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("reference", fixture("reference"), None),
        (
            "squid",
            "fixtures/webproxy-real/squid".to_string(),
            Some("squid -N -f squid.conf"),
        ),
        (
            "tinyproxy",
            "fixtures/webproxy-real/tinyproxy".to_string(),
            Some("tinyproxy -d -c tinyproxy.conf"),
        ),
    ];
    for (name, submission, cmd) in cases {
        if let Some(cmd) = cmd {
            let program = cmd.split(' ').next().unwrap();
            assert!(
                which(program).is_some(),
                "{program} is not installed; .ci/run installs it"
            );
        }
        let json = dir.path().join(format!("{name}.json"));
        let mut run = netgrade();
        run.args(["run", lab, "--quiet", "--json"]).arg(&json);
        if let Some(cmd) = cmd {
            run.args(["--cmd", cmd]);
        }
        let full = name != "tinyproxy";
        run.arg(&submission).assert().code(if full { 0 } else { 1 });
        let report = read_json(&json);
        let run = &report["runs"][0];
        let not_passed: Vec<&str> = CHECKS
            .iter()
            .copied()
            .filter(|id| status(run, id) != "pass")
            .collect();
        let (expected, score): (&[&str], f64) = match name {
            "reference" => (&[], 10.0),
            "squid" => (&["conditional-get"], 10.0),
            _ => (&["caches", "cache-key", "conditional-get"], 7.0),
        };
        assert_eq!(not_passed, expected, "{name}: {run}");
        assert_eq!(run["score"].as_f64(), Some(score), "{name}: {run}");
    }
}

/// curl, through the reference proxy, gets the objects of netgrade's origin
/// (`netgrade serve --lab webproxy`) in both forms, in a network namespace
/// of the test's own where the lab's host names are in /etc/hosts.
#[test]
fn curl_fetches_through_the_reference_proxy() {
    for program in ["unshare", "curl", "ip"] {
        assert!(
            which(program).is_some(),
            "{program} is missing; .ci/run installs it"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("curl.sh");
    std::fs::write(&script, CURL_SCRIPT).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["60", "unshare", "--net", "--mount", "bash"])
        .arg(&script)
        .env("D", dir.path())
        .env("NETGRADE", env!("CARGO_BIN_EXE_netgrade"))
        .env("ROOT", root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "handout: Notes of folder a: the cache key is the whole URL, not the file name.",
        "proxied: Notes of folder b: a different object with the same file name.",
        "again: Notes of folder b: a different object with the same file name.",
        "big: same",
        "post: POST /form: 8 bytes\nname=ada",
        "status: 502",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}\n{stderr}");
    }
    let origin = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(origin.contains("/b/notes.txt"), "{origin}");
}

const CURL_SCRIPT: &str = r#"set -eu
ip link set lo up
echo "127.0.0.1 localhost www.example.com gaia.cs.umass.edu" > "$D/hosts"
mount --bind "$D/hosts" /etc/hosts
"$NETGRADE" serve --lab webproxy > "$D/serve.log" 2>&1 &
mkdir -p "$D/proxy"; cd "$D/proxy"
python3 "$ROOT/fixtures/webproxy/reference/ProxyServer.py" 127.0.0.1 > "$D/proxy.log" 2>&1 &
for i in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/8888) 2>/dev/null; then break; fi
  sleep 0.1
done
echo "handout: $(curl -s --max-time 10 --noproxy '*' http://127.0.0.1:8888/www.example.com/a/notes.txt)"
echo "proxied: $(curl -s --max-time 10 -x http://127.0.0.1:8888 http://www.example.com/b/notes.txt)"
echo "again: $(curl -s --max-time 10 -x http://127.0.0.1:8888 http://www.example.com/b/notes.txt)"
curl -s --max-time 20 -x http://127.0.0.1:8888 -o "$D/big.bin" http://www.example.com/files/big.bin
echo "big: $(cmp "$D/big.bin" "$ROOT/labs/webproxy/www.example.com/files/big.bin" && echo same)"
echo "post: $(curl -s --max-time 10 -x http://127.0.0.1:8888 -d 'name=ada' http://www.example.com/form)"
echo "status: $(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -x http://127.0.0.1:8888 http://no-such-host.invalid/)"
kill %1 %2
"#;
