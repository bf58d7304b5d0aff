//! TLS for the reference servers: a certificate authority made for one run.
//!
//! Students' mail clients connect with STARTTLS or implicit TLS and verify the
//! server's certificate (`ssl.create_default_context()`, Java's default trust
//! store). Each run makes its own authority ([`RunCa`], ECDSA P-256), has the
//! program trust it ([`RunCa::write_trust`]: `SSL_CERT_FILE` and friends, a
//! Java trust store through `JAVA_TOOL_OPTIONS`), and presents on every
//! connection a certificate it signed for whatever the client asked for: the
//! name in its SNI (`smtp.gmail.com`, `smtp.163.com` …), the local address the
//! client connected to (clients that connect by address send no SNI and check
//! the address), `localhost` and 127.0.0.1. The authority's key never leaves
//! memory and dies with the run.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::trace::{EventKind, Stream, Trace};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How much room each read without waiting makes.
const READ_CHUNK: usize = 8 * 1024;
/// Leaf certificates kept per run; beyond, the oldest is forgotten.
const MAX_LEAVES: usize = 64;
/// Longest server name a leaf is made for (a DNS name has at most 253 octets).
const MAX_NAME: usize = 253;
/// How long certificates are valid before and after the moment they are made.
const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// The file name of the authority's certificate (PEM) that [`RunCa::write_trust`] writes.
pub const CA_PEM: &str = "netgrade-ca.pem";
/// The file name of the Java trust store (PKCS #12) that [`RunCa::write_trust`] writes.
pub const CA_P12: &str = "netgrade-ca.p12";
/// The trust store's password (it holds no secret: only the authority's certificate).
pub const TRUST_STORE_PASSWORD: &str = "netgrade";
/// What the JVM prints on stderr when it reads `JAVA_TOOL_OPTIONS`.
const JVM_NOTICE: &str = "Picked up JAVA_TOOL_OPTIONS: ";

/// A certificate authority for one run, and the leaf certificates it signed.
pub struct RunCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<Leaves>,
}

impl fmt::Debug for RunCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunCa").finish_non_exhaustive()
    }
}

/// Leaves by (server name, local address), oldest first.
#[derive(Default)]
struct Leaves {
    by_key: HashMap<(Option<String>, IpAddr), Arc<CertifiedKey>>,
    order: VecDeque<(Option<String>, IpAddr)>,
}

impl RunCa {
    /// A new authority with a fresh ECDSA P-256 key.
    pub fn new() -> Result<RunCa> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .context("cannot make a key for the run's certificate authority")?;
        let mut params = CertificateParams::default();
        // Named after its key, so two runs' authorities are told apart.
        let id: String = key.public_key_raw()[1..5]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        params.distinguished_name = name(&format!("netgrade run CA {id}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params)?;
        let cert = params
            .self_signed(&key)
            .context("cannot sign the run's certificate authority")?;
        Ok(RunCa {
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            leaves: Mutex::default(),
        })
    }

    /// The authority's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The authority's certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// A TLS acceptor for one accepted connection whose local address is
    /// `local`: it presents a leaf for the client's SNI name (if any), `local`,
    /// `localhost` and 127.0.0.1. TLS 1.2 and 1.3; no session resumption.
    pub fn acceptor(self: &Arc<Self>, local: IpAddr) -> Result<TlsAcceptor> {
        let resolver = Resolver {
            ca: self.clone(),
            local,
        };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .context("the TLS provider lacks TLS 1.2 and 1.3")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// The leaf for `sni` (lower-cased by rustls) on local address `local`,
    /// made on first use and cached.
    fn leaf(&self, sni: Option<&str>, local: IpAddr) -> Result<Arc<CertifiedKey>> {
        let sni = sni.filter(|n| !n.is_empty() && n.len() <= MAX_NAME);
        let key = (sni.map(str::to_ascii_lowercase), local);
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(leaf) = leaves.by_key.get(&key) {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(self.make_leaf(key.0.as_deref(), local)?);
        if leaves.order.len() >= MAX_LEAVES
            && let Some(oldest) = leaves.order.pop_front()
        {
            leaves.by_key.remove(&oldest);
        }
        leaves.order.push_back(key.clone());
        leaves.by_key.insert(key, leaf.clone());
        Ok(leaf)
    }

    /// Signs a new leaf for `sni` and `local`.
    fn make_leaf(&self, sni: Option<&str>, local: IpAddr) -> Result<CertifiedKey> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let common = sni.map(str::to_string).unwrap_or_else(|| local.to_string());
        params.distinguished_name = name(&common);
        let mut sans = Vec::new();
        if let Some(sni) = sni {
            sans.push(SanType::DnsName(sni.try_into()?));
        }
        if sni != Some("localhost") {
            sans.push(SanType::DnsName("localhost".try_into()?));
        }
        for ip in [
            local,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Ipv6Addr::LOCALHOST.into(),
        ] {
            if !sans.contains(&SanType::IpAddress(ip)) {
                sans.push(SanType::IpAddress(ip));
            }
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        // The leaf alone: clients hold the authority (sending it too makes
        // clients that do not trust it say "self-signed certificate in chain").
        let chain = vec![cert.der().clone()];
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(CertifiedKey::from_der(chain, der, &self.provider)?)
    }

    /// Writes the authority's certificate (`netgrade-ca.pem`) and a Java trust
    /// store holding it (`netgrade-ca.p12`, PKCS #12) into `dir`, and returns
    /// the environment that makes a program trust it: `SSL_CERT_FILE`
    /// (OpenSSL, so Python's `ssl.create_default_context()`), `REQUESTS_CA_BUNDLE`,
    /// `CURL_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, and `JAVA_TOOL_OPTIONS` naming the
    /// trust store, its type and password. The JVM then prints a notice on
    /// stderr that [`is_jvm_notice`] recognises.
    pub fn write_trust(&self, dir: &Path) -> Result<Vec<(String, String)>> {
        let pem = dir.join(CA_PEM);
        let p12 = dir.join(CA_P12);
        std::fs::write(&pem, &self.ca_pem)
            .with_context(|| format!("cannot write {}", pem.display()))?;
        std::fs::write(&p12, trust_store(&self.ca_der))
            .with_context(|| format!("cannot write {}", p12.display()))?;
        let pem = pem.display().to_string();
        let java = format!(
            "-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword={TRUST_STORE_PASSWORD}",
            java_quote(&p12.display().to_string())
        );
        Ok([
            ("SSL_CERT_FILE", pem.clone()),
            ("REQUESTS_CA_BUNDLE", pem.clone()),
            ("CURL_CA_BUNDLE", pem.clone()),
            ("NODE_EXTRA_CA_CERTS", pem),
            ("JAVA_TOOL_OPTIONS", java),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
    }
}

/// The TLS side of one run: its authority, the files that make a program
/// trust it, and the environment that names them. The files go when it is dropped.
#[derive(Debug)]
pub struct RunTrust {
    /// The run's certificate authority.
    pub ca: Arc<RunCa>,
    /// What the program's environment gets (see [`RunCa::write_trust`]).
    pub env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl RunTrust {
    /// A new authority, written out to a new directory that everyone may read.
    pub fn new() -> Result<RunTrust> {
        let ca = Arc::new(RunCa::new()?);
        let dir = tempfile::Builder::new()
            .prefix("netgrade-trust-")
            .tempdir_in(crate::sandbox::janitor::scratch())
            .context("cannot create a directory for the run's certificate authority")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let env = ca.write_trust(dir.path())?;
        Ok(RunTrust { ca, env, dir })
    }

    /// The authority's certificate file (PEM).
    pub fn pem_path(&self) -> std::path::PathBuf {
        self.dir.path().join(CA_PEM)
    }

    /// Removes from `trace` the stderr lines the JVM printed because of
    /// [`RunTrust::env`]: netgrade's doing, not the program's.
    pub fn drop_jvm_notices(&self, trace: &mut Trace) {
        trace.events.retain(|e| {
            !matches!(&e.kind, EventKind::Output { stream: Stream::Stderr, line } if is_jvm_notice(line, &self.env))
        });
    }
}

/// Whether `line` (a line of a program's stderr, without its ending) is the
/// notice the JVM prints because of the `JAVA_TOOL_OPTIONS` in `env` (what
/// [`RunCa::write_trust`] returned): netgrade's doing, not the program's.
pub fn is_jvm_notice(line: &str, env: &[(String, String)]) -> bool {
    env.iter().any(|(k, v)| {
        k == "JAVA_TOOL_OPTIONS"
            && line
                .strip_prefix(JVM_NOTICE)
                .is_some_and(|rest| rest == v.as_str())
    })
}

/// A server's end of a TCP connection: plain text, or TLS once started.
#[derive(Debug)]
pub enum Conn {
    /// Plain text.
    Plain(TcpStream),
    /// TLS (implicit, or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
    /// Lost in a TLS handshake that did not finish in time.
    Gone,
}

/// What a TLS handshake negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLS 1.3` or `TLS 1.2`.
    pub version: String,
    /// The server name the client asked for (SNI), if it sent one.
    pub sni: Option<String>,
}

/// Why a TLS handshake did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The client sent these bytes, which do not start a TLS handshake.
    NotTls(Vec<u8>),
    /// The client closed the connection first.
    Closed,
    /// The client sent nothing before the deadline.
    Silent,
    /// The handshake started but did not finish before the deadline.
    TimedOut,
    /// The handshake failed (rustls's reason: an alert the client sent, a
    /// protocol error …).
    Failed(String),
}

impl HandshakeError {
    /// Whether the client probably refused netgrade's certificate (it sent
    /// an alert about it).
    pub fn refused_certificate(&self) -> bool {
        const ALERTS: [&str; 5] = [
            "UnknownCA",
            "BadCertificate",
            "CertificateUnknown",
            "AccessDenied",
            "DecryptError",
        ];
        matches!(self, HandshakeError::Failed(e) if ALERTS.iter().any(|a| e.contains(a)))
    }
}

/// The first byte of a TLS handshake record (RFC 8446 §5.1, content type 22).
const HANDSHAKE_RECORD: u8 = 0x16;

impl Conn {
    /// Reads what arrives into `buf`; 0 at the end of the stream.
    pub async fn read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read_buf(buf).await,
            Conn::Tls(s) => s.read_buf(buf).await,
            Conn::Gone => Ok(0),
        }
    }

    /// Writes all of `bytes` (through TLS, flushed).
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Ends the sending side (after a TLS close_notify).
    pub async fn shutdown(&mut self) {
        let _ = match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Gone => Ok(()),
        };
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }

    /// Moves into `buf`, without waiting, what the client has already sent
    /// (decrypted when TLS is on); returns how many bytes.
    ///
    /// It reads the socket through a duplicate of it: tokio's own `try_read`
    /// trusts readiness cached at the last poll and would miss bytes that
    /// arrived since. Under TLS the records read that way go to rustls, and
    /// what they decrypt to comes out.
    pub fn read_now(&mut self, buf: &mut Vec<u8>) -> usize {
        let start = buf.len();
        match self {
            Conn::Plain(tcp) => {
                read_socket_now(tcp, buf);
            }
            Conn::Tls(tls) => {
                let (tcp, conn) = tls.get_mut();
                let mut raw = Vec::new();
                read_socket_now(tcp, &mut raw);
                let mut rest = &raw[..];
                loop {
                    drain_plaintext(conn, buf);
                    if rest.is_empty()
                        || !matches!(conn.read_tls(&mut rest), Ok(1..))
                        || conn.process_new_packets().is_err()
                    {
                        break;
                    }
                }
            }
            Conn::Gone => {}
        }
        buf.len() - start
    }

    /// Starts TLS as the server on a plain connection (right away on an
    /// implicit-TLS port, or after the reply to STARTTLS), presenting a leaf
    /// of `ca`. Gives up at `deadline`. After a failure the connection is
    /// plain again (or [`Conn::Gone`] if the handshake was cut off mid-way).
    pub async fn start_tls(
        &mut self,
        ca: &Arc<RunCa>,
        deadline: tokio::time::Instant,
    ) -> std::result::Result<Negotiated, HandshakeError> {
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Gone) else {
            return Err(HandshakeError::Failed("TLS is already on".into()));
        };
        let mut first = [0u8; 64];
        let peeked = tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await;
        let refusal = match peeked {
            Err(_) => Some(HandshakeError::Silent),
            Ok(Ok(0)) | Ok(Err(_)) => Some(HandshakeError::Closed),
            Ok(Ok(n)) if first[0] != HANDSHAKE_RECORD => {
                Some(HandshakeError::NotTls(first[..n].to_vec()))
            }
            Ok(Ok(_)) => None,
        };
        if let Some(refusal) = refusal {
            *self = Conn::Plain(tcp);
            return Err(refusal);
        }
        let local = tcp
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(Ipv4Addr::LOCALHOST.into());
        let acceptor = match ca.acceptor(local) {
            Ok(a) => a,
            Err(e) => {
                *self = Conn::Plain(tcp);
                return Err(HandshakeError::Failed(format!("{e:#}")));
            }
        };
        let accept = acceptor.accept(tcp).into_fallible();
        match tokio::time::timeout_at(deadline, accept).await {
            Ok(Ok(tls)) => {
                let conn = tls.get_ref().1;
                let negotiated = Negotiated {
                    version: version_name(conn.protocol_version()),
                    sni: conn.server_name().map(str::to_string),
                };
                *self = Conn::Tls(Box::new(tls));
                Ok(negotiated)
            }
            Ok(Err((e, tcp))) => {
                *self = Conn::Plain(tcp);
                Err(HandshakeError::Failed(e.to_string()))
            }
            Err(_) => Err(HandshakeError::TimedOut),
        }
    }
}

/// Appends what the socket holds to `buf`, without waiting.
fn read_socket_now(tcp: &TcpStream, buf: &mut Vec<u8>) {
    let Ok(fd) = tcp.as_fd().try_clone_to_owned() else {
        return;
    };
    let mut socket = std::net::TcpStream::from(fd);
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let n = match socket.set_nonblocking(true) {
        Ok(()) => socket.read(&mut buf[start..]).unwrap_or(0),
        Err(_) => 0,
    };
    buf.truncate(start + n);
}

/// Appends to `buf` what rustls has decrypted and not yet handed out.
fn drain_plaintext(conn: &mut rustls::ServerConnection, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; READ_CHUNK];
    while let Ok(n @ 1..) = conn.reader().read(&mut chunk) {
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `TLS 1.3` for people.
fn version_name(version: Option<rustls::ProtocolVersion>) -> String {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".into(),
        Some(rustls::ProtocolVersion::TLSv1_1) => "TLS 1.1".into(),
        Some(rustls::ProtocolVersion::TLSv1_0) => "TLS 1.0".into(),
        Some(other) => format!("protocol version 0x{:04x}", u16::from(other)),
        None => "TLS".into(),
    }
}

/// Picks the leaf for each handshake of one connection.
struct Resolver {
    ca: Arc<RunCa>,
    local: IpAddr,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("local", &self.local)
            .finish()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.ca.leaf(hello.server_name(), self.local).ok()
    }
}

/// A distinguished name with common name `common` and organization netgrade.
fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "netgrade");
    dn.push(DnType::CommonName, common);
    dn
}

/// Makes `params` valid from a day ago to [`VALIDITY`] from now.
fn set_validity(params: &mut CertificateParams) -> Result<()> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - Duration::from_secs(24 * 3600);
    params.not_after = now + VALIDITY;
    Ok(())
}

/// `path` as one word of `JAVA_TOOL_OPTIONS`: quoted when it holds white space.
fn java_quote(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_string()
    }
}

/// A PKCS #12 file (RFC 7292) holding `cert` as a trusted certificate, the
/// way Java's `keytool -importcert` writes one: a certificate bag with a
/// friendly name and Oracle's trusted-key-usage attribute (any purpose), in
/// unencrypted data, without a MAC (it holds nothing secret).
fn trust_store(cert: &[u8]) -> Vec<u8> {
    const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
    const CERT_BAG: &[u64] = &[1, 2, 840, 113549, 1, 12, 10, 1, 3];
    const X509_CERT: &[u64] = &[1, 2, 840, 113549, 1, 9, 22, 1];
    const FRIENDLY_NAME: &[u64] = &[1, 2, 840, 113549, 1, 9, 20];
    const TRUSTED_KEY_USAGE: &[u64] = &[2, 16, 840, 1, 113894, 746875, 1, 1];
    const ANY_EXTENDED_KEY_USAGE: &[u64] = &[2, 5, 29, 37, 0];
    let alias: Vec<u8> = "netgrade-ca"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let attribute = |id: &[u64], value: Vec<u8>| der::seq(&[der::oid(id), der::set(&[value])]);
    let cert_bag = der::seq(&[der::oid(X509_CERT), der::explicit0(der::octets(cert))]);
    let safe_bag = der::seq(&[
        der::oid(CERT_BAG),
        der::explicit0(cert_bag),
        der::set(&[
            attribute(FRIENDLY_NAME, der::tlv(0x1e, &alias)),
            attribute(TRUSTED_KEY_USAGE, der::oid(ANY_EXTENDED_KEY_USAGE)),
        ]),
    ]);
    let data =
        |content: Vec<u8>| der::seq(&[der::oid(DATA), der::explicit0(der::octets(&content))]);
    let authenticated_safe = der::seq(&[data(der::seq(&[safe_bag]))]);
    der::seq(&[der::tlv(0x02, &[3]), data(authenticated_safe)])
}

/// Just enough DER (X.690) to write a PKCS #12 trust store.
mod der {
    /// Tag, length, value.
    pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(value);
        out
    }

    /// A SEQUENCE of already encoded items.
    pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    /// A SET of already encoded items, sorted as DER wants.
    pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
        let mut items = items.to_vec();
        items.sort();
        tlv(0x31, &items.concat())
    }

    /// An OCTET STRING.
    pub fn octets(bytes: &[u8]) -> Vec<u8> {
        tlv(0x04, bytes)
    }

    /// `[0] EXPLICIT` around an encoded item.
    pub fn explicit0(item: Vec<u8>) -> Vec<u8> {
        tlv(0xa0, &item)
    }

    /// An OBJECT IDENTIFIER.
    pub fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut body = Vec::new();
        let first = std::iter::once(arcs[0] * 40 + arcs[1]);
        for arc in first.chain(arcs[2..].iter().copied()) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            body.extend(groups.into_iter().rev());
        }
        tlv(0x06, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::net::TcpListener;
    use tokio::process::Command;
    use tokio::time::timeout;

    /// A TLS server on loopback that sends `hello\n` on each connection.
    async fn hello_server(ca: Arc<RunCa>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let local = stream.local_addr().unwrap().ip();
                let acceptor = ca.acceptor(local).unwrap();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let _ = tls.write_all(b"hello\n").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        (addr, task)
    }

    /// Connects with rustls, trusting only `ca`, asking for `name`; what the server sent.
    async fn fetch(ca: &RunCa, addr: std::net::SocketAddr, name: &str) -> Result<String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.ca_der().clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(name.to_string())?;
        let mut tls = timeout(Duration::from_secs(5), connector.connect(name, tcp)).await??;
        let mut text = String::new();
        timeout(Duration::from_secs(5), tls.read_to_string(&mut text)).await??;
        Ok(text)
    }

    #[tokio::test]
    async fn leaves_match_the_sni_name_or_the_address_and_nothing_else() {
        let ca = Arc::new(RunCa::new().unwrap());
        let (addr, task) = hello_server(ca.clone()).await;
        for name in [
            "smtp.gmail.com",
            "SMTP.163.com",
            "smtp.mail.com",
            "localhost",
            "127.0.0.1",
            "::1",
        ] {
            let text = fetch(&ca, addr, name).await;
            assert_eq!(text.unwrap(), "hello\n", "{name}");
        }
        // A different authority's clients do not trust it.
        let other = RunCa::new().unwrap();
        let refused = fetch(&other, addr, "smtp.gmail.com").await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("UnknownIssuer"),
            "{refused:#}"
        );
        // Another address is not in a leaf made for 127.0.0.1.
        let refused = fetch(&ca, addr, "10.1.2.3").await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("not valid for name"),
            "{refused:#}"
        );
        task.abort();
    }

    #[test]
    fn leaves_are_cached_per_name_and_address_and_bounded() {
        let ca = RunCa::new().unwrap();
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let a = ca.leaf(Some("smtp.gmail.com"), local).unwrap();
        let b = ca.leaf(Some("smtp.gmail.com"), local).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = ca.leaf(None, local).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        for i in 0..MAX_LEAVES + 10 {
            ca.leaf(Some(&format!("host{i}.test")), local).unwrap();
        }
        let leaves = ca.leaves.lock().unwrap();
        assert_eq!(leaves.by_key.len(), MAX_LEAVES);
        assert_eq!(leaves.order.len(), MAX_LEAVES);
        assert!(
            !leaves
                .by_key
                .contains_key(&(Some("smtp.gmail.com".into()), local))
        );
    }

    /// Runs `program` (10 s at most); status, stdout and stderr.
    async fn run(program: &str, args: &[&str], env: &[(String, String)]) -> (bool, String) {
        let mut cmd = Command::new(program);
        cmd.args(args).envs(env.iter().cloned()).kill_on_drop(true);
        cmd.stdin(std::process::Stdio::null());
        let out = timeout(Duration::from_secs(20), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{program} timed out"))
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
        (out.status.success(), text)
    }

    #[tokio::test]
    async fn openssl_python_and_java_trust_what_write_trust_wrote() {
        let ca = Arc::new(RunCa::new().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let env = ca.write_trust(dir.path()).unwrap();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let expected = [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "JAVA_TOOL_OPTIONS",
        ];
        assert_eq!(names, expected);
        let pem = dir.path().join(CA_PEM).display().to_string();
        let (addr, task) = hello_server(ca.clone()).await;
        let connect = addr.to_string();
        let args = [
            "s_client",
            "-ign_eof",
            "-connect",
            &connect,
            "-servername",
            "smtp.mail.com",
        ];
        let args = [
            &args[..],
            &[
                "-verify_hostname",
                "smtp.mail.com",
                "-verify_return_error",
                "-CAfile",
                &pem,
            ],
        ]
        .concat();
        let (ok, text) = run("openssl", &args, &[]).await;
        assert!(ok && text.contains("Verify return code: 0 (ok)"), "{text}");
        assert!(text.contains("hello"), "{text}");
        // Python's default context reads SSL_CERT_FILE; it checks the address when given one.
        let script = format!(
            "import socket, ssl\n\
             for host in ['smtp.gmail.com', '127.0.0.1']:\n\
             \x20   ctx = ssl.create_default_context()\n\
             \x20   with socket.create_connection(('127.0.0.1', {port}), timeout=5) as s:\n\
             \x20       with ctx.wrap_socket(s, server_hostname=host) as t:\n\
             \x20           print(host, t.version(), t.recv(100).decode().strip())\n",
            port = addr.port()
        );
        let (ok, text) = run("python3", &["-c", &script], &env).await;
        assert!(ok, "{text}");
        assert!(
            text.contains("smtp.gmail.com TLSv1.3 hello\n127.0.0.1 TLSv1.3 hello"),
            "{text}"
        );
        let (ok, text) = run("python3", &["-c", &script], &[]).await;
        assert!(!ok && text.contains("CERTIFICATE_VERIFY_FAILED"), "{text}");
        task.abort();
        // The JDK loads the trust store as a trusted certificate, through JAVA_TOOL_OPTIONS.
        let p12 = dir.path().join(CA_P12).display().to_string();
        let args = [
            "-list",
            "-keystore",
            &p12,
            "-storetype",
            "PKCS12",
            "-storepass",
            TRUST_STORE_PASSWORD,
        ];
        let (ok, text) = run("keytool", &args, &[]).await;
        assert!(
            ok && text.contains("netgrade-ca,") && text.contains("trustedCertEntry"),
            "{text}"
        );
        let (_, text) = run("java", &["-version"], &env).await;
        let notice = text.lines().next().unwrap();
        assert!(is_jvm_notice(notice, &env), "{text}");
        assert!(!is_jvm_notice("Picked up JAVA_TOOL_OPTIONS: -Xmx1g", &env));
        assert!(!is_jvm_notice(notice, &[]));
    }

    #[test]
    fn der_lengths_and_identifiers() {
        assert_eq!(der::tlv(4, &[7; 3]), [4, 3, 7, 7, 7]);
        assert_eq!(&der::tlv(4, &[0; 200])[..3], [4, 0x81, 200]);
        assert_eq!(&der::tlv(4, &[0; 300])[..4], [4, 0x82, 1, 44]);
        // 1.2.840.113549 and Oracle's 2.16.840.1.113894.746875.1.1
        assert_eq!(
            der::oid(&[1, 2, 840, 113549]),
            [6, 6, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
        let oracle = der::oid(&[2, 16, 840, 1, 113894, 746875, 1, 1]);
        assert_eq!(
            oracle,
            [
                6, 12, 0x60, 0x86, 0x48, 0x01, 0x86, 0xf9, 0x66, 0xad, 0xca, 0x7b, 0x01, 0x01
            ]
        );
    }
}
