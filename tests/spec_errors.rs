//! Spec errors as lab authors see them, and the JSON Schema judged against
//! `validate` on one set of broken specs.
//!
//! Each file in `fixtures/specs/broken/` has one or more faults and opens with
//! `# schema: rejects: …` or `# schema: accepts: …` — whether JSON Schema can
//! express the rule it breaks. `validate` rejects every one of them; an
//! independent validator (Python's `jsonschema`) must reject exactly those
//! marked `rejects`, and accept every valid spec.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn broken_specs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("fixtures/specs/broken")
        .expect("broken specs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the set of broken specs shrank");
    files
}

/// Valid specs: the built-in labs and the fixtures' variants.
fn valid_specs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["labs", "fixtures/specs"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("dir"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_broken_spec_is_rejected_with_all_its_errors() {
    for file in broken_specs() {
        let out = netgrade()
            .arg("validate")
            .arg(&file)
            .env("NO_COLOR", "1")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        insta::assert_snapshot!(format!("spec-{}", stem(&file)), stderr);
    }
}

#[test]
fn valid_specs_pass_validate() {
    for file in valid_specs() {
        netgrade().arg("validate").arg(&file).assert().success();
    }
}

const JUDGE: &str = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
verdicts = {}
for path in sys.argv[2:]:
    try:
        doc = yaml.safe_load(open(path))
    except yaml.YAMLError as e:
        verdicts[path] = ["not YAML: " + str(e).splitlines()[0]]
        continue
    verdicts[path] = [e.message for e in validator.iter_errors(doc)]
print(json.dumps(verdicts))
"#;

/// What Python's `jsonschema` says of each file: its errors.
fn judge(files: &[PathBuf]) -> serde_json::Map<String, serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("lab.schema.json");
    let out = netgrade().arg("schema").output().expect("schema");
    assert!(out.status.success());
    std::fs::write(&schema, &out.stdout).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(JUDGE)
        .arg(&schema)
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "jsonschema and PyYAML are needed (.ci/run installs them): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("verdicts")
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn the_schema_rejects_what_it_can_express_and_accepts_valid_specs() {
    let broken = broken_specs();
    let valid = valid_specs();
    let all: Vec<PathBuf> = broken.iter().chain(&valid).cloned().collect();
    let verdicts = judge(&all);
    let mut disagreements = Vec::new();
    for file in &broken {
        let header = std::fs::read_to_string(file).unwrap();
        let header = header.lines().next().unwrap_or("");
        let expect_reject = if header.starts_with("# schema: rejects") {
            true
        } else if header.starts_with("# schema: accepts") {
            false
        } else {
            panic!("{} lacks its `# schema:` line", file.display());
        };
        let errors = verdicts[&file.display().to_string()].as_array().unwrap();
        if expect_reject == errors.is_empty() {
            disagreements.push(format!(
                "{}: {header}; jsonschema: {errors:?}",
                file.display()
            ));
        }
    }
    for file in &valid {
        let errors = verdicts[&file.display().to_string()].as_array().unwrap();
        if !errors.is_empty() {
            disagreements.push(format!(
                "{} is valid; jsonschema: {errors:?}",
                file.display()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
