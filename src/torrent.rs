//! BitTorrent metainfo files (BEP 3): read, written and made.
//!
//! A `.torrent` is a bencoded dictionary with the tracker's `announce` URL and
//! an `info` dictionary: the torrent's `name`, its `piece length`, the SHA-1
//! of every piece back to back in `pieces`, and either a `length` (one file)
//! or a list of `files`, each with its `length` and `path`. The torrent's
//! identity, the info_hash, is the SHA-1 of the `info` dictionary's bytes
//! exactly as they stand in the file: reading keeps them, never re-encodes.
//!
//! Bencoding is bendy's, which reads and writes canonical dictionaries only
//! (keys sorted); a file whose keys are out of order is refused. Every error
//! names the key it is about and the byte offset of that key in the file.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use bendy::decoding::{Decoder, DictDecoder, Object};
use bendy::encoding::{Encoder, SingleItemEncoder};
use sha1::{Digest, Sha1};

/// The largest `.torrent` file read: a torrent of the labs is a few KiB.
pub const MAX_TORRENT_BYTES: usize = 16 << 20;
/// The smallest piece length [`make`] accepts: the peer wire's block size.
pub const MIN_PIECE_LENGTH: u64 = 16 << 10;
/// The largest piece length [`make`] accepts.
pub const MAX_PIECE_LENGTH: u64 = 16 << 20;
/// Bencode nesting deeper than this is refused (a torrent needs four levels).
const MAX_DEPTH: usize = 16;

/// A torrent's identity: SHA-1 of its bencoded `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// Lower-case hexadecimal, 40 characters.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.hex())
    }
}

/// Lower-case hexadecimal of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-1 of some bytes.
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// One file of a multi-file torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Length in bytes.
    pub length: u64,
    /// Path components below the torrent's folder (`name`).
    pub path: Vec<String>,
}

/// What the torrent holds: one file, or a folder of files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `length`: the torrent is one file called `name`.
    Single {
        /// Length in bytes.
        length: u64,
    },
    /// `files`: the torrent is a folder called `name`.
    Multi {
        /// The files in the order their bytes are laid end to end.
        files: Vec<FileEntry>,
    },
}

/// The `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// Suggested name of the file or folder.
    pub name: String,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u64,
    /// SHA-1 of each piece.
    pub pieces: Vec<[u8; 20]>,
    /// One file or several.
    pub layout: Layout,
}

impl Info {
    /// Total length of the content in bytes.
    pub fn total_length(&self) -> u64 {
        match &self.layout {
            Layout::Single { length } => *length,
            Layout::Multi { files } => files.iter().map(|f| f.length).sum(),
        }
    }

    /// Length of piece `index`: `piece_length`, or less for the last one.
    pub fn piece_size(&self, index: usize) -> u64 {
        let start = index as u64 * self.piece_length;
        self.total_length()
            .saturating_sub(start)
            .min(self.piece_length)
    }

    /// The files as (relative path, length), a single-file torrent's being
    /// `name` itself.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        match &self.layout {
            Layout::Single { length } => vec![(PathBuf::from(&self.name), *length)],
            Layout::Multi { files } => files
                .iter()
                .map(|f| {
                    let mut p = PathBuf::from(&self.name);
                    p.extend(&f.path);
                    (p, f.length)
                })
                .collect(),
        }
    }

    /// The `info` dictionary, bencoded canonically.
    pub fn to_bencode(&self) -> Vec<u8> {
        let mut enc = Encoder::new().with_max_depth(MAX_DEPTH);
        enc.emit_with(|e| self.emit(e))
            .expect("an info dictionary always encodes");
        enc.get_output().expect("an info dictionary always encodes")
    }

    fn emit(&self, e: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
        let pieces: Vec<u8> = self.pieces.iter().flatten().copied().collect();
        e.emit_dict(|mut d| {
            match &self.layout {
                Layout::Multi { files } => d.emit_pair_with(b"files", |e| {
                    e.emit_list(|l| {
                        files.iter().try_for_each(|f| {
                            l.emit_dict(|mut fd| {
                                fd.emit_pair(b"length", f.length)?;
                                fd.emit_pair(b"path", &f.path)
                            })
                        })
                    })
                })?,
                Layout::Single { length } => d.emit_pair(b"length", length)?,
            }
            d.emit_pair(b"name", &self.name)?;
            d.emit_pair(b"piece length", self.piece_length)?;
            d.emit_pair_with(b"pieces", |e| e.emit_bytes(&pieces))
        })
    }
}

/// A metainfo file: the tracker's URL and the `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    /// The tracker's announce URL.
    pub announce: String,
    /// The `info` dictionary, decoded.
    pub info: Info,
    /// SHA-1 of the `info` dictionary's bytes as read (or as written).
    pub info_hash: InfoHash,
}

/// Why a `.torrent` could not be read: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentError {
    /// What is wrong, naming the key.
    pub message: String,
    /// Byte offset in the file of the key (its first character, after the
    /// length prefix) or value at fault, when known.
    pub offset: Option<usize>,
}

impl TorrentError {
    fn new(message: impl Into<String>, offset: Option<usize>) -> Self {
        TorrentError {
            message: message.into(),
            offset,
        }
    }
}

impl fmt::Display for TorrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(at) => write!(f, "{} (at byte {at})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TorrentError {}

/// Offset of `part` within `whole` (both from the same buffer).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Reads a dictionary's pairs through `each`, turning bendy's syntax errors
/// into errors that name the last key read and where it stood.
fn read_dict<'ser>(
    file: &'ser [u8],
    dict: &mut DictDecoder<'_, 'ser>,
    what: &str,
    mut each: impl FnMut(&'ser [u8], Object<'_, 'ser>) -> Result<(), TorrentError>,
) -> Result<(), TorrentError> {
    let mut last: Option<&'ser [u8]> = None;
    loop {
        let pair = dict.next_pair().map_err(|e| {
            let (after, at) = match last {
                Some(k) => (
                    format!(" after key `{}`", String::from_utf8_lossy(k)),
                    Some(offset_in(file, k)),
                ),
                None => (String::new(), None),
            };
            TorrentError::new(format!("bad bencoding in {what}{after}: {e}"), at)
        })?;
        let Some((key, value)) = pair else {
            return Ok(());
        };
        last = Some(key);
        each(key, value)?;
    }
}

fn key_name(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

fn int_value(file: &[u8], key: &[u8], value: Object) -> Result<u64, TorrentError> {
    let at = Some(offset_in(file, key));
    match value {
        Object::Integer(s) => s.parse::<u64>().map_err(|_| {
            TorrentError::new(
                format!("`{}` is {s}, not a non-negative integer", key_name(key)),
                at,
            )
        }),
        _ => Err(TorrentError::new(
            format!("`{}` is not an integer", key_name(key)),
            at,
        )),
    }
}

fn bytes_value<'ser>(
    file: &'ser [u8],
    key: &[u8],
    value: Object<'_, 'ser>,
) -> Result<&'ser [u8], TorrentError> {
    match value {
        Object::Bytes(b) => Ok(b),
        _ => Err(TorrentError::new(
            format!("`{}` is not a byte string", key_name(key)),
            Some(offset_in(file, key)),
        )),
    }
}

fn str_value<'ser>(
    file: &'ser [u8],
    key: &[u8],
    value: Object<'_, 'ser>,
) -> Result<String, TorrentError> {
    let b = bytes_value(file, key, value)?;
    String::from_utf8(b.to_vec()).map_err(|_| {
        TorrentError::new(
            format!("`{}` is not UTF-8", key_name(key)),
            Some(offset_in(file, b)),
        )
    })
}

/// A name or path component that is safe as one element of a path: not
/// empty, not `.` or `..`, no slash or NUL.
fn check_component(s: &str, what: &str, at: usize) -> Result<(), TorrentError> {
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(TorrentError::new(
            format!("{what} {s:?} is not a plain file name"),
            Some(at),
        ));
    }
    Ok(())
}

impl Metainfo {
    /// Reads a metainfo file from its bytes.
    pub fn from_bytes(file: &[u8]) -> Result<Metainfo, TorrentError> {
        if file.len() > MAX_TORRENT_BYTES {
            return Err(TorrentError::new(
                format!(
                    "{} bytes: larger than a torrent file may be ({MAX_TORRENT_BYTES})",
                    file.len()
                ),
                None,
            ));
        }
        let mut dec = Decoder::new(file).with_max_depth(MAX_DEPTH);
        let (announce, raw) = read_top(file, &mut dec)?;
        let end = dec.next_object();
        if !matches!(end, Ok(None)) {
            return Err(TorrentError::new(
                "bytes after the torrent's dictionary",
                None,
            ));
        }
        let info = read_info(file, raw)?;
        Ok(Metainfo {
            announce,
            info,
            info_hash: InfoHash(sha1(raw)),
        })
    }

    /// A few lines for people: name, info_hash, announce URL, length and
    /// pieces, then each file with its length.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let mut s = format!(
            "name: {}\ninfo_hash: {}\nannounce: {}\nlength: {}\npieces: {} of {} bytes\nfiles:\n",
            i.name,
            self.info_hash,
            self.announce,
            i.total_length(),
            i.pieces.len(),
            i.piece_length
        );
        for (path, len) in i.files() {
            s += &format!("  {} {len}\n", path.display());
        }
        s
    }

    /// Reads a `.torrent` file.
    pub fn read(path: &Path) -> anyhow::Result<Metainfo> {
        let mut bytes = Vec::new();
        fs::File::open(path)
            .and_then(|f| f.take(MAX_TORRENT_BYTES as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Metainfo::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Builds a metainfo from its parts, the info_hash computed from the
    /// canonical encoding of `info`.
    pub fn new(announce: String, info: Info) -> Metainfo {
        let info_hash = InfoHash(sha1(&info.to_bencode()));
        Metainfo {
            announce,
            info,
            info_hash,
        }
    }

    /// The whole file, bencoded canonically.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::new().with_max_depth(MAX_DEPTH);
        enc.emit_dict(|mut d| {
            d.emit_pair(b"announce", &self.announce)?;
            d.emit_pair_with(b"info", |e| self.info.emit(e))
        })
        .expect("a metainfo always encodes");
        enc.get_output().expect("a metainfo always encodes")
    }

    /// Writes the `.torrent` file.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        fs::write(path, self.to_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The top-level dictionary: the announce URL and the raw `info` bytes.
fn read_top<'ser>(
    file: &'ser [u8],
    dec: &mut Decoder<'ser>,
) -> Result<(String, &'ser [u8]), TorrentError> {
    let top = dec
        .next_object()
        .map_err(|e| TorrentError::new(format!("bad bencoding: {e}"), Some(0)))?;
    let Some(Object::Dict(mut top)) = top else {
        return Err(TorrentError::new("not a bencoded dictionary", Some(0)));
    };
    let mut announce = None;
    let mut info_raw = None;
    read_dict(file, &mut top, "the torrent", |key, value| {
        match key {
            b"announce" => announce = Some(str_value(file, key, value)?),
            b"info" => {
                let Object::Dict(d) = value else {
                    return Err(TorrentError::new(
                        "`info` is not a dictionary",
                        Some(offset_in(file, key)),
                    ));
                };
                let raw = d.into_raw().map_err(|e| {
                    TorrentError::new(
                        format!("bad bencoding in `info`: {e}"),
                        Some(offset_in(file, key)),
                    )
                })?;
                info_raw = Some(raw);
            }
            _ => {}
        }
        Ok(())
    })?;
    drop(top);
    let announce = announce.ok_or_else(|| TorrentError::new("no `announce` key", None))?;
    let raw = info_raw.ok_or_else(|| TorrentError::new("no `info` key", None))?;
    Ok((announce, raw))
}

/// Fields of `info` as they are read, before they are checked together.
#[derive(Default)]
struct InfoFields {
    name: Option<String>,
    piece_length: Option<u64>,
    pieces: Option<(Vec<u8>, usize)>,
    length: Option<u64>,
    files: Option<Vec<FileEntry>>,
}

fn read_info(file: &[u8], raw: &[u8]) -> Result<Info, TorrentError> {
    let info_at = Some(offset_in(file, raw));
    let mut dec = Decoder::new(raw).with_max_depth(MAX_DEPTH);
    let Ok(Some(Object::Dict(mut dict))) = dec.next_object() else {
        return Err(TorrentError::new("`info` is not a dictionary", info_at));
    };
    let mut f = InfoFields::default();
    read_dict(file, &mut dict, "`info`", |key, value| {
        match key {
            b"name" => {
                let name = str_value(file, key, value)?;
                check_component(&name, "`name`", offset_in(file, key))?;
                f.name = Some(name);
            }
            b"piece length" => f.piece_length = Some(int_value(file, key, value)?),
            b"pieces" => {
                let b = bytes_value(file, key, value)?;
                f.pieces = Some((b.to_vec(), offset_in(file, key)));
            }
            b"length" => f.length = Some(int_value(file, key, value)?),
            b"files" => f.files = Some(read_files(file, key, value)?),
            _ => {}
        }
        Ok(())
    })?;
    drop(dict);
    check_info(f, info_at)
}

fn check_info(f: InfoFields, at: Option<usize>) -> Result<Info, TorrentError> {
    let missing = |k: &str| TorrentError::new(format!("`info` has no `{k}`"), at);
    let name = f.name.ok_or_else(|| missing("name"))?;
    let piece_length = f.piece_length.ok_or_else(|| missing("piece length"))?;
    if piece_length == 0 {
        return Err(TorrentError::new("`piece length` is 0", at));
    }
    let (pieces, pieces_at) = f.pieces.ok_or_else(|| missing("pieces"))?;
    if pieces.len() % 20 != 0 {
        return Err(TorrentError::new(
            format!(
                "`pieces` is {} bytes, not a multiple of 20 (one SHA-1 per piece)",
                pieces.len()
            ),
            Some(pieces_at),
        ));
    }
    let layout = match (f.length, f.files) {
        (Some(length), None) => Layout::Single { length },
        (None, Some(files)) => Layout::Multi { files },
        (Some(_), Some(_)) => {
            return Err(TorrentError::new(
                "`info` has both `length` and `files`",
                at,
            ));
        }
        (None, None) => return Err(missing("length` or `files")),
    };
    let info = Info {
        name,
        piece_length,
        pieces: pieces
            .chunks_exact(20)
            .map(|c| c.try_into().expect("20 bytes"))
            .collect(),
        layout,
    };
    let want = info.total_length().div_ceil(piece_length);
    if info.pieces.len() as u64 != want {
        return Err(TorrentError::new(
            format!(
                "`pieces` has {} hashes but {} bytes in pieces of {piece_length} make {want}",
                info.pieces.len(),
                info.total_length()
            ),
            Some(pieces_at),
        ));
    }
    Ok(info)
}

fn read_files<'ser>(
    file: &'ser [u8],
    key: &'ser [u8],
    value: Object<'_, 'ser>,
) -> Result<Vec<FileEntry>, TorrentError> {
    let at = Some(offset_in(file, key));
    let Object::List(mut list) = value else {
        return Err(TorrentError::new("`files` is not a list", at));
    };
    let mut files = Vec::new();
    loop {
        let item = list
            .next_object()
            .map_err(|e| TorrentError::new(format!("bad bencoding in `files`: {e}"), at))?;
        match item {
            None => break,
            Some(Object::Dict(mut d)) => {
                let n = files.len();
                files.push(read_file_entry(file, &mut d, n, at)?);
            }
            Some(_) => {
                return Err(TorrentError::new(
                    format!("`files` item {} is not a dictionary", files.len()),
                    at,
                ));
            }
        }
    }
    if files.is_empty() {
        return Err(TorrentError::new("`files` is empty", at));
    }
    Ok(files)
}

fn read_file_entry<'ser>(
    file: &'ser [u8],
    d: &mut DictDecoder<'_, 'ser>,
    n: usize,
    at: Option<usize>,
) -> Result<FileEntry, TorrentError> {
    let mut length = None;
    let mut path = None;
    read_dict(file, d, &format!("`files` item {n}"), |key, value| {
        match key {
            b"length" => length = Some(int_value(file, key, value)?),
            b"path" => path = Some(read_path(file, key, value)?),
            _ => {}
        }
        Ok(())
    })?;
    let missing = |k: &str| TorrentError::new(format!("`files` item {n} has no `{k}`"), at);
    Ok(FileEntry {
        length: length.ok_or_else(|| missing("length"))?,
        path: path.ok_or_else(|| missing("path"))?,
    })
}

fn read_path<'ser>(
    file: &'ser [u8],
    key: &'ser [u8],
    value: Object<'_, 'ser>,
) -> Result<Vec<String>, TorrentError> {
    let at = offset_in(file, key);
    let Object::List(mut list) = value else {
        return Err(TorrentError::new("`path` is not a list", Some(at)));
    };
    let mut parts = Vec::new();
    while let Some(item) = list
        .next_object()
        .map_err(|e| TorrentError::new(format!("bad bencoding in `path`: {e}"), Some(at)))?
    {
        let s = str_value(file, key, item)?;
        check_component(&s, "`path` component", at)?;
        parts.push(s);
    }
    if parts.is_empty() {
        return Err(TorrentError::new("`path` is empty", Some(at)));
    }
    Ok(parts)
}

/// Makes a torrent of a file or a folder: pieces of `piece_length` bytes
/// (a power of two from [`MIN_PIECE_LENGTH`] to [`MAX_PIECE_LENGTH`]); a
/// folder's regular files are taken in byte order of their paths, end to end.
pub fn make(path: &Path, piece_length: u64, announce: &str) -> anyhow::Result<Metainfo> {
    if !piece_length.is_power_of_two()
        || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length)
    {
        anyhow::bail!(
            "piece length {piece_length}: must be a power of two from {MIN_PIECE_LENGTH} to {MAX_PIECE_LENGTH}"
        );
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            anyhow::anyhow!("{}: no UTF-8 file name to name the torrent", path.display())
        })?
        .to_string();
    let meta = fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (layout, sources) = if meta.is_dir() {
        let sources = walk(path)?;
        if sources.is_empty() {
            anyhow::bail!("{}: no files in the folder", path.display());
        }
        let files = sources
            .iter()
            .map(|(rel, len)| FileEntry {
                length: *len,
                path: rel.clone(),
            })
            .collect();
        let full = sources
            .into_iter()
            .map(|(rel, _)| rel.iter().fold(path.to_path_buf(), |p, c| p.join(c)))
            .collect();
        (Layout::Multi { files }, full)
    } else {
        (
            Layout::Single { length: meta.len() },
            vec![path.to_path_buf()],
        )
    };
    let pieces = hash_pieces(&sources, piece_length)?;
    let info = Info {
        name,
        piece_length,
        pieces,
        layout,
    };
    Ok(Metainfo::new(announce.to_string(), info))
}

/// Makes a torrent of content held in memory: one file called `name`
/// (`files` empty), or a folder called `name` of `files` (path below the
/// folder, with `/`, and bytes), laid end to end in that order. Returns the
/// metainfo and the whole content.
pub fn from_memory(
    name: &str,
    piece_length: u64,
    announce: &str,
    single: &[u8],
    files: &[(String, Vec<u8>)],
) -> (Metainfo, Vec<u8>) {
    let (layout, data) = if files.is_empty() {
        (
            Layout::Single {
                length: single.len() as u64,
            },
            single.to_vec(),
        )
    } else {
        let entries = files
            .iter()
            .map(|(path, bytes)| FileEntry {
                length: bytes.len() as u64,
                path: path.split('/').map(str::to_string).collect(),
            })
            .collect();
        let data = files.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        (Layout::Multi { files: entries }, data)
    };
    let pieces = data
        .chunks(piece_length.max(1) as usize)
        .map(sha1)
        .collect();
    let info = Info {
        name: name.to_string(),
        piece_length,
        pieces,
        layout,
    };
    (Metainfo::new(announce.to_string(), info), data)
}

/// `len` pseudo-random bytes drawn from `seed`: a lab's content, the same
/// for the same seed.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

/// A lab's torrent as a run makes it: its name, metainfo and content.
#[derive(Clone, Debug)]
pub struct LabTorrent {
    /// The spec's name (the file is `NAME.torrent`).
    pub name: String,
    /// The metainfo, announcing to the lab's tracker.
    pub meta: Metainfo,
    /// The whole content, files laid end to end.
    pub data: std::sync::Arc<Vec<u8>>,
}

impl LabTorrent {
    /// The torrent called `name`, or the first when `None`.
    pub fn named<'a>(all: &'a [LabTorrent], name: Option<&str>) -> Option<&'a LabTorrent> {
        match name {
            Some(n) => all.iter().find(|t| t.name == n),
            None => all.first(),
        }
    }
}

/// Makes every torrent of `lab` for a run with `seed`, announcing to
/// `announce`: content of seeded bytes (drawn from the seed and the
/// torrent's name) or from the lab's data.
pub fn lab_torrents(
    lab: &crate::spec::Lab,
    seed: u64,
    announce: &str,
) -> anyhow::Result<Vec<LabTorrent>> {
    lab.torrents
        .iter()
        .map(|t| {
            let (content_name, single, files) = match (&t.size, &t.path) {
                (Some(size), _) => {
                    let mixed = t.name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    });
                    (
                        format!("{}.bin", t.name),
                        seeded_bytes(mixed, *size as usize),
                        Vec::new(),
                    )
                }
                (None, Some(path)) => lab_content(lab, path)?,
                (None, None) => anyhow::bail!("torrent `{}` has neither `size` nor `path`", t.name),
            };
            let (meta, data) =
                from_memory(&content_name, t.piece_length, announce, &single, &files);
            Ok(LabTorrent {
                name: t.name.clone(),
                meta,
                data: std::sync::Arc::new(data),
            })
        })
        .collect()
}

/// A torrent's content: its name, a single file's bytes, or a folder's
/// files (path below the folder, bytes).
type Content = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// The content at `path` in the lab's data: one file, or a folder's files
/// (paths below it, in byte order).
fn lab_content(lab: &crate::spec::Lab, path: &str) -> anyhow::Result<Content> {
    let path = path.trim_matches('/');
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    if let Some((_, bytes)) = lab.files.0.iter().find(|(p, _)| p == path) {
        return Ok((name, bytes.clone(), Vec::new()));
    }
    let prefix = format!("{path}/");
    let mut files: Vec<(String, Vec<u8>)> = lab
        .files
        .0
        .iter()
        .filter_map(|(p, b)| {
            p.strip_prefix(&prefix)
                .map(|rel| (rel.to_string(), b.clone()))
        })
        .collect();
    if files.is_empty() {
        anyhow::bail!("`{path}` is neither a file nor a folder of the lab's data");
    }
    files.sort();
    Ok((name, Vec::new(), files))
}

/// The regular files below `root`, as path components and lengths, sorted.
fn walk(root: &Path) -> anyhow::Result<Vec<(Vec<String>, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![Vec::<String>::new()];
    while let Some(rel) = stack.pop() {
        let dir = rel.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let entries = fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| anyhow::anyhow!("{}: file name {n:?} is not UTF-8", dir.display()))?;
            let kind = entry.file_type()?;
            let mut child = rel.clone();
            child.push(name);
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                out.push((child, entry.metadata()?.len()));
            } else {
                anyhow::bail!("{}: neither a file nor a folder", entry.path().display());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// SHA-1 of each piece of the files' bytes laid end to end.
fn hash_pieces(files: &[PathBuf], piece_length: u64) -> anyhow::Result<Vec<[u8; 20]>> {
    let mut pieces = Vec::new();
    let mut buf = Vec::with_capacity(piece_length as usize);
    for path in files {
        let file = fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut reader = std::io::BufReader::new(file);
        loop {
            let want = piece_length as usize - buf.len();
            let got = (&mut reader)
                .take(want as u64)
                .read_to_end(&mut buf)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if buf.len() == piece_length as usize {
                pieces.push(sha1(&buf));
                buf.clear();
            }
            if got < want {
                break;
            }
        }
    }
    if !buf.is_empty() {
        pieces.push(sha1(&buf));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests;
