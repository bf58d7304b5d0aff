//! Turns common error output into advice: Python 2 code, a missing module,
//! a syntax error, a crash in the statistics, a Java or C mistake.

/// Diagnoses for a program's stderr (and compiler output), most specific first.
pub fn diagnose(stderr: &str) -> Vec<String> {
    diagnose_allowing(stderr, &[])
}

/// Like [`diagnose`], for a lab that allows these Python packages besides
/// the standard library (`program.python_packages`).
pub fn diagnose_allowing(stderr: &str, packages: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let last_line = |needle: &str| {
        stderr
            .lines()
            .rev()
            .find(|l| l.contains(needle))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let py_location = python_location(stderr);

    if stderr.contains("Missing parentheses in call to 'print'")
        || stderr.contains("Missing parentheses in call to \"print\"")
        || stderr.contains("multiple exception types must be parenthesized")
        || stderr.contains("name 'raw_input' is not defined")
        || stderr.contains("name 'xrange' is not defined")
        || stderr.contains("name 'unicode' is not defined")
    {
        let except = if stderr.contains("multiple exception types must be parenthesized") {
            ", `except timeout as e:` for `except timeout, e:`"
        } else {
            ""
        };
        out.push(format!(
            "this looks like Python 2 code{py_location}, but netgrade runs Python 3: write print(...) with parentheses{except}, input() for raw_input(), range() for xrange()"
        ));
    } else if stderr.contains("SyntaxError")
        || stderr.contains("IndentationError")
        || stderr.contains("TabError")
    {
        out.push(format!(
            "Python could not parse the program{py_location}: {}; run `python3 -m py_compile` on your file to see the same error",
            last_line("Error")
        ));
    }
    if stderr.contains("ord() expected string of length 1, but int found") {
        let shown = python_source_line(stderr)
            .map(|s| format!(": `{s}`"))
            .unwrap_or_default();
        out.push(format!(
            "this looks like Python 2 code{py_location}{shown} calls ord() on an octet of received data, but in Python 3 indexing bytes already gives an int (`data[0]` is a number): drop the ord()"
        ));
    }
    if let Some(d) = str_for_bytes(stderr, &py_location) {
        out.push(d);
    }
    if let Some(module) = stderr
        .lines()
        .find_map(|l| l.split("No module named ").nth(1))
        .map(|m| m.trim().trim_matches('\''))
    {
        out.push(missing_module(module, packages));
    }
    if stderr.contains("EOFError: EOF when reading a line")
        || stderr.contains("java.util.NoSuchElementException")
            && stderr.contains("java.util.Scanner")
    {
        out.push(format!(
            "the program waits for keyboard input{py_location} (`input()`, a Scanner on System.in), but graded programs get none: take what you need from the command line (`sys.argv`, `args[]`) or write it into the program"
        ));
    }
    if stderr.contains("max() arg is an empty sequence")
        || stderr.contains("min() arg is an empty sequence")
        || stderr.contains("ZeroDivisionError")
    {
        out.push(format!(
            "the program crashed computing statistics over an empty list ({}){py_location}: when every ping is lost there is no RTT; check `if rtts:` before min/max/average",
            last_line("Error")
        ));
    }
    if stderr.contains("Network is unreachable") || stderr.contains("Name or service not known") {
        out.push(
            "the program sends to an address other than the lab's server: use the host and port netgrade passes as arguments, or 'localhost' and the handout's port"
                .to_string(),
        );
    }
    if stderr.contains("Address already in use") {
        out.push("the program binds a port that is already in use: a client does not need to bind at all".to_string());
    }
    if stderr.contains("should be declared in a file named") {
        out.push(format!(
            "Java: {}; rename the file or the class so they match",
            last_line("should be declared")
        ));
    } else if stderr.contains("error: cannot find symbol")
        || stderr.contains(".java:") && stderr.contains("error:")
    {
        out.push(format!("Java did not compile: {}", last_line("error:")));
    }
    if stderr.contains("Could not find or load main class") {
        out.push("Java could not find the main class: the entry file's class must have `public static void main(String[] args)`".to_string());
    }
    if stderr.contains(".c:") && stderr.contains("error:") {
        out.push(format!("C did not compile: {}", last_line("error:")));
    }
    if out.is_empty()
        && let Some(exc) = stderr.lines().rev().find(|l| {
            let l = l.trim_start();
            !l.starts_with("File ") && !l.starts_with("Traceback") && l.contains("Error")
        })
        && stderr.contains("Traceback (most recent call last)")
    {
        out.push(format!(
            "the program raised an uncaught exception{py_location}: {}",
            exc.trim()
        ));
    }
    out
}

/// A str where Python 3 wants bytes: in a socket send, the way Python 2 code
/// fails under Python 3; anywhere else, a str/bytes mix-up.
fn str_for_bytes(stderr: &str, location: &str) -> Option<String> {
    if !stderr.contains("TypeError: a bytes-like object is required, not 'str'") {
        return None;
    }
    let source = python_source_line(stderr);
    let shown = source.map(|s| format!(": `{s}`")).unwrap_or_default();
    let sends = source.is_some_and(|s| {
        [".sendto(", ".send(", ".sendall("]
            .iter()
            .any(|call| s.contains(call))
    });
    Some(if sends {
        format!(
            "this looks like Python 2 code{location}{shown} sends a str, but in Python 3 sockets send bytes (TypeError: a bytes-like object is required, not 'str'): encode what you send (`message.encode()`), and decode what you receive with `.decode()`"
        )
    } else {
        format!(
            "the program mixes str and bytes{location}{shown} (TypeError: a bytes-like object is required, not 'str'): what a socket receives is bytes; decode it first (`data.decode()`) before using str methods or str arguments on it"
        )
    })
}

/// The source line Python shows under the innermost frame of a traceback.
fn python_source_line(stderr: &str) -> Option<&str> {
    let lines: Vec<&str> = stderr.lines().collect();
    let frame = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("File \""))?;
    let source = lines.get(frame + 1)?.trim();
    let is_source = !source.is_empty()
        && !source.starts_with(['^', '~'])
        && !source.contains("Error:")
        && !source.starts_with("File \"");
    is_source.then_some(source)
}

/// What to say about an import of `module`, which is not installed.
fn missing_module(module: &str, packages: &[String]) -> String {
    let top = module.split('.').next().unwrap_or(module);
    // A published package cannot be handed in as a file; a helper module can.
    let instead = if THIRD_PARTY.contains(&top) {
        format!(
            "it is not part of Python's standard library: compute what you need with the standard library (`min()`, `max()`, `sum(x) / len(x)`, the `statistics` module) instead of {top}"
        )
    } else {
        format!("use the standard library, or include {module}.py in your submission")
    };
    if packages.is_empty() {
        return format!("the program imports `{module}`, which is not installed here: {instead}");
    }
    format!(
        "the program imports `{module}`, which this lab does not allow (it allows the standard library and {}): {instead}",
        packages.join(", ")
    )
}

/// Packages students import that come from PyPI, not from their own files.
const THIRD_PARTY: &[&str] = &[
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "requests",
    "scapy",
    "ping3",
    "dnspython",
    "dns",
    "bs4",
    "termcolor",
    "colorama",
    "tqdm",
];

/// ` (file.py, line N)` for the innermost frame of a Python traceback or a SyntaxError.
fn python_location(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim_start().strip_prefix("File \"")?;
            let (file, rest) = l.split_once('"')?;
            let line = rest
                .split("line ")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?;
            let file = std::path::Path::new(file)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            Some(format!(" ({file}, line {line})"))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python2_print() {
        let err = "  File \"/tmp/w/UDPPingerClient.py\", line 12\n    print \"Request timed out\"\n    ^^^^^\nSyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?\n";
        let d = diagnose(err);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("Python 2"), "{d:?}");
        assert!(d[0].contains("(UDPPingerClient.py, line 12)"), "{d:?}");
    }

    #[test]
    fn missing_module() {
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 1, in <module>\n    import pingutils\nModuleNotFoundError: No module named 'pingutils'\n";
        let d = diagnose(err);
        assert!(d[0].contains("`pingutils`"), "{d:?}");
        assert!(
            d[0].contains("include pingutils.py in your submission"),
            "{d:?}"
        );
        let d = diagnose_allowing(err, &["numpy".into(), "scipy==1.11".into()]);
        assert!(
            d[0].contains(
                "this lab does not allow (it allows the standard library and numpy, scipy==1.11)"
            ),
            "{d:?}"
        );
        // A package from PyPI cannot be handed in as a file.
        let numpy = err.replace("pingutils", "numpy");
        let d = diagnose(&numpy);
        assert!(
            d[0].contains("not part of Python's standard library"),
            "{d:?}"
        );
        assert!(!d[0].contains("numpy.py"), "{d:?}");
    }

    #[test]
    fn waiting_for_keyboard_input() {
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 3, in <module>\n    host = input('Server: ')\nEOFError: EOF when reading a line\n";
        let d = diagnose(err);
        assert!(
            d.iter().any(|m| m.contains("waits for keyboard input")),
            "{d:?}"
        );
    }

    #[test]
    fn empty_statistics() {
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 40, in <module>\n    print(min(rtts))\nValueError: min() arg is an empty sequence\n";
        let d = diagnose(err);
        assert!(d[0].contains("empty list"), "{d:?}");
        assert!(d[0].contains("line 40"), "{d:?}");
    }

    #[test]
    fn other_exceptions_are_named() {
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 7, in <module>\n    sned()\nNameError: name 'sned' is not defined\n";
        let d = diagnose(err);
        assert_eq!(
            d,
            vec![
                "the program raised an uncaught exception (c.py, line 7): NameError: name 'sned' is not defined"
            ]
        );
    }

    #[test]
    fn python2_sendto_of_a_str() {
        let err = "Traceback (most recent call last):\n  File \"/tmp/w/UDPPingerClient.py\", line 14, in <module>\n    clientSocket.sendto(message, (serverName, serverPort))\nTypeError: a bytes-like object is required, not 'str'\n";
        let d = diagnose(err);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("this looks like Python 2 code (UDPPingerClient.py, line 14): `clientSocket.sendto(message, (serverName, serverPort))` sends a str"), "{d:?}");
        assert!(d[0].contains("message.encode()"), "{d:?}");
        // In a function, with Python 3.11's carets under the call.
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 30, in <module>\n    ping(s, 1)\n  File \"/w/c.py\", line 12, in ping\n    sock.send(msg)\n    ^^^^^^^^^^^^^^\nTypeError: a bytes-like object is required, not 'str'\n";
        let d = diagnose(err);
        assert!(
            d[0].contains("Python 2 code (c.py, line 12): `sock.send(msg)`"),
            "{d:?}"
        );
    }

    #[test]
    fn python2_ord_of_an_octet() {
        let d = diagnose(
            "Traceback (most recent call last):\n  File \"dnsclient.py\", line 27, in read_name\n    length = ord(msg[offset])\n             ^^^^^^^^^^^^^^^^\nTypeError: ord() expected string of length 1, but int found\n",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("Python 2"), "{d:?}");
        assert!(d[0].contains("`length = ord(msg[offset])`"), "{d:?}");
    }

    #[test]
    fn python2_except_comma() {
        let err = "  File \"/w/c.py\", line 20\n    except timeout, e:\n           ^^^^^^^^^^\nSyntaxError: multiple exception types must be parenthesized\n";
        let d = diagnose(err);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("Python 2"), "{d:?}");
        assert!(d[0].contains("`except timeout as e:`"), "{d:?}");
    }

    #[test]
    fn other_type_errors_are_not_called_python_2() {
        // bytes.split(' ') is a Python 3 str/bytes mix-up, not Python 2 code.
        let err = "Traceback (most recent call last):\n  File \"/w/c.py\", line 18, in <module>\n    fields = data.split(' ')\nTypeError: a bytes-like object is required, not 'str'\n";
        let d = diagnose(err);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(!d[0].contains("Python 2"), "{d:?}");
        assert!(
            d[0].contains("mixes str and bytes (c.py, line 18): `fields = data.split(' ')`"),
            "{d:?}"
        );
        for err in [
            "Traceback (most recent call last):\n  File \"/w/c.py\", line 9, in <module>\n    print('RTT: ' + rtt)\nTypeError: can only concatenate str (not \"float\") to str\n",
            "Traceback (most recent call last):\n  File \"/w/c.py\", line 9, in <module>\n    s.sendto(b'x', ('localhost', '12000'))\nTypeError: 'str' object cannot be interpreted as an integer\n",
        ] {
            let d = diagnose(err);
            assert_eq!(d.len(), 1, "{d:?}");
            assert!(
                d[0].starts_with(
                    "the program raised an uncaught exception (c.py, line 9): TypeError"
                ),
                "{d:?}"
            );
        }
    }

    #[test]
    fn clean_stderr_says_nothing() {
        assert!(diagnose("").is_empty());
        assert!(diagnose("warning: something harmless\n").is_empty());
    }
}
