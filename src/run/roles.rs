//! Telling the lab's server apart from the student's client: students commit
//! the handout's `UDPPingerServer.py` beside their client, and a client lab
//! must grade the client.
//!
//! A file is taken for a server when its code binds the port of one of the
//! lab's servers (`serverSocket.bind(('', 12000))`, `new DatagramSocket(12000)`,
//! `net.ListenPacket("udp", ":12000")`, `UdpSocket::bind("0.0.0.0:12000")`, a C
//! `bind` of an address whose `sin_port` is the lab's port), when it listens
//! for TCP connections (`listen(`, `ServerSocket(`, `TcpListener::bind`), or
//! when its name is like a server's (the lab's `server_names`). Sending to the
//! server's port, or a name that says `client`, is what a client does and
//! never counts.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::submission::glob_match;

/// Bytes of a file read to judge it; a larger one is read only this far.
const READ_LIMIT: u64 = 256 * 1024;
/// Characters of a call's arguments looked at.
const ARGS_LIMIT: usize = 200;
/// Longest source line shown as evidence.
const EVIDENCE_LIMIT: usize = 80;

/// A call that binds or opens a listening endpoint; its arguments say which port.
static BIND_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(bind|ListenPacket|ListenUDP|ListenTCP|Listen|DatagramSocket)\s*\(")
        .expect("valid regex")
});
/// A call that listens for TCP connections, whatever the port.
static LISTEN_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(\.listen\s*\(|\blisten\s*\(\s*\w+\s*,|\bcreate_server\s*\(|\bServerSocket\s*\(|\bTcpListener::bind\s*\(|\bnet\.Listen\s*\(\s*"tcp)"#,
    )
    .expect("valid regex")
});
/// An assignment `name = …`, `name := …`, `obj.field = …` (not `==`, `<=`, `!=`).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)([A-Za-z_][\w.]*(?:->\w+)?)\s*:?=\s*([^=\n][^\n]*)$").expect("valid regex")
});
/// `#define NAME value`.
static DEFINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*#\s*define\s+(\w+)\s+([^\n]*)$").expect("valid regex"));
/// An identifier.
static IDENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z_]\w*").expect("valid regex"));

/// Why `rel` (a file of the submission under `root`) looks like the lab's
/// server, or `None` for a client. `names` are the lab's server-name globs,
/// `ports` the ports of its servers.
pub fn server_evidence(root: &Path, rel: &Path, names: &[String], ports: &[u16]) -> Option<String> {
    let text = read_text(&root.join(rel));
    code_evidence(&text, ports).or_else(|| name_evidence(rel, names))
}

/// The start of a text file (`""` for a binary or an unreadable file).
fn read_text(path: &Path) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(READ_LIMIT).read_to_end(&mut bytes));
    if read.is_err() || bytes.contains(&0) {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether the file's name marks a server: it matches a server glob and does not say `client`.
pub fn name_evidence(rel: &Path, names: &[String]) -> Option<String> {
    let name = rel.file_name()?.to_string_lossy();
    if name.to_ascii_lowercase().contains("client") {
        return None;
    }
    let glob = names.iter().find(|g| glob_match(g, &name))?;
    Some(format!(
        "its name is like the handout's server's (`{glob}`)"
    ))
}

/// Whether the code binds one of `ports`, or listens for TCP connections.
/// Comment lines do not count.
pub fn code_evidence(text: &str, ports: &[u16]) -> Option<String> {
    let text = &blank_comment_lines(text);
    if !ports.is_empty() {
        let carriers = port_carriers(text, ports);
        for call in BIND_CALL.find_iter(text) {
            let args = call_args(&text[call.end()..]);
            if mentions_port(args, ports)
                || IDENT.find_iter(args).any(|i| carriers.contains(i.as_str()))
            {
                let port = port_list(ports);
                return Some(format!(
                    "it binds {port}, the port of the lab's server ({})",
                    line_of(text, call.start())
                ));
            }
        }
    }
    let listen = LISTEN_CALL.find(text)?;
    Some(format!(
        "it listens for TCP connections ({})",
        line_of(text, listen.start())
    ))
}

/// `text` with every line that is only a comment (`#`, `//`, `/*`, `*`)
/// made empty; C's preprocessor lines (`#define`) are kept.
fn blank_comment_lines(text: &str) -> String {
    const DIRECTIVES: [&str; 5] = ["define", "include", "if", "undef", "pragma"];
    text.lines()
        .map(|line| {
            let t = line.trim_start();
            let directive = t
                .strip_prefix('#')
                .is_some_and(|d| DIRECTIVES.iter().any(|w| d.trim_start().starts_with(w)));
            let comment = t.starts_with("//")
                || t.starts_with("/*")
                || t.starts_with('*')
                || (t.starts_with('#') && !directive);
            if comment { "" } else { line }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifiers whose value holds one of `ports`: `serverPort = 12000`,
/// `addr = ('', serverPort)`, `servaddr.sin_port = htons(PORT)` (→ `servaddr`),
/// `#define PORT 12000`, followed through a few assignments.
fn port_carriers(text: &str, ports: &[u16]) -> HashSet<String> {
    let assignments: Vec<(String, &str)> = ASSIGNMENT
        .captures_iter(text)
        .chain(DEFINE.captures_iter(text))
        .filter_map(|c| {
            let target = c.get(1)?.as_str();
            let root = target.split(['.', '-']).next()?.to_string();
            Some((root, c.get(2)?.as_str()))
        })
        .collect();
    let mut carriers = HashSet::new();
    for _ in 0..4 {
        let before = carriers.len();
        for (name, value) in &assignments {
            let carries = mentions_port(value, ports)
                || IDENT
                    .find_iter(value)
                    .any(|i| carriers.contains(i.as_str()));
            if carries {
                carriers.insert(name.clone());
            }
        }
        if carriers.len() == before {
            break;
        }
    }
    carriers
}

/// Whether `s` holds one of `ports` as a whole number.
fn mentions_port(s: &str, ports: &[u16]) -> bool {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .any(|w| w.parse::<u16>().is_ok_and(|n| ports.contains(&n)))
}

/// The arguments of a call whose `(` was just consumed: up to the matching
/// `)`, at most [`ARGS_LIMIT`] characters.
fn call_args(rest: &str) -> &str {
    let mut depth = 1usize;
    for (i, c) in rest.char_indices() {
        if i >= ARGS_LIMIT {
            return &rest[..i];
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..i];
                }
            }
            _ => {}
        }
    }
    rest
}

/// `UDP port 12000` style words for the lab's ports.
fn port_list(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    match list.as_slice() {
        [one] => format!("port {one}"),
        _ => format!("one of ports {}", list.join(", ")),
    }
}

/// `line N: `code`` for the line holding byte `at`.
fn line_of(text: &str, at: usize) -> String {
    let number = text[..at].matches('\n').count() + 1;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line = text[start..end].trim();
    let shown: String = line.chars().take(EVIDENCE_LIMIT).collect();
    let more = if shown.len() < line.len() { "…" } else { "" };
    format!("line {number}: `{shown}{more}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: &[u16] = &[12000];

    fn names() -> Vec<String> {
        crate::spec::DEFAULT_SERVER_NAMES.map(String::from).to_vec()
    }

    #[test]
    fn the_handouts_python_server_binds_the_port() {
        let server = "import random\nfrom socket import *\nserverSocket = socket(AF_INET, SOCK_DGRAM)\nserverSocket.bind(('', 12000))\nwhile True:\n    message, address = serverSocket.recvfrom(1024)\n";
        let why = code_evidence(server, PORTS).unwrap();
        assert!(why.contains("binds port 12000"), "{why}");
        assert!(
            why.contains("line 4: `serverSocket.bind(('', 12000))`"),
            "{why}"
        );
        // Through a variable, and a tuple built from it.
        let server = "PORT = 12000\naddr = ('0.0.0.0', PORT)\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(addr)\n";
        assert!(code_evidence(server, PORTS).unwrap().contains("line 4"));
    }

    #[test]
    fn a_client_that_names_the_server_is_a_client() {
        let client = "from socket import *\nserverName = 'localhost'\nserverPort = 12000\nclientSocket = socket(AF_INET, SOCK_DGRAM)\nclientSocket.settimeout(1)\nclientSocket.sendto(b'Ping 1', (serverName, serverPort))\nif serverPort == 12000: pass\n";
        assert_eq!(code_evidence(client, PORTS), None);
        // A client may bind an ephemeral port.
        let client = "s = socket(AF_INET, SOCK_DGRAM)\ns.bind(('', 0))\ns.sendto(b'x', ('localhost', 12000))\n";
        assert_eq!(code_evidence(client, PORTS), None);
        assert_eq!(
            name_evidence(Path::new("client_to_server.py"), &names()),
            None
        );
        assert_eq!(
            name_evidence(Path::new("UDPPingerClient.py"), &names()),
            None
        );
        assert_eq!(
            name_evidence(Path::new("ServerClient.java"), &names()),
            None
        );
    }

    #[test]
    fn server_names() {
        for name in [
            "UDPPingerServer.py",
            "server.py",
            "udp_server.go",
            "SERVER.C",
        ] {
            assert!(name_evidence(Path::new(name), &names()).is_some(), "{name}");
        }
        assert_eq!(name_evidence(Path::new("pinger.py"), &names()), None);
        let custom = vec!["PingServe*".to_string()];
        assert!(name_evidence(Path::new("PingServe.py"), &custom).is_some());
        assert_eq!(name_evidence(Path::new("server.py"), &custom), None);
    }

    #[test]
    fn servers_in_other_languages() {
        let java = "DatagramSocket socket = new DatagramSocket(12000);\nsocket.receive(request);";
        assert!(code_evidence(java, PORTS).unwrap().contains("line 1"));
        let java_client = "DatagramSocket socket = new DatagramSocket();\nDatagramPacket p = new DatagramPacket(buf, buf.length, addr, 12000);";
        assert_eq!(code_evidence(java_client, PORTS), None);
        let tcp = "ServerSocket welcome = new ServerSocket(6789);";
        assert!(code_evidence(tcp, PORTS).unwrap().contains("TCP"));
        let go = "conn, err := net.ListenPacket(\"udp\", \":12000\")";
        assert!(code_evidence(go, PORTS).is_some());
        let go_struct =
            "addr := &net.UDPAddr{Port: 12000}\nconn, _ := net.ListenUDP(\"udp\", addr)";
        assert!(code_evidence(go_struct, PORTS).unwrap().contains("line 2"));
        let go_client = "conn, err := net.Dial(\"udp\", \"127.0.0.1:12000\")\nl, _ := net.ListenPacket(\"udp\", \":0\")";
        assert_eq!(code_evidence(go_client, PORTS), None);
        let rust = "let socket = UdpSocket::bind(\"0.0.0.0:12000\")?;";
        assert!(code_evidence(rust, PORTS).is_some());
        let rust_client = "let socket = UdpSocket::bind(\"0.0.0.0:0\")?;\nsocket.send_to(b\"Ping\", \"127.0.0.1:12000\")?;";
        assert_eq!(code_evidence(rust_client, PORTS), None);
        let c = "#define PORT 12000\nservaddr.sin_port = htons(PORT);\nbind(sockfd, (const struct sockaddr *)&servaddr, sizeof(servaddr));";
        assert!(code_evidence(c, PORTS).unwrap().contains("line 3"));
        let c_client = "servaddr.sin_port = htons(12000);\nsendto(sockfd, msg, n, 0, (struct sockaddr *)&servaddr, sizeof(servaddr));";
        assert_eq!(code_evidence(c_client, PORTS), None);
        let py_tcp = "s.bind(('', 6789))\ns.listen(1)\n";
        assert!(code_evidence(py_tcp, PORTS).unwrap().contains("TCP"));
    }

    #[test]
    fn commented_out_code_does_not_count() {
        let client = "# serverSocket.bind(('', 12000))\n// new DatagramSocket(12000)\n  * s.listen(1)\ns = socket(AF_INET, SOCK_DGRAM)\n";
        assert_eq!(code_evidence(client, PORTS), None);
        let c = "#define PORT 12000\n# define ADDR 0\naddr.sin_port = htons(PORT);\nbind(fd, &addr, len);\n";
        assert!(code_evidence(c, PORTS).unwrap().contains("line 4"));
    }

    #[test]
    fn without_servers_only_listening_counts() {
        assert_eq!(code_evidence("s.bind(('', 12000))", &[]), None);
        assert!(code_evidence("s.listen(5)", &[]).is_some());
    }

    #[test]
    fn long_lines_are_cut() {
        let line = format!("s.bind(('', 12000)) # {}", "x".repeat(200));
        let why = code_evidence(&line, PORTS).unwrap();
        assert!(why.ends_with("…`)"), "{why}");
    }
}
