//! The scenarios: each runs a fixed series of announces against the tracker
//! and judges them for one check. Each expects a torrent of its own (an
//! info hash no other scenario uses) so that counts and lists hold only its
//! own peers.

use std::net::{IpAddr, Ipv4Addr};

use super::bencode::Value;
use super::reply::{self, PeerForm, Reply};
use super::{
    Event, Exchange, FakePeer, Finding, Judgement, Outcome, Target, announce, connect, fake_peers,
    query, quote,
};
use crate::torrent::InfoHash;

/// The checks, in the order [`run_all`] runs them.
pub const CHECKS: [&str; 6] = [
    "bencoded",
    "interval",
    "peer-list",
    "events",
    "failure-reason",
    "concurrent-announces",
];

/// Peers announcing at once in `concurrent-announces`.
pub const CONCURRENT: usize = 20;

/// `left` of a peer still downloading.
const LEECHING: u64 = 1000;

/// Runs check `name` with torrent `hash`; `None` for an unknown name.
pub async fn run(target: &Target, name: &str, hash: InfoHash) -> Option<Outcome> {
    Some(match name {
        "bencoded" => bencoded(target, hash).await,
        "interval" => interval(target, hash).await,
        "peer-list" => peer_list(target, hash).await,
        "events" => events(target, hash).await,
        "failure-reason" => failure_reason(target, hash).await,
        "concurrent-announces" => concurrent_announces(target, hash).await,
        _ => return None,
    })
}

/// Runs every check of [`CHECKS`], in order, check `i` with `hashes[i]`
/// (cycling when fewer are given; at least one must be).
pub async fn run_all(target: &Target, hashes: &[InfoHash]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (i, name) in CHECKS.iter().enumerate() {
        let hash = hashes[i % hashes.len()];
        out.push(run(target, name, hash).await.expect("a known check"));
    }
    out
}

/// An info hash for check `name` derived from `seed`, for trackers that
/// accept any torrent.
pub fn info_hash_for(seed: u64, name: &str) -> InfoHash {
    let mut input = seed.to_be_bytes().to_vec();
    input.extend(name.as_bytes());
    InfoHash(crate::torrent::sha1(&input))
}

/// A scenario's announces so far.
struct Run<'a> {
    target: &'a Target,
    hash: InfoHash,
    exchanges: Vec<Exchange>,
}

impl<'a> Run<'a> {
    fn new(target: &'a Target, hash: InfoHash) -> Self {
        Run {
            target,
            hash,
            exchanges: Vec::new(),
        }
    }

    /// A well-formed announce from `peer`; returns its index.
    async fn send(&mut self, peer: &FakePeer, left: u64, event: Event, extra: &str) -> usize {
        let q = query(&self.hash, peer, left, event, extra);
        self.raw(&peer.name, peer.ip, &q).await
    }

    /// An announce with query `q`, as `who` from `ip`; returns its index.
    async fn raw(&mut self, who: &str, ip: Ipv4Addr, q: &str) -> usize {
        let ex = announce(self.target, who, ip, q).await;
        self.exchanges.push(ex);
        self.exchanges.len() - 1
    }

    fn done(self, check: &'static str, judgement: Judgement) -> Outcome {
        Outcome {
            check,
            exchanges: self.exchanges,
            judgement,
        }
    }
}

/// The address the tracker saw `peer` announce from in `ex`, or the one it
/// was meant to use.
fn source(ex: &Exchange, peer: &FakePeer) -> Ipv4Addr {
    match ex.from.map(|a| a.ip()) {
        Some(IpAddr::V4(ip)) => ip,
        _ => peer.ip,
    }
}

/// The usable reply of `ex`, or a finding that says why it is not.
fn usable(ex: &Exchange, context: &str) -> Result<Reply, Finding> {
    reply::read(ex).map_err(|why| {
        Finding::new(
            format!(
                "{context}, the announce got no usable reply: {why}. A good announce must be answered with a bencoded dictionary holding `interval` and `peers`."
            ),
            vec![ex.evidence()],
        )
    })
}

/// `bencoded`: every reply to a good announce is one valid, canonical
/// bencoded dictionary, served as HTTP 200.
pub async fn bencoded(target: &Target, hash: InfoHash) -> Outcome {
    let p = fake_peers(target.seed, 0, 2);
    let (a, b) = (&p[0], &p[1]);
    let mut run = Run::new(target, hash);
    run.send(a, LEECHING, Event::Started, "&compact=1").await;
    run.send(b, 0, Event::Started, "&compact=1").await;
    run.send(a, LEECHING, Event::None, "").await;
    run.send(a, 0, Event::Completed, "&compact=1").await;
    run.send(b, 0, Event::Stopped, "&compact=1").await;
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for ex in &run.exchanges {
        match canonical(ex) {
            Ok(what) => evidence.push(format!("{} -> {what}", ex.request())),
            Err(why) => problems.push((why, ex.evidence())),
        }
    }
    let judgement = match problems.first() {
        None => Ok(evidence),
        Some((why, _)) => Err(Finding::new(
            format!(
                "{} of {} replies are not one canonical bencoded dictionary served as HTTP 200; the first: {why}",
                problems.len(),
                run.exchanges.len()
            ),
            problems
                .into_iter()
                .map(|(w, e)| format!("{e}: {w}"))
                .collect(),
        )),
    };
    run.done("bencoded", judgement)
}

/// What is wrong with a good announce's reply as bencode, or what it is.
fn canonical(ex: &Exchange) -> Result<String, String> {
    if let Some(why) = unframed(ex) {
        return Err(why);
    }
    if let Some(why) = reply::not_a_dict(ex) {
        return Err(format!(
            "{why}. The body must be exactly one bencoded dictionary"
        ));
    }
    match (ex.status, &ex.status_line) {
        (Some(200), _) => {}
        (_, Some(line)) => {
            return Err(format!(
                "the status line is {}: answer an announce with `HTTP/1.1 200 OK`",
                quote(line.as_bytes(), 60)
            ));
        }
        (_, None) => {
            return Err("the reply has no HTTP status line: start with `HTTP/1.1 200 OK`, then the header lines, a blank line and the bencoded body".into());
        }
    }
    let decoded = ex.bencode.as_ref().expect("a dictionary");
    if let Some(d) = decoded.departures.first() {
        return Err(format!(
            "the dictionary is not in canonical form: {}, {} of the body. Bencode has one encoding per value: dictionary keys sorted as raw byte strings, each once; integers without leading zeros or -0",
            d.message,
            crate::probes::http::evidence(&ex.body, d.offset)
        ));
    }
    let Value::Dict(pairs) = &decoded.value else {
        unreachable!("checked to be a dictionary")
    };
    let keys: Vec<String> = pairs
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    Ok(format!(
        "200, canonical dictionary of {} bytes with keys {}",
        ex.body.len(),
        keys.join(", ")
    ))
}

/// Why a reply that timed out in its body never ended, if it did.
fn unframed(ex: &Exchange) -> Option<String> {
    if ex.end != super::End::TimedOut("body") {
        return None;
    }
    Some(match ex.framing {
        Some(crate::probes::http::Framing::UntilClose) => format!(
            "the reply never ended: it has no Content-Length, is not chunked, and the connection stayed open, so a client waits until it gives up. Send `Content-Length: {}` (or close the connection after the body)",
            ex.body.len()
        ),
        _ => "the reply never ended: fewer bytes came than its Content-Length (or chunks) promised, and the connection stayed open".into(),
    })
}

/// `interval`: the reply has an integer `interval` > 0, and `min interval`,
/// when sent, is an integer no larger.
pub async fn interval(target: &Target, hash: InfoHash) -> Outcome {
    let p = fake_peers(target.seed, 1, 1);
    let mut run = Run::new(target, hash);
    run.send(&p[0], LEECHING, Event::Started, "&compact=1")
        .await;
    run.send(&p[0], LEECHING, Event::None, "&compact=1").await;
    let mut evidence = Vec::new();
    let mut judgement = Ok(());
    for ex in &run.exchanges {
        match check_interval(ex) {
            Ok(what) => evidence.push(format!("{} -> {what}", ex.request())),
            Err(f) => {
                judgement = Err(f);
                break;
            }
        }
    }
    run.send(&p[0], LEECHING, Event::Stopped, "&compact=1")
        .await;
    run.done("interval", judgement.map(|()| evidence))
}

fn check_interval(ex: &Exchange) -> Result<String, Finding> {
    usable(ex, &format!("When peer {} announced", ex.who))?;
    let dict = ex.dict().expect("a usable reply is a dictionary");
    let fail = |m: String| {
        let m = format!("In the reply to {}'s announce, {m}", ex.who);
        Finding::new(m, vec![ex.evidence()])
    };
    let n = match dict.get(b"interval") {
        None => {
            return Err(fail(
                "there is no `interval`: add `8:intervali1800e` (seconds until the client should announce again)".into(),
            ));
        }
        Some(Value::Int(n)) if *n > 0 => *n,
        Some(Value::Int(n)) => {
            return Err(fail(format!(
                "`interval` is {n}: it must be a number of seconds greater than 0, e.g. i1800e"
            )));
        }
        Some(other) => {
            return Err(fail(format!(
                "`interval` is {}, not an integer: write it as i1800e, not as a string like 4:1800",
                other.kind()
            )));
        }
    };
    match dict.get(b"min interval") {
        None => Ok(format!("interval {n}")),
        Some(Value::Int(m)) if (0..=n).contains(m) => Ok(format!("interval {n}, min interval {m}")),
        Some(Value::Int(m)) => Err(fail(format!(
            "`min interval` is {m} but `interval` is {n}: the minimum must lie between 0 and the interval"
        ))),
        Some(other) => Err(fail(format!(
            "`min interval` is {}, not an integer",
            other.kind()
        ))),
    }
}

/// Who is listed: what a listing must hold and must not.
struct Expect<'p> {
    /// The peer that asked, with the address it asked from.
    requester: (&'p FakePeer, Ipv4Addr),
    /// Peers that must be listed, with their addresses.
    present: Vec<(&'p FakePeer, Ipv4Addr)>,
    /// Peers that must not be listed.
    absent: Vec<(&'p FakePeer, Ipv4Addr)>,
    /// The client sent `no_peer_id=1`.
    no_peer_id: bool,
    /// Listing the requester is a failure (judged by `peer-list` alone, so
    /// that one mistake fails one check); else its entry is ignored.
    forbid_self: bool,
}

/// What is wrong with the peers listed in `r`, as a sentence; `None` when
/// the list is right.
fn check_listing(r: &Reply, e: &Expect) -> Option<String> {
    let (me, my_ip) = e.requester;
    let listed_self = r.peers.iter().find(|l| l.is(me, my_ip));
    if let Some(l) = listed_self.filter(|_| e.forbid_self) {
        return Some(format!(
            "it lists the requesting peer {} itself ({}): a tracker never gives a peer its own address, leave the requester out of the list",
            me.name,
            l.show()
        ));
    }
    for (p, ip) in &e.present {
        if let Some(why) = check_present(r, p, *ip, e.no_peer_id) {
            return Some(why);
        }
    }
    e.absent.iter().find_map(|(p, ip)| {
        r.peers.iter().find(|l| l.is(p, *ip)).map(|l| {
            format!(
                "it still lists peer {} ({}), which announced event=stopped: remove a peer from the swarm when it stops",
                p.name,
                l.show()
            )
        })
    })
}

/// What is wrong with how `r` lists `p` (which announced from `ip`).
fn check_present(r: &Reply, p: &FakePeer, ip: Ipv4Addr, no_peer_id: bool) -> Option<String> {
    let want = format!("{ip}:{}", p.port);
    let Some(l) = r.peers.iter().find(|l| l.is(p, ip)) else {
        let swapped = r
            .peers
            .iter()
            .any(|l| l.port == i64::from(p.port.swap_bytes()));
        let hint = if swapped {
            " (an entry has its port with the bytes swapped: write ports in network byte order, big-endian)"
        } else {
            ""
        };
        return Some(format!("peer {} ({want}) is missing{hint}", p.name));
    };
    if l.ip != ip.to_string() || l.port != i64::from(p.port) {
        return Some(format!(
            "peer {} is listed as {} but announced port {} from {ip}: list the address the request came from and the `port` it sent",
            p.name,
            l.show(),
            p.port
        ));
    }
    match (r.form, &l.peer_id, no_peer_id) {
        (PeerForm::Dictionaries, None, false) => Some(format!(
            "peer {} ({want}) has no `peer id` in the dictionary form: include `peer id` (its 20 bytes) unless the client sent no_peer_id=1",
            p.name
        )),
        (_, Some(id), _) if id[..] != p.peer_id[..] => Some(format!(
            "peer {} ({want}) has `peer id` {} but announced {}: keep the 20 bytes exactly as percent-decoded",
            p.name,
            quote(id, 40),
            quote(&p.peer_id, 40)
        )),
        _ => None,
    }
}

/// Judges one announce of a listing scenario: usable, and the right peers.
fn judge_listing(ex: &Exchange, context: &str, e: &Expect) -> Result<String, Finding> {
    let r = usable(ex, context)?;
    match check_listing(&r, e) {
        None => Ok(format!(
            "{} -> {} form: {}",
            ex.request(),
            form_name(r.form),
            r.show_peers()
        )),
        Some(why) => Err(Finding::new(
            format!(
                "{context}, the reply's peer list is wrong: {why}. It listed: {}.",
                r.show_peers()
            ),
            vec![ex.evidence()],
        )),
    }
}

fn form_name(f: PeerForm) -> &'static str {
    match f {
        PeerForm::Compact => "compact",
        PeerForm::Dictionaries => "dictionary",
    }
}

/// `peer-list`: after A, B and C start, D is given A, B and C (right
/// addresses and ports) in whichever form the tracker chooses for
/// `compact=1`, `compact=0` and `compact=0&no_peer_id=1`, never itself; A
/// announcing again is given B, C and D, not A.
pub async fn peer_list(target: &Target, hash: InfoHash) -> Outcome {
    let p = fake_peers(target.seed, 2, 4);
    let mut run = Run::new(target, hash);
    let mut ips = Vec::new();
    for peer in &p[..3] {
        let i = run.send(peer, LEECHING, Event::Started, "&compact=1").await;
        ips.push(source(&run.exchanges[i], peer));
    }
    let steps: [(&str, Event, &str); 3] = [
        ("compact=1", Event::Started, "&compact=1"),
        ("compact=0", Event::None, "&compact=0"),
        (
            "compact=0&no_peer_id=1",
            Event::None,
            "&compact=0&no_peer_id=1",
        ),
    ];
    let mut judged = Vec::new();
    for (what, event, extra) in steps {
        let i = run.send(&p[3], LEECHING, event, extra).await;
        judged.push((
            i,
            3,
            format!("After A, B and C announced event=started, D's announce ({what})"),
        ));
    }
    let i = run.send(&p[0], LEECHING, Event::None, "&compact=1").await;
    judged.push((i, 0, "When A announced again after B, C and D".to_string()));
    let d_ip = source(&run.exchanges[judged[0].0], &p[3]);
    ips.push(d_ip);
    let judgement = judge_peer_list(&run.exchanges, &judged, &p, &ips);
    run.done("peer-list", judgement)
}

fn judge_peer_list(
    exchanges: &[Exchange],
    judged: &[(usize, usize, String)],
    p: &[FakePeer],
    ips: &[Ipv4Addr],
) -> Judgement {
    let mut evidence = Vec::new();
    for (i, ex) in exchanges.iter().enumerate().take(3) {
        let context = format!("When {} announced event=started", p[i].name);
        let e = Expect {
            requester: (&p[i], ips[i]),
            present: Vec::new(),
            absent: Vec::new(),
            no_peer_id: false,
            forbid_self: true,
        };
        evidence.push(judge_listing(ex, &context, &e)?);
    }
    for (i, who, context) in judged {
        let ex = &exchanges[*i];
        if ex.target.contains("compact=0") && reply::read(ex).is_err() {
            let mut f = usable(ex, context).expect_err("an unusable reply");
            f.message.push_str(" `compact` only says what the client prefers (BEP 23): a tracker that speaks only the compact form answers compact=0 with a compact list, it does not refuse.");
            return Err(f);
        }
        let others = (0..4)
            .filter(|k| k != who)
            .map(|k| (&p[k], ips[k]))
            .collect();
        let e = Expect {
            requester: (&p[*who], ips[*who]),
            present: others,
            absent: Vec::new(),
            no_peer_id: exchanges[*i].target.contains("no_peer_id=1"),
            forbid_self: true,
        };
        evidence.push(judge_listing(&exchanges[*i], context, &e)?);
    }
    Ok(evidence)
}

/// `events`: a peer that announces `stopped` is no longer given to others;
/// `completed` with left=0 moves a peer from `incomplete` to `complete`
/// (when the tracker sends these counts, they must be right).
pub async fn events(target: &Target, hash: InfoHash) -> Outcome {
    let mut p = fake_peers(target.seed, 3, 4);
    p[3].name = "O".into();
    let (a, b, c, o) = (&p[0], &p[1], &p[2], &p[3]);
    let mut run = Run::new(target, hash);
    let mut ips = Vec::new();
    for peer in [a, b, c] {
        let i = run.send(peer, LEECHING, Event::Started, "&compact=1").await;
        ips.push(source(&run.exchanges[i], peer));
    }
    let stop = run.send(b, LEECHING, Event::Stopped, "&compact=1").await;
    let before = run.send(o, LEECHING, Event::Started, "&compact=1").await;
    let done = run.send(c, 0, Event::Completed, "&compact=1").await;
    let after = run.send(o, LEECHING, Event::None, "&compact=1").await;
    let o_ip = source(&run.exchanges[before], o);
    let s = Swarm {
        p: &p,
        ips: &ips,
        o_ip,
    };
    let judgement = judge_events(&run.exchanges, &s, [stop, before, done, after]);
    run.done("events", judgement)
}

/// The events scenario's peers and the addresses they announced from.
struct Swarm<'a> {
    p: &'a [FakePeer],
    ips: &'a [Ipv4Addr],
    o_ip: Ipv4Addr,
}

fn judge_events(ex: &[Exchange], s: &Swarm, [stop, before, done, after]: [usize; 4]) -> Judgement {
    let mut evidence = Vec::new();
    for (i, e) in ex.iter().enumerate().take(3) {
        usable(e, &format!("When {} announced event=started", s.p[i].name))?;
    }
    stopped_reply(&ex[stop])?;
    evidence.push(format!("{} -> {}", ex[stop].request(), ex[stop].response()));
    usable(&ex[done], "When C announced event=completed with left=0")?;
    let steps = [
        (
            before,
            "After B announced event=stopped, O's first announce",
            (0, 3),
        ),
        (
            after,
            "After C announced event=completed with left=0, O's next announce",
            (1, 2),
        ),
    ];
    for (i, context, counts) in steps {
        let e = Expect {
            requester: (&s.p[3], s.o_ip),
            present: vec![(&s.p[0], s.ips[0]), (&s.p[2], s.ips[2])],
            absent: vec![(&s.p[1], s.ips[1])],
            no_peer_id: false,
            forbid_self: false,
        };
        evidence.push(judge_listing(&ex[i], context, &e)?);
        evidence.push(check_counts(&ex[i], context, counts)?);
    }
    Ok(evidence)
}

/// The reply to `stopped` must still be a dictionary, not a failure.
fn stopped_reply(ex: &Exchange) -> Result<(), Finding> {
    let refused = ex.dict().and_then(|d| d.get(b"failure reason")).is_some();
    let why = reply::not_a_dict(ex).or(refused.then(|| "it is a `failure reason`".to_string()));
    match why {
        None => Ok(()),
        Some(why) => Err(Finding::new(
            format!(
                "When B announced event=stopped, the reply was not a bencoded dictionary: {why}. Answer a stop like any announce (the peer list may be empty)."
            ),
            vec![ex.evidence()],
        )),
    }
}

/// Checks `complete` and `incomplete`, when sent, against `(seeders, leechers)`.
fn check_counts(
    ex: &Exchange,
    context: &str,
    (seeders, leechers): (i64, i64),
) -> Result<String, Finding> {
    let r = usable(ex, context)?;
    let mut wrong = Vec::new();
    if r.complete.is_some_and(|n| n != seeders) {
        wrong.push(format!(
            "`complete` is {} (want {seeders})",
            r.complete.unwrap_or(0)
        ));
    }
    if r.incomplete.is_some_and(|n| n != leechers) {
        wrong.push(format!(
            "`incomplete` is {} (want {leechers})",
            r.incomplete.unwrap_or(0)
        ));
    }
    let dict = ex.dict().expect("a usable reply is a dictionary");
    for key in [&b"complete"[..], b"incomplete"] {
        if let Some(v @ (Value::Bytes(_) | Value::List(_) | Value::Dict(_))) = dict.get(key) {
            wrong.push(format!(
                "`{}` is {}, not an integer",
                String::from_utf8_lossy(key),
                v.kind()
            ));
        }
    }
    if wrong.is_empty() {
        let shown = |n: Option<i64>| n.map_or("not sent".to_string(), |n| n.to_string());
        return Ok(format!(
            "complete {}, incomplete {}",
            shown(r.complete),
            shown(r.incomplete)
        ));
    }
    Err(Finding::new(
        format!(
            "{context}, {}: the swarm then has {seeders} seeder(s) (left=0) and {leechers} leecher(s). `complete` counts peers whose last announce had left=0, `incomplete` the others; update a peer's `left` on every announce and drop stopped peers from both.",
            wrong.join(" and ")
        ),
        vec![ex.evidence()],
    ))
}

/// The bad requests of `failure-reason`: what each tests, and its query.
pub fn bad_requests(hash: &InfoHash, peer: &FakePeer) -> Vec<(&'static str, String)> {
    let good = query(hash, peer, LEECHING, Event::Started, "&compact=1");
    let hash_param = format!("info_hash={}", super::escape(&hash.0));
    let port_param = format!("port={}", peer.port);
    let short = format!("info_hash={}", super::escape(&hash.0[..19]));
    let hex = format!("info_hash={}", hash.hex());
    vec![
        (
            "an info_hash of 19 bytes",
            good.replace(&hash_param, &short),
        ),
        (
            "an info_hash of 40 bytes (hex text)",
            good.replace(&hash_param, &hex),
        ),
        ("no info_hash", good.replace(&format!("{hash_param}&"), "")),
        ("no port", good.replace(&format!("&{port_param}"), "")),
        (
            "a port that is not a number",
            good.replace(&port_param, "port=http"),
        ),
    ]
}

/// `failure-reason`: bad requests get a bencoded dictionary with a `failure
/// reason` string (any HTTP status), and good announces are still answered
/// afterwards.
pub async fn failure_reason(target: &Target, hash: InfoHash) -> Outcome {
    let p = fake_peers(target.seed, 4, 2);
    let mut run = Run::new(target, hash);
    let bad = bad_requests(&hash, &p[0]);
    for (what, q) in &bad {
        run.raw(&format!("A, {what}"), p[0].ip, q).await;
    }
    let a = run
        .send(&p[0], LEECHING, Event::Started, "&compact=1")
        .await;
    let b = run
        .send(&p[1], LEECHING, Event::Started, "&compact=1")
        .await;
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for ((what, _), ex) in bad.iter().zip(&run.exchanges) {
        match refusal(ex) {
            Ok(reason) => evidence.push(format!("{} -> failure reason {reason}", ex.request())),
            Err(why) => problems.push(format!("{what}: {why}; {}", ex.evidence())),
        }
    }
    let judgement = if let Some(first) = problems.first() {
        let head = first.split("; ").next().unwrap_or_default().to_string();
        Err(Finding::new(
            format!(
                "{} of {} bad announces were not answered with a bencoded `failure reason`; the first, {head}. Check info_hash (20 bytes once decoded), peer_id and port before using them, and answer e.g. `d14:failure reason17:invalid info_hashe` (any HTTP status), never an HTML page, an empty body or a closed connection.",
                problems.len(),
                bad.len()
            ),
            problems,
        ))
    } else {
        after_bad(&run.exchanges, a, b, &p).map(|more| [evidence, more].concat())
    };
    run.done("failure-reason", judgement)
}

/// The failure reason of a refused request, or why it is not a refusal.
fn refusal(ex: &Exchange) -> Result<String, String> {
    if let Some(why) = reply::not_a_dict(ex) {
        return Err(why);
    }
    let dict = ex.dict().expect("a dictionary");
    match dict.get(b"failure reason") {
        Some(Value::Bytes(b)) => Ok(quote(b, 80)),
        Some(other) => Err(format!(
            "`failure reason` is {}, not a string",
            other.kind()
        )),
        None if dict.get(b"peers").is_some() => {
            Err("the tracker accepted it and returned peers, with no `failure reason`".into())
        }
        None => Err("the dictionary has no `failure reason` key".into()),
    }
}

/// Good announces after the bad ones: both usable, B given A.
fn after_bad(ex: &[Exchange], a: usize, b: usize, p: &[FakePeer]) -> Judgement {
    let context = "After the bad requests, a good announce";
    usable(&ex[a], context)?;
    let e = Expect {
        requester: (&p[1], source(&ex[b], &p[1])),
        present: vec![(&p[0], source(&ex[a], &p[0]))],
        absent: Vec::new(),
        no_peer_id: false,
        forbid_self: false,
    };
    let listed = judge_listing(
        &ex[b],
        "After the bad requests and A's good announce, B's announce",
        &e,
    )?;
    Ok(vec![
        format!("{} -> {}", ex[a].request(), ex[a].response()),
        listed,
    ])
}

/// `concurrent-announces`: with one connection open and idle (nothing
/// sent), [`CONCURRENT`] peers announce at once; all are answered within
/// the deadlines, and a peer announcing afterwards is given all of them.
pub async fn concurrent_announces(target: &Target, hash: InfoHash) -> Outcome {
    let mut p = fake_peers(target.seed, 5, CONCURRENT + 2);
    p[CONCURRENT].name = "O".into();
    let netns = target.netns.as_deref();
    let idle = connect(
        target.addr,
        netns,
        p[CONCURRENT + 1].ip,
        target.limits.connect,
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, peer) in p.iter().take(CONCURRENT).enumerate() {
        let (target, peer) = (target.clone(), peer.clone());
        let q = query(
            &hash,
            &peer,
            LEECHING,
            Event::Started,
            "&compact=1&numwant=50",
        );
        tasks.spawn(async move { (i, announce(&target, &peer.name, peer.ip, &q).await) });
    }
    let mut at_once: Vec<(usize, Exchange)> = tasks.join_all().await;
    at_once.sort_by_key(|(i, _)| *i);
    drop(idle);
    let mut run = Run::new(target, hash);
    run.exchanges = at_once.into_iter().map(|(_, ex)| ex).collect();
    let o = &p[CONCURRENT];
    run.send(o, LEECHING, Event::Started, "&compact=1&numwant=50")
        .await;
    let judgement = judge_concurrent(&run.exchanges, &p, target);
    run.done("concurrent-announces", judgement)
}

fn judge_concurrent(ex: &[Exchange], p: &[FakePeer], target: &Target) -> Judgement {
    let (at_once, last) = ex.split_at(CONCURRENT);
    let failed: Vec<&Exchange> = at_once.iter().filter(|e| reply::read(e).is_err()).collect();
    if let Some(first) = failed.first() {
        let l = &target.limits;
        let why = reply::read(first).err().unwrap_or_default();
        return Err(Finding::new(
            format!(
                "{} of {CONCURRENT} announces sent at once got no usable reply (deadlines: connect {:?}, head {:?}) while another connection sat open sending nothing; the first, from {}: {why}. A tracker must serve connections concurrently (a thread or task per connection, or poll/select) and must not wait forever for an idle client's request.",
                failed.len(),
                l.connect,
                l.head,
                first.who
            ),
            failed.iter().map(|e| e.evidence()).collect(),
        ));
    }
    let present = at_once
        .iter()
        .zip(p)
        .map(|(e, peer)| (peer, source(e, peer)))
        .collect();
    let e = Expect {
        requester: (&p[CONCURRENT], source(&last[0], &p[CONCURRENT])),
        present,
        absent: Vec::new(),
        no_peer_id: false,
        forbid_self: false,
    };
    let context = format!("After {CONCURRENT} peers announced at once, O's announce");
    let listed = judge_listing(&last[0], &context, &e)?;
    let mut evidence: Vec<String> = at_once
        .iter()
        .map(|e| format!("{} -> {}", e.request(), e.response()))
        .collect();
    evidence.push(listed);
    Ok(evidence)
}
