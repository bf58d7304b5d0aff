//! The reference seeders against a real BitTorrent client: libtorrent
//! (Debian's python3-libtorrent) downloads through the peer wire protocol on
//! loopback and must end with the original file, byte for byte.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use netgrade::servers::peer::{Behaviour, Content, Seeder, serve};
use netgrade::trace::{Dir, EventKind, Recorder};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bt/libtorrent_client.py");
const PIECE: u32 = 32 * 1024;

/// Deterministic data of `len` bytes (a xorshift stream: no two pieces alike).
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn python(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg(CLIENT)
        .args(args)
        .output()
        .expect("python3 runs (install python3-libtorrent)");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The file, its .torrent made by libtorrent, and the seeders' content.
fn setup(dir: &Path, len: usize) -> (Content, String) {
    let bytes = data(len);
    let file = dir.join("share.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = dir.join("share.torrent");
    let hash = python(&[
        "make",
        file.to_str().unwrap(),
        torrent.to_str().unwrap(),
        &PIECE.to_string(),
    ]);
    let mut info_hash = [0u8; 20];
    for (i, b) in info_hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hash.trim()[2 * i..2 * i + 2], 16).unwrap();
    }
    (
        Content {
            info_hash,
            piece_length: PIECE,
            data: bytes,
        },
        torrent.to_str().unwrap().to_string(),
    )
}

async fn start(name: &str, content: &Content, behaviour: Behaviour, rec: &Recorder) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seeder = Arc::new(Seeder::new(name, content.clone(), behaviour, rec.clone()));
    tokio::spawn(serve(listener, seeder));
    port
}

/// Runs the client against `ports`; returns its count of hash failures.
async fn download(torrent: &str, content: &Content, ports: &[u16]) -> u32 {
    let save = tempfile::tempdir().unwrap();
    let mut args = vec![
        "get".to_string(),
        torrent.to_string(),
        save.path().to_str().unwrap().to_string(),
    ];
    args.extend(ports.iter().map(|p| p.to_string()));
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || {
            python(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }),
    )
    .await
    .expect("client ends within 90 s")
    .unwrap();
    let got = std::fs::read(save.path().join("share.bin")).unwrap();
    assert!(
        got == content.data,
        "downloaded file differs from the original"
    );
    out.trim()
        .strip_prefix("hash_failed ")
        .unwrap()
        .parse()
        .unwrap()
}

fn events(rec: &Recorder, server: &str) -> Vec<EventKind> {
    rec.snapshot()
        .events
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| matches!(k, EventKind::PeerMessage { server: s, .. } | EventKind::Deviation { server: s, .. } if s == server))
        .collect()
}

fn count(evs: &[EventKind], dir: Dir, name: &str) -> usize {
    evs.iter().filter(|k| matches!(k, EventKind::PeerMessage { dir: d, name: n, .. } if *d == dir && n == name)).count()
}

fn deviations(evs: &[EventKind], kind: &str) -> usize {
    evs.iter()
        .filter(|k| matches!(k, EventKind::Deviation { kind: n, .. } if n == kind))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_from_one_seeder() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = setup(dir.path(), 10 * PIECE as usize + 1234);
    let rec = Recorder::new();
    let port = start("seed", &content, Behaviour::default(), &rec).await;
    assert_eq!(download(&torrent, &content, &[port]).await, 0);
    let evs = events(&rec, "seed");
    assert_eq!(count(&evs, Dir::In, "handshake"), 1, "{evs:?}");
    assert_eq!(count(&evs, Dir::Out, "bitfield"), 1);
    // 10 pieces of two 16 KiB blocks and a last block of 1234 bytes.
    assert_eq!(count(&evs, Dir::Out, "piece"), 21);
    assert!(count(&evs, Dir::In, "request") >= 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_rejects_a_corrupted_piece_and_still_ends_right() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = setup(dir.path(), 8 * PIECE as usize);
    let rec = Recorder::new();
    // The liar has only the corrupted piece, so the client must ask it for
    // that piece; the honest peer has everything, slowly.
    let corrupt = Behaviour::seeded_corrupt(7, &content);
    let liar = Behaviour {
        has: Some(vec![corrupt.0]),
        corrupt: vec![corrupt],
        ..Behaviour::default()
    };
    let honest = Behaviour {
        slow: Some(Duration::from_millis(30)),
        ..Behaviour::default()
    };
    let bad = start("liar", &content, liar, &rec).await;
    let good = start("honest", &content, honest, &rec).await;
    let failed = download(&torrent, &content, &[bad, good]).await;
    let evs = events(&rec, "liar");
    assert!(deviations(&evs, "corrupted-on-purpose") >= 1, "{evs:?}");
    assert!(failed >= 1, "the client saw no hash failure");
    assert_eq!(
        Behaviour::seeded_corrupt(7, &content),
        corrupt,
        "same seed, same byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_gathers_pieces_from_partial_choking_and_vanishing_peers() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = setup(dir.path(), 12 * PIECE as usize);
    let rec = Recorder::new();
    let half = Behaviour::seeded_has(3, 12, 6);
    let rest: Vec<u32> = (0..12).filter(|i| !half.contains(i)).collect();
    let partial = Behaviour {
        has: Some(half.clone()),
        ..Behaviour::default()
    };
    let choosy = Behaviour {
        has: Some(rest.clone()),
        choke_until_interested: true,
        ..Behaviour::default()
    };
    let vanishing = Behaviour {
        has: Some(vec![rest[0]]),
        disconnect_mid_piece: vec![rest[0]],
        ..Behaviour::default()
    };
    let ports = [
        start("vanishing", &content, vanishing, &rec).await,
        start("partial", &content, partial, &rec).await,
        start("choosy", &content, choosy, &rec).await,
    ];
    assert_eq!(download(&torrent, &content, &ports).await, 0);
    let choosy = events(&rec, "choosy");
    let unchoke = choosy.iter().position(
        |k| matches!(k, EventKind::PeerMessage { name, dir: Dir::Out, .. } if name == "unchoke"),
    );
    let interested = choosy.iter().position(
        |k| matches!(k, EventKind::PeerMessage { name, dir: Dir::In, .. } if name == "interested"),
    );
    assert!(interested.unwrap() < unchoke.unwrap(), "{choosy:?}");
    let vanishing = events(&rec, "vanishing");
    assert_eq!(
        count(&vanishing, Dir::Out, "piece (cut)"),
        1,
        "{vanishing:?}"
    );
    let partial = events(&rec, "partial");
    assert!(partial.iter().all(|k| match k {
        EventKind::PeerMessage {
            name,
            dir: Dir::Out,
            block: Some((i, _, _)),
            ..
        } if name == "piece" => half.contains(i),
        _ => true,
    }));
    assert_eq!(
        Behaviour::seeded_has(3, 12, 6),
        half,
        "same seed, same pieces"
    );
}
