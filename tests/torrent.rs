//! `netgrade torrent make` and `show`, the torrents they make read back by
//! two BitTorrent implementations nobody here wrote: libtorrent (Python
//! bindings) and aria2c.

mod common;

use std::path::Path;
use std::process::Command as Std;

use common::*;
use predicates::prelude::*;

/// Deterministic content that does not repeat with the piece length.
fn content(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761) ^ salt).to_le_bytes()[2])
        .collect()
}

fn make(path: &Path, piece: u64, out: &Path) -> String {
    let o = netgrade()
        .args(["torrent", "make"])
        .arg(path)
        .args(["--piece-length", &piece.to_string()])
        .args(["--announce", "http://127.0.0.1:6969/announce", "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn field<'a>(shown: &'a str, name: &str) -> &'a str {
    shown
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {shown}"))
}

/// libtorrent's view: info_hash, pieces, total size, file paths.
fn libtorrent_view(torrent: &Path) -> String {
    let script = "import sys, libtorrent as lt\n\
        t = lt.torrent_info(sys.argv[1])\n\
        fs = t.files()\n\
        print(str(t.info_hash()), t.num_pieces(), t.total_size(), \
        ','.join(fs.file_path(i) for i in range(t.num_files())))";
    let o = Std::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(torrent)
        .output()
        .expect("python3 with libtorrent (python3-libtorrent)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn single_file_torrents_are_read_alike_by_libtorrent_and_aria2c() {
    let dir = tempfile::tempdir().unwrap();
    // One length a multiple of the piece length, one not.
    for (len, pieces) in [(4 * 16384, 4), (100_000, 7)] {
        let file = dir.path().join(format!("f{len}.bin"));
        std::fs::write(&file, content(len, len as u32)).unwrap();
        let torrent = dir.path().join(format!("f{len}.torrent"));
        let shown = make(&file, 16384, &torrent);
        let hash = field(&shown, "info_hash");
        assert_eq!(field(&shown, "pieces"), format!("{pieces} of 16384 bytes"));
        assert_eq!(
            libtorrent_view(&torrent),
            format!("{hash} {pieces} {len} f{len}.bin")
        );
        let again = netgrade()
            .args(["torrent", "show"])
            .arg(&torrent)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(again.stdout).unwrap(), shown);
        let aria = Std::new("aria2c")
            .arg("--show-files")
            .arg(&torrent)
            .output()
            .expect("aria2c (aria2)");
        let aria = String::from_utf8_lossy(&aria.stdout).to_string();
        assert!(
            aria.contains(&format!("btih:{}", hash.to_uppercase())),
            "{aria}"
        );
        assert!(
            aria.contains(&format!("The Number of Pieces: {pieces}")),
            "{aria}"
        );
    }
}

#[test]
fn a_folder_makes_a_multi_file_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("one.txt"), content(20_000, 1)).unwrap();
    std::fs::write(root.join("sub/two.txt"), content(7, 2)).unwrap();
    std::fs::write(root.join("three.bin"), content(50_000, 3)).unwrap();
    let torrent = dir.path().join("set.torrent");
    let shown = make(&root, 16384, &torrent);
    assert!(
        shown.contains("files:\n  set/one.txt 20000\n  set/sub/two.txt 7\n  set/three.bin 50000\n"),
        "{shown}"
    );
    let hash = field(&shown, "info_hash");
    assert_eq!(
        libtorrent_view(&torrent),
        format!("{hash} 5 70007 set/one.txt,set/sub/two.txt,set/three.bin")
    );
}

#[test]
fn bad_input_is_a_usage_error_naming_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.torrent");
    std::fs::write(&bad, b"d8:announce4:http4:infoi1ee").unwrap();
    netgrade()
        .args(["torrent", "show"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`info` is not a dictionary (at byte 19)",
        ));
    netgrade()
        .args(["torrent", "make"])
        .arg(&bad)
        .args(["--piece-length", "1000", "--announce", "http://x/", "-o"])
        .arg(dir.path().join("out.torrent"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "piece length 1000: must be a power of two",
        ));
}
