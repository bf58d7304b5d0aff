//! Where in the student's entry file a check's result points: the file
//! reports name (JUnit's `file`) and the line that best explains a failure
//! (JUnit's `line`, where CI reporters place their annotation).
//!
//! A line a traceback or compiler named in the entry file comes first: it
//! explains every failure of that run. Otherwise a check's `code` pattern
//! picks the first line of the entry that matches it (the `settimeout` a
//! waits-for-timeout failure is about).

use std::io::Read as _;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::outcome::{CheckOutcome, Status};
use crate::spec::Lab;

/// How much of the entry file is read for `code` patterns.
const ENTRY_READ: u64 = 256 * 1024;

/// The entry file as reports name it: the submission folder as given
/// joined with the file's path in it (`subs/ada/client.py`), or the
/// submission itself when it is a file; never with a leading `./`.
pub fn entry_path(shown: &str, is_file: bool, in_submission: &Path) -> String {
    let path = if is_file {
        shown.to_string()
    } else {
        Path::new(shown).join(in_submission).display().to_string()
    };
    let mut path = path.as_str();
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path.to_string()
}

/// Reads up to [`ENTRY_READ`] bytes of the entry file, as text.
pub fn read_entry(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(ENTRY_READ)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Sets `line` on every check that did not pass: the line a traceback or
/// compiler named in `file_name` (the entry's name), else the first line
/// of `source` the check's `code` pattern matches.
pub fn mark_lines(
    lab: &Lab,
    checks: &mut [CheckOutcome],
    file_name: &str,
    source: Option<&str>,
    stderr: &str,
) {
    let named = blamed_line(stderr, file_name);
    for check in checks.iter_mut().filter(|c| c.status != Status::Pass) {
        let code = lab
            .checks
            .iter()
            .find(|s| s.id.value == check.id)
            .and_then(|s| s.code.as_deref());
        check.line = named.or_else(|| first_match(source?, code?));
    }
}

/// The first line (from 1) of `source` that `pattern` matches.
fn first_match(source: &str, pattern: &str) -> Option<u32> {
    let re = crate::checks::compiled(pattern)?;
    let at = source.lines().position(|l| re.is_match(l))?;
    u32::try_from(at + 1).ok()
}

/// The line of `file_name` a traceback or compiler named in `stderr`:
/// Python's innermost frame in that file (`File ".../client.py", line 12`),
/// a Java stack frame (`(Client.java:42)`), or the first `file:line:`
/// diagnostic of gcc, javac or Go (`client.c:7:5: error`), or rustc's
/// `--> src/main.rs:9:5`.
pub fn blamed_line(stderr: &str, file_name: &str) -> Option<u32> {
    static PYTHON: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"File "([^"]+)", line (\d+)"#).expect("valid regex"));
    static JAVA: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\(([\w$.-]+\.java):(\d+)\)").expect("valid regex"));
    static DIAGNOSTIC: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?m)^(?:\s*--> )?([^\s:]+):(\d+)(?::\d+)?:?").expect("valid regex")
    });
    let name = Path::new(file_name).file_name()?.to_str()?;
    let is_entry = |path: &str| Path::new(path).file_name().and_then(|n| n.to_str()) == Some(name);
    let line = |n: &str| n.parse::<u32>().ok().filter(|&n| n > 0);
    // The innermost frame is the last one Python prints.
    let python = PYTHON
        .captures_iter(stderr)
        .filter(|c| is_entry(&c[1]))
        .last()
        .and_then(|c| line(&c[2]));
    if python.is_some() {
        return python;
    }
    // Java prints the innermost frame first.
    let java = JAVA
        .captures_iter(stderr)
        .find(|c| is_entry(&c[1]))
        .and_then(|c| line(&c[2]));
    java.or_else(|| {
        DIAGNOSTIC
            .captures_iter(stderr)
            .find(|c| is_entry(&c[1]))
            .and_then(|c| line(&c[2]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_tracebacks_name_the_innermost_frame_in_the_entry() {
        let stderr = "Traceback (most recent call last):\n  File \"/tmp/w/UDPPingerClient.py\", line 30, in <module>\n    main()\n  File \"UDPPingerClient.py\", line 12, in main\n    s.sendto(msg, addr)\n  File \"/usr/lib/python3.11/socket.py\", line 9, in sendto\nTypeError: a bytes-like object is required, not 'str'\n";
        assert_eq!(blamed_line(stderr, "UDPPingerClient.py"), Some(12));
        assert_eq!(blamed_line(stderr, "other.py"), None);
    }

    #[test]
    fn compilers_and_java_frames_are_read() {
        let gcc =
            "client.c: In function 'main':\nclient.c:17:5: error: expected ';' before 'return'\n";
        assert_eq!(blamed_line(gcc, "client.c"), Some(17));
        let javac = "UDPPinger.java:42: error: cannot find symbol\n";
        assert_eq!(blamed_line(javac, "UDPPinger.java"), Some(42));
        let java = "Exception in thread \"main\" java.net.BindException\n\tat java.base/sun.nio.ch.Net.bind(Net.java:555)\n\tat UDPPinger.main(UDPPinger.java:21)\n";
        assert_eq!(blamed_line(java, "UDPPinger.java"), Some(21));
        let go = "# command-line-arguments\n./ping.go:9:2: undefined: conn\n";
        assert_eq!(blamed_line(go, "ping.go"), Some(9));
        let rustc = "error[E0425]: cannot find value `x`\n --> src/main.rs:4:13\n";
        assert_eq!(blamed_line(rustc, "main.rs"), Some(4));
        // Ports and addresses in messages are not lines.
        assert_eq!(blamed_line("sent to 127.0.0.1:12000\n", "client.py"), None);
    }

    #[test]
    fn entry_paths_are_relative_to_where_netgrade_ran() {
        assert_eq!(entry_path(".", false, Path::new("ping.py")), "ping.py");
        assert_eq!(
            entry_path("./subs/ada", false, Path::new("src/ping.py")),
            "subs/ada/src/ping.py"
        );
        assert_eq!(
            entry_path("subs/bob.py", true, Path::new("bob.py")),
            "subs/bob.py"
        );
    }
}
