//! JUnit reports judged by the Jenkins xUnit plugin's schema (junit-10.xsd),
//! with xmllint: what CI servers that read JUnit expect, checked by tools
//! that are not netgrade's.
//!
//! `.ci/run` installs xmllint (Debian's libxml2-utils) and takes the schema
//! from the pytest source distribution on PyPI, which ships it for its own
//! JUnit tests, into [`DEFAULT_XSD`]. `NETGRADE_JUNIT_XSD` names another copy.
//! Under CI=true a missing tool or schema fails the test; elsewhere the
//! check is skipped with the reason printed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where `.ci/run` puts the schema.
pub const DEFAULT_XSD: &str = "/var/cache/netgrade-test/junit-10.xsd";

/// True when running under CI, where every check must really run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Panics under CI, prints the reason and returns false elsewhere.
pub fn require(available: bool, what: &str) -> bool {
    if !available {
        assert!(!in_ci(), "{what} is missing, and CI must run this check");
        eprintln!("skipped: {what} is missing (.ci/run installs it)");
    }
    available
}

/// The junit-10.xsd file, if it is there.
pub fn junit_xsd() -> Option<PathBuf> {
    let path = std::env::var_os("NETGRADE_JUNIT_XSD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_XSD));
    path.is_file().then_some(path)
}

/// True if xmllint can be run.
pub fn have_xmllint() -> bool {
    Command::new("xmllint")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// junit-10.xsd with the two test-case attributes netgrade adds, `file`
/// and `line` (what GitLab, mikepenz/action-junit-report and
/// dorny/test-reporter place annotations with, and pytest's xunit1 family
/// writes), declared as strings; nothing else changes. Written beside the
/// schema's temporary copy; `None` when the schema is missing.
pub fn junit_xsd_with_locations() -> Option<PathBuf> {
    let text = std::fs::read_to_string(junit_xsd()?).ok()?;
    let case = text
        .find("name=\"testcase\"")
        .expect("junit-10.xsd declares testcase");
    let group = case
        + text[case..]
            .find("<xs:attribute name=\"group\"")
            .expect("testcase has a group attribute");
    let extended = format!(
        "{}<xs:attribute name=\"file\" type=\"xs:string\"/>\n            <xs:attribute name=\"line\" type=\"xs:string\"/>\n            {}",
        &text[..group],
        &text[group..]
    );
    let path = std::env::temp_dir().join(format!(
        "netgrade-junit-10-with-locations-{}.xsd",
        std::process::id()
    ));
    std::fs::write(&path, extended).ok()?;
    Some(path)
}

/// Validates `xml` against junit-10.xsd with netgrade's `file` and `line`
/// test-case attributes ([`junit_xsd_with_locations`]): `Some(Ok)` if
/// valid, `Some(Err)` with xmllint's output if not, `None` (skipped) when
/// the schema or xmllint is missing outside CI.
pub fn validate_junit(xml: &str) -> Option<Result<(), String>> {
    validate_with(xml, junit_xsd_with_locations())
}

/// Validates `xml` against junit-10.xsd exactly as published.
pub fn validate_junit_strict(xml: &str) -> Option<Result<(), String>> {
    validate_with(xml, junit_xsd())
}

fn validate_with(xml: &str, xsd: Option<PathBuf>) -> Option<Result<(), String>> {
    if !require(xsd.is_some(), "the JUnit schema junit-10.xsd")
        || !require(have_xmllint(), "xmllint")
    {
        return None;
    }
    let mut child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd.unwrap())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .expect("xmllint reads the document");
    let out = child.wait_with_output().expect("xmllint finishes");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(text)
    })
}

/// Panics with xmllint's findings unless `xml` follows junit-10.xsd (with
/// the `file` and `line` test-case attributes).
pub fn assert_valid_junit(xml: &str) {
    if let Some(Err(findings)) = validate_junit(xml) {
        panic!("the JUnit report does not follow junit-10.xsd:\n{findings}\n--- report:\n{xml}");
    }
}
