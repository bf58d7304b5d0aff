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

/// Validates `xml` against junit-10.xsd: `Some(Ok)` if valid, `Some(Err)`
/// with xmllint's output if not, `None` (skipped) when the schema or xmllint
/// is missing outside CI.
pub fn validate_junit(xml: &str) -> Option<Result<(), String>> {
    let xsd = junit_xsd();
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

/// Panics with xmllint's findings unless `xml` follows junit-10.xsd.
pub fn assert_valid_junit(xml: &str) {
    if let Some(Err(findings)) = validate_junit(xml) {
        panic!("the JUnit report does not follow junit-10.xsd:\n{findings}\n--- report:\n{xml}");
    }
}
