//! What a client has not read yet: the receive queue of the peer's socket,
//! asked of the kernel through sock_diag (the interface `ss` uses).
//!
//! A server that answers a client which is a reply behind (it talked before
//! the greeting, then reads one reply per command) uses it to send each
//! reply only once the client has read the one before, as a real server
//! across a network does by the round trip alone; on loopback the replies
//! would otherwise coalesce in one read or not, by the scheduler's whim.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLMSG_ERROR: u16 = 2;
const INET_DIAG_NOCOOKIE: u32 = !0;
const TCP_ESTABLISHED_AND_AFTER: u32 = !0;
/// `SIOCGSKNS`: a descriptor for the network namespace of a socket.
const SIOCGSKNS: libc::c_ulong = 0x894C;
/// Offset of `idiag_rqueue` in a reply: the netlink header (16), then
/// family, state, timer, retrans (4), the socket id (48) and expires (4).
const RQUEUE_AT: usize = 16 + 4 + 48 + 4;

/// A sock_diag socket in the network namespace of the sockets it asks about.
#[derive(Debug)]
pub struct SockDiag(OwnedFd);

impl SockDiag {
    /// A sock_diag socket in the namespace of `socket` (a listener): opened
    /// on a short-lived thread that enters that namespace, or in the
    /// caller's own when the namespace cannot be named (no privilege).
    pub fn beside(socket: &impl AsRawFd) -> io::Result<SockDiag> {
        // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor.
        let ns = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSKNS as _) };
        if ns < 0 {
            return SockDiag::open();
        }
        // SAFETY: `ns` is a fresh descriptor nobody else owns.
        let ns = unsafe { OwnedFd::from_raw_fd(ns) };
        std::thread::spawn(move || {
            // SAFETY: setns on this thread only, which ends right after.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            SockDiag::open()
        })
        .join()
        .map_err(|_| io::Error::other("sock_diag thread panicked"))?
    }

    /// A sock_diag socket in the calling thread's namespace.
    fn open() -> io::Result<SockDiag> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let diag = SockDiag(unsafe { OwnedFd::from_raw_fd(fd) });
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: a timeval of the right size for SO_RCVTIMEO.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            );
        }
        Ok(diag)
    }

    /// Bytes waiting in the receive queue of the TCP socket at `peer`
    /// connected to `local`: what the client at `peer` has not read of what
    /// the server at `local` sent. `Ok(None)`: no such socket (it closed).
    pub fn unread(&self, local: SocketAddr, peer: SocketAddr) -> io::Result<Option<u32>> {
        let request = request(peer, local);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel; the buffer is ours.
        let sent = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.0.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; 512];
        // SAFETY: reads into a buffer we own, within its length.
        let got = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                reply.as_mut_ptr().cast(),
                reply.len(),
                0,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        parse(&reply[..got as usize])
    }
}

/// A SOCK_DIAG_BY_FAMILY request for the one TCP socket bound to `local`
/// and connected to `remote`.
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let family = match local.ip() {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let mut body = vec![family as u8, libc::IPPROTO_TCP as u8, 0, 0];
    body.extend_from_slice(&TCP_ESTABLISHED_AND_AFTER.to_ne_bytes());
    body.extend_from_slice(&local.port().to_be_bytes());
    body.extend_from_slice(&remote.port().to_be_bytes());
    body.extend_from_slice(&address(local.ip()));
    body.extend_from_slice(&address(remote.ip()));
    body.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    body.extend_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    body.extend_from_slice(&INET_DIAG_NOCOOKIE.to_ne_bytes());
    let len = 16 + body.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
    msg.extend_from_slice(&body);
    msg
}

/// An address as sock_diag carries it: 16 bytes, IPv4 in the first four.
fn address(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

/// The receive queue in a reply, or `None` for "no such socket".
fn parse(reply: &[u8]) -> io::Result<Option<u32>> {
    let field = |at: usize| -> Option<[u8; 4]> { reply.get(at..at + 4)?.try_into().ok() };
    let kind = reply
        .get(4..6)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .ok_or_else(|| io::Error::other("short sock_diag reply"))?;
    if kind == NLMSG_ERROR {
        let errno = field(16).map_or(0, i32::from_ne_bytes);
        return match -errno {
            libc::ENOENT => Ok(None),
            0 => Err(io::Error::other("sock_diag acknowledged without an answer")),
            e => Err(io::Error::from_raw_os_error(e)),
        };
    }
    match field(RQUEUE_AT) {
        Some(q) => Ok(Some(u32::from_ne_bytes(q))),
        None => Err(io::Error::other("short sock_diag reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn the_peers_unread_bytes_are_counted_until_it_reads_them() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let diag = SockDiag::beside(&listener).unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, peer) = listener.accept().unwrap();
        let local = server.local_addr().unwrap();
        assert_eq!(diag.unread(local, peer).unwrap(), Some(0));
        server.write_all(b"220 hello\r\n").unwrap();
        // Loopback delivers before write returns, so the bytes wait now.
        assert_eq!(diag.unread(local, peer).unwrap(), Some(11));
        let mut buf = [0u8; 64];
        assert_eq!(client.read(&mut buf).unwrap(), 11);
        assert_eq!(diag.unread(local, peer).unwrap(), Some(0));
        drop(client);
        drop(server);
        // Both ends closed: the client's socket is gone or closing, not waiting.
        assert_ne!(diag.unread(local, peer).unwrap(), Some(11));
    }

    #[test]
    fn it_asks_in_the_namespace_of_the_listener() {
        let Ok(ns) = crate::sandbox::NetNs::new() else {
            return; // no privilege for namespaces here
        };
        let (listener, client) = ns
            .run(|| {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                (listener, client)
            })
            .unwrap();
        let diag = SockDiag::beside(&listener).unwrap();
        let (mut server, peer) = listener.accept().unwrap();
        server.write_all(b"220\r\n").unwrap();
        let local = server.local_addr().unwrap();
        assert_eq!(diag.unread(local, peer).unwrap(), Some(5));
        drop(client);
    }

    #[test]
    fn a_socket_that_never_was_is_none() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let diag = SockDiag::beside(&listener).unwrap();
        let local = listener.local_addr().unwrap();
        let nowhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(diag.unread(local, nowhere).unwrap(), None);
    }
}
