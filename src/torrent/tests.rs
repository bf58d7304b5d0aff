use super::*;

/// A file of `len` bytes whose content is deterministic but not periodic
/// in the piece length.
fn content(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ salt)
        .collect()
}

fn piece_hashes(data: &[u8], piece: usize) -> Vec<[u8; 20]> {
    data.chunks(piece).map(sha1).collect()
}

#[test]
fn sha1_of_a_known_vector() {
    assert_eq!(
        hex(&sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

#[test]
fn single_file_whose_length_is_a_multiple_of_the_piece_length() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(4 * 16384, 1);
    let path = dir.path().join("exact.bin");
    fs::write(&path, &data).unwrap();
    let m = make(&path, 16384, "http://127.0.0.1:6969/announce").unwrap();
    assert_eq!(m.info.name, "exact.bin");
    assert_eq!(m.info.layout, Layout::Single { length: 65536 });
    assert_eq!(m.info.pieces, piece_hashes(&data, 16384));
    assert_eq!(m.info.pieces.len(), 4);
    assert_eq!(m.info.piece_size(3), 16384);
}

#[test]
fn single_file_whose_last_piece_is_short() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(3 * 16384 + 1000, 2);
    let path = dir.path().join("ragged.bin");
    fs::write(&path, &data).unwrap();
    let m = make(&path, 16384, "http://t/announce").unwrap();
    assert_eq!(m.info.pieces.len(), 4);
    assert_eq!(m.info.pieces, piece_hashes(&data, 16384));
    assert_eq!(m.info.piece_size(3), 1000);
    assert_eq!(m.info.piece_size(4), 0);
}

#[test]
fn multi_file_pieces_span_file_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    fs::create_dir_all(root.join("b")).unwrap();
    let a = content(20000, 3);
    let c = content(5, 4);
    let d = content(30000, 5);
    fs::write(root.join("a.txt"), &a).unwrap();
    fs::write(root.join("b").join("c.txt"), &c).unwrap();
    fs::write(root.join("d.txt"), &d).unwrap();
    let m = make(&root, 16384, "http://t/announce").unwrap();
    let Layout::Multi { files } = &m.info.layout else {
        panic!("not multi-file");
    };
    let paths: Vec<_> = files.iter().map(|f| f.path.join("/")).collect();
    assert_eq!(paths, ["a.txt", "b/c.txt", "d.txt"]);
    let all: Vec<u8> = [a, c, d].concat();
    assert_eq!(m.info.total_length(), all.len() as u64);
    assert_eq!(m.info.pieces, piece_hashes(&all, 16384));
    assert_eq!(m.info.files()[1], (PathBuf::from("album/b/c.txt"), 5));
}

#[test]
fn written_torrents_read_back_equal_and_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, content(40000, 6)).unwrap();
    let m = make(&path, 32768, "http://127.0.0.1:1/announce").unwrap();
    let bytes = m.to_bytes();
    assert!(bytes.starts_with(b"d8:announce27:http://127.0.0.1:1/announce4:infod6:lengthi40000e4:name1:f12:piece lengthi32768e6:pieces40:"));
    let back = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.to_bytes(), bytes);
}

#[test]
fn info_hash_is_of_the_bytes_as_read_not_re_encoded() {
    // `private` is a key this reader does not keep: re-encoding would drop it.
    let info =
        b"d6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei1ee";
    let file = [&b"d8:announce4:http4:info"[..], info, b"e"].concat();
    let m = Metainfo::from_bytes(&file).unwrap();
    assert_eq!(m.info_hash, InfoHash(sha1(info)));
    assert_ne!(m.info_hash, InfoHash(sha1(&m.info.to_bencode())));
}

fn err(bytes: &[u8]) -> TorrentError {
    Metainfo::from_bytes(bytes).unwrap_err()
}

#[test]
fn bad_torrents_name_the_key_and_the_byte() {
    let e = err(b"d8:announce4:http4:infod6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces19:aaaaaaaaaaaaaaaaaaaee");
    assert!(e.message.contains("`pieces` is 19 bytes"), "{e}");
    assert_eq!(e.offset, Some(68));
    let e = err(b"d8:announce4:http4:infod6:lengthi-3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
    assert!(e.message.contains("`length` is -3"), "{e}");
    assert_eq!(e.offset, Some(26));
    let e = err(b"d8:announce4:http4:infod6:lengthi3e4:name2:..12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
    assert!(e.message.contains("`name` \"..\""), "{e}");
    let e =
        err(b"d4:infod6:lengthi3e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
    assert_eq!(e.message, "no `announce` key");
    let e = err(b"d8:announce4:http4:infod6:lengthi99999e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
    assert!(
        e.message.contains("`pieces` has 1 hashes but 99999 bytes"),
        "{e}"
    );
    let e = err(b"d8:announce4:http4:infod5:filesld6:lengthi1e4:pathl2:..eee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee");
    assert!(e.message.contains("`path` component \"..\""), "{e}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bytes in [
        &b""[..],
        b"i3e",
        b"d8:announce",
        b"d8:announce4:http4:infoi1ee",
        b"d4:info4:abcd8:announce1:xe",
        b"d8:announce999999999999:x",
        b"d8:announce4:httpe trailing",
        b"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    ] {
        let e = err(bytes);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn make_refuses_odd_piece_lengths_and_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, b"x").unwrap();
    assert!(make(&path, 1000, "http://t").is_err());
    assert!(make(&path, 8192, "http://t").is_err());
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(make(&empty, 16384, "http://t").is_err());
}

/// A lab whose `torrents` are these lines (YAML), with `files` as its data.
fn lab(torrents: &str, files: Vec<(String, Vec<u8>)>) -> crate::spec::Lab {
    let yaml = format!(
        "name: t\ntitle: t\ntorrents:\n{torrents}\nprogram:\n  entry: [client.py]\nchecks:\n  - {{ id: runs, title: r, points: 1 }}\n"
    );
    let mut lab = crate::spec::load_str("t.yaml", &yaml).unwrap();
    lab.files = crate::spec::DataFiles(files);
    lab
}

#[test]
fn a_labs_folder_makes_the_same_multi_file_torrent_as_torrent_make() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    fs::create_dir_all(root.join("b")).unwrap();
    let files = [
        ("a.txt", content(20000, 3)),
        ("b/c.txt", content(5, 4)),
        ("d.txt", content(30000, 5)),
    ];
    for (p, bytes) in &files {
        fs::write(root.join(p), bytes).unwrap();
    }
    let made = make(&root, 16384, "http://t/announce").unwrap();
    let data = files
        .iter()
        .map(|(p, b)| (format!("album/{p}"), b.clone()))
        .collect();
    // Validation reads the lab's data from disk: load it with seeded
    // content, then point the torrent at the folder.
    let mut lab = lab("  - { name: album, size: 1, piece_length: 16384 }", data);
    lab.torrents[0].size = None;
    lab.torrents[0].path = Some("album".into());
    let t = &lab_torrents(&lab, 1, "http://elsewhere/announce").unwrap()[0];
    assert_eq!(t.meta.info, made.info);
    assert_eq!(t.meta.info_hash, made.info_hash);
    assert_eq!(t.data.len(), 50005);
}

#[test]
fn seeded_content_depends_on_the_seed_and_the_name_only() {
    let lab = lab(
        "  - { name: a, size: 100000 }\n  - { name: b, size: 65536 }",
        Vec::new(),
    );
    let one = lab_torrents(&lab, 1, "http://x/announce").unwrap();
    let again = lab_torrents(&lab, 1, "http://y/announce").unwrap();
    let other = lab_torrents(&lab, 2, "http://x/announce").unwrap();
    assert_eq!(one[0].meta.info_hash, again[0].meta.info_hash);
    assert_ne!(one[0].meta.info_hash, other[0].meta.info_hash);
    assert_ne!(one[0].data[..100], one[1].data[..100]);
    assert_eq!(one[0].meta.info.name, "a.bin");
    // 100000 bytes: 3 pieces and a short one; 65536: exactly 2.
    assert_eq!(one[0].meta.info.pieces.len(), 4);
    assert_eq!(one[0].meta.info.piece_size(3), 100000 - 3 * 32768);
    assert_eq!(one[1].meta.info.pieces.len(), 2);
    assert_eq!(one[1].meta.info.piece_size(1), 32768);
}
