//! Transcript answers replayed against netgrade's real POP3 server: the
//! client's lines of a student's session (`C: list`, `C: retr 1` …) are
//! sent, in order, to a server of the lab's maildrop, which records every
//! line both ways as it does in any run. The `pop3-session` check then
//! compares the server's lines the student wrote with what the server
//! really said, and the maildrop the session left.
//!
//! Each question gets a server of its own: a first session the whole
//! maildrop; a second session ("five minutes later", `expect:
//! after-delete` or `after-keep`) the maildrop a right first session
//! leaves, so a mistake in the first session is not charged again in the
//! second. A transcript that starts after the login (the textbook's start
//! with `C: list`) is logged in first with the lab's user and password.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::answers::Answer;
use crate::spec::{CheckKind, CheckSpec, Expected, Lab, ServerKind};
use crate::trace::{EventKind, Recorder};

/// How long a reply may take.
const REPLY_WAIT: Duration = Duration::from_secs(3);
/// Most commands of one transcript replayed.
const MAX_COMMANDS: usize = 200;

/// One line of a student's transcript: who says it, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Said {
    /// `C` (the client) or `S` (the server).
    pub who: char,
    /// The text after `C:` or `S:`, trimmed at the end.
    pub text: String,
    /// Its line in the answer, from 1.
    pub line: usize,
}

/// The `C:` and `S:` lines of an answer (other lines are notes).
pub fn transcript(text: &str) -> Vec<Said> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let t = l
                .trim_start()
                .trim_start_matches(['-', '*', '>', '`'])
                .trim_start();
            let who = t.chars().next()?.to_ascii_uppercase();
            let rest = t.get(1..)?.trim_start();
            let rest = rest.strip_prefix(':')?;
            matches!(who, 'C' | 'S').then(|| Said {
                who,
                text: rest.trim().trim_end_matches('`').trim_end().to_string(),
                line: i + 1,
            })
        })
        .collect()
}

/// The server name a question's replay records its lines under.
pub fn server_name(lab_server: &str, question: &str) -> String {
    format!("{lab_server}:{question}")
}

/// The session mode a question's `expect` names: `delete`, `keep`,
/// `after-delete`, `after-keep`.
pub fn mode(spec: &CheckSpec) -> &str {
    match &spec.expect {
        Some(Expected::Text(t)) => t.trim(),
        _ => "",
    }
}

/// Replays every `pop3-session` question's transcript (the answer to it in
/// `answers`, matched by `labels`) and records, for each, an
/// [`EventKind::Replayed`] after the server's own lines.
pub async fn run(lab: &Lab, answers: &[(String, Answer)], recorder: &Recorder) {
    let Some(server) = lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Pop3)
    else {
        return;
    };
    for spec in lab
        .checks
        .iter()
        .filter(|c| c.kind() == Some(CheckKind::Pop3Session))
    {
        let Some((_, answer)) = answers.iter().find(|(id, _)| *id == spec.id.value) else {
            continue;
        };
        let lines = transcript(&answer.text);
        let mut config = crate::servers::pop3_config(server, lab);
        config.name = server_name(&server.name, &spec.id.value);
        if mode(spec) == "after-delete" {
            config.messages.clear();
        }
        let prepended = session(config, &lines, recorder).await;
        recorder.record(EventKind::Replayed {
            question: spec.id.value.clone(),
            server: server_name(&server.name, &spec.id.value),
            prepended,
        });
    }
}

/// One session against a server of `config`: the client's lines of
/// `lines`, after a login of its own when they have none. How many
/// commands netgrade sent before the student's.
async fn session(
    config: crate::servers::pop3::Pop3Config,
    lines: &[Said],
    recorder: &Recorder,
) -> u32 {
    let (user, password) = (config.user.clone(), config.password.clone());
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
        return 0;
    };
    let Ok(addr) = listener.local_addr() else {
        return 0;
    };
    let server = tokio::spawn(crate::servers::pop3::run(
        listener,
        config,
        recorder.clone(),
    ));
    let mut commands: Vec<String> = lines
        .iter()
        .filter(|s| s.who == 'C')
        .map(|s| s.text.clone())
        .take(MAX_COMMANDS)
        .collect();
    let logs_in = commands.first().is_some_and(|c| {
        let verb = c.split_whitespace().next().unwrap_or_default();
        verb.eq_ignore_ascii_case("user") || verb.eq_ignore_ascii_case("apop")
    });
    let prepended = if logs_in {
        0
    } else {
        commands.splice(0..0, [format!("USER {user}"), format!("PASS {password}")]);
        2
    };
    if let Ok(Ok(stream)) = timeout(REPLY_WAIT, TcpStream::connect(addr)).await {
        talk(stream, &commands).await;
    }
    // Let the server record the session's end (its maildrop after QUIT).
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    prepended
}

/// Sends each command and reads its reply (every line of a multi-line one).
async fn talk(stream: TcpStream, commands: &[String]) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    // The greeting.
    if !matches!(
        timeout(REPLY_WAIT, read.read_until(b'\n', &mut line)).await,
        Ok(Ok(1..))
    ) {
        return;
    }
    for command in commands {
        if write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        line.clear();
        if !matches!(
            timeout(REPLY_WAIT, read.read_until(b'\n', &mut line)).await,
            Ok(Ok(1..))
        ) {
            return;
        }
        if line.starts_with(b"+OK") && multi_line(command) {
            loop {
                line.clear();
                match timeout(REPLY_WAIT, read.read_until(b'\n', &mut line)).await {
                    Ok(Ok(1..)) if line != b".\r\n" => {}
                    _ => break,
                }
            }
        }
    }
}

/// Whether the reply to `command` is multi-line when it is `+OK`
/// (RFC 1939: LIST and UIDL without an argument, RETR, TOP; CAPA).
pub fn multi_line(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let verb = words.next().unwrap_or_default().to_ascii_uppercase();
    let has_arg = words.next().is_some();
    match verb.as_str() {
        "LIST" | "UIDL" => !has_arg,
        "RETR" | "TOP" | "CAPA" => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_are_read_as_written() {
        let t =
            transcript("C: list\nS: 1 498\n  s:2 912\nS: .\n(retrieves)\n- C: retr 1\n`C: quit`\n");
        let got: Vec<(char, &str, usize)> =
            t.iter().map(|s| (s.who, s.text.as_str(), s.line)).collect();
        assert_eq!(
            got,
            [
                ('C', "list", 1),
                ('S', "1 498", 2),
                ('S', "2 912", 3),
                ('S', ".", 4),
                ('C', "retr 1", 6),
                ('C', "quit", 7)
            ]
        );
        assert!(multi_line("list") && !multi_line("LIST 2") && multi_line("retr 1"));
    }
}
