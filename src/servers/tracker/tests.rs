use super::*;

const HASH: [u8; 20] =
    *b"\x12\x34\x56\x78\x9a\xbc\xde\xf0\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc";

fn escaped(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02X}")).collect()
}

fn target(peer: &str, port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={peer}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        escaped(&HASH)
    )
}

fn peer_id(n: u8) -> String {
    format!("-NG0001-{:012}", n)
}

fn announce(t: &mut Tracker, tgt: &str, ip: [u8; 4]) -> Result<(Vec<u8>, usize), String> {
    let a = parse_announce(tgt)?;
    t.announce(&a, Ipv4Addr::from(ip), Instant::now())
}

#[test]
fn parses_every_field() {
    let a = parse_announce(&target(
        &peer_id(1),
        6881,
        99,
        "&event=started&compact=0&numwant=7",
    ))
    .unwrap();
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(&a.peer_id, peer_id(1).as_bytes());
    assert_eq!((a.port, a.left, a.numwant), (6881, 99, 7));
    assert_eq!(a.event, Some(AnnounceEvent::Started));
    assert!(!a.compact);
    let a = parse_announce(&target(&peer_id(1), 1, 0, "&numwant=100000")).unwrap();
    assert_eq!(a.numwant, MAX_NUMWANT);
    assert!(a.compact);
}

#[test]
fn bad_requests_get_a_reason() {
    let short = format!("/announce?info_hash=%12%34&peer_id={}&port=1", peer_id(1));
    assert_eq!(
        parse_announce(&short).unwrap_err(),
        "info_hash is 2 bytes, not 20"
    );
    let no_port = target(&peer_id(1), 1, 0, "").replace("&port=1", "");
    assert_eq!(parse_announce(&no_port).unwrap_err(), "missing port");
    let bad_port = target(&peer_id(1), 1, 0, "").replace("port=1", "port=70000");
    assert_eq!(parse_announce(&bad_port).unwrap_err(), "invalid port");
    let bad_escape = target(&peer_id(1), 1, 0, "").replace("%12", "%1");
    assert!(
        parse_announce(&bad_escape)
            .unwrap_err()
            .contains("bad percent escape")
    );
    let mut t = Tracker::new([], 60);
    assert_eq!(
        announce(&mut t, &target(&peer_id(1), 1, 0, ""), [127, 0, 0, 1]).unwrap_err(),
        "unknown torrent"
    );
    assert_eq!(
        encode_failure("unknown torrent"),
        b"d14:failure reason15:unknown torrente"
    );
}

#[test]
fn compact_reply_lists_the_others_never_the_requester() {
    let mut t = Tracker::new([InfoHash(HASH)], 60);
    let (body, n) = announce(
        &mut t,
        &target(&peer_id(1), 6881, 0, "&event=started"),
        [127, 0, 0, 2],
    )
    .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        body,
        b"d8:completei1e10:incompletei0e8:intervali60e5:peers0:e"
    );
    let (body, n) = announce(
        &mut t,
        &target(&peer_id(2), 6882, 5, "&event=started"),
        [127, 0, 0, 3],
    )
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        body,
        b"d8:completei1e10:incompletei1e8:intervali60e5:peers6:\x7f\x00\x00\x02\x1a\xe1e"
    );
}

#[test]
fn dictionary_reply_and_events() {
    let mut t = Tracker::new([InfoHash(HASH)], 30);
    announce(&mut t, &target(&peer_id(1), 6881, 0, ""), [127, 0, 0, 2]).unwrap();
    let (body, _) = announce(
        &mut t,
        &target(&peer_id(2), 6882, 5, "&compact=0"),
        [127, 0, 0, 3],
    )
    .unwrap();
    let want = format!(
        "d8:completei1e10:incompletei1e8:intervali30e5:peersld2:ip9:127.0.0.27:peer id20:{}4:porti6881eeee",
        peer_id(1)
    );
    assert_eq!(String::from_utf8(body).unwrap(), want);
    // Completed: the leecher becomes a seeder.
    let (body, _) = announce(
        &mut t,
        &target(&peer_id(2), 6882, 0, "&event=completed"),
        [127, 0, 0, 3],
    )
    .unwrap();
    assert!(body.starts_with(b"d8:completei2e10:incompletei0e"));
    // Stopped: it leaves, and gets no peers.
    let (body, n) = announce(
        &mut t,
        &target(&peer_id(2), 6882, 0, "&event=stopped"),
        [127, 0, 0, 3],
    )
    .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        body,
        b"d8:completei1e10:incompletei0e8:intervali30e5:peers0:e"
    );
}

#[test]
fn numwant_limits_and_swarms_are_bounded() {
    let mut t = Tracker::new([InfoHash(HASH)], 60);
    for i in 0..MAX_PEERS {
        let id = format!("{i:020}");
        announce(&mut t, &target(&id, 1000, 1, ""), [127, 0, 0, 1]).unwrap();
    }
    let (_, n) = announce(
        &mut t,
        &target(&format!("{:020}", 0), 1000, 1, "&numwant=3"),
        [127, 0, 0, 1],
    )
    .unwrap();
    assert_eq!(n, 3);
    let (_, n) = announce(
        &mut t,
        &target(&format!("{:020}", 0), 1000, 1, ""),
        [127, 0, 0, 1],
    )
    .unwrap();
    assert_eq!(n, DEFAULT_NUMWANT);
    let more = announce(
        &mut t,
        &target(&format!("{:020}", MAX_PEERS), 1000, 1, ""),
        [127, 0, 0, 1],
    );
    assert_eq!(more.unwrap_err(), format!("swarm full ({MAX_PEERS} peers)"));
}

#[test]
fn silent_peers_are_forgotten_after_two_intervals() {
    let mut t = Tracker::new([InfoHash(HASH)], 10);
    let a = parse_announce(&target(&peer_id(1), 1, 0, "")).unwrap();
    let b = parse_announce(&target(&peer_id(2), 2, 0, "")).unwrap();
    let start = Instant::now();
    t.announce(&a, Ipv4Addr::LOCALHOST, start).unwrap();
    let (_, n) = t
        .announce(&b, Ipv4Addr::LOCALHOST, start + Duration::from_secs(20))
        .unwrap();
    assert_eq!(n, 1);
    let (_, n) = t
        .announce(&b, Ipv4Addr::LOCALHOST, start + Duration::from_secs(21))
        .unwrap();
    assert_eq!(n, 0);
}
