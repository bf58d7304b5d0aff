//! A UDP socket for reference servers that knows where each datagram was sent.
//!
//! In a run's network namespace every address is local and connections and
//! datagrams for any of them can be steered to netgrade's sockets, so a
//! datagram a program sent to `8.8.8.8:53` arrives at a socket bound to
//! `127.0.0.53:53`. A client whose UDP socket is connected (glibc's resolver
//! connects) accepts only replies from the address and port it sent to, so
//! the server must answer from there. [`UdpServerSocket`] asks the kernel for
//! the destination of every datagram (`IP_PKTINFO` and `IP_RECVORIGDSTADDR`,
//! or their IPv6 counterparts) and sends replies with a chosen source address
//! (`IP_PKTINFO` / `IPV6_PKTINFO` in `sendmsg`). A reply whose source port is
//! not the socket's own goes out through a small socket bound to that address
//! and port, made on first use and kept (at most [`MAX_SIDE_SOCKETS`]).
//!
//! IPv4 datagrams that reach a dual-stack IPv6 socket are reported with plain
//! IPv4 addresses, and IPv4 addresses given to such a socket are mapped.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, LazyLock, Mutex};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::sandbox::NetNs;

/// Side sockets kept for replies from ports other than the socket's own.
pub const MAX_SIDE_SOCKETS: usize = 16;

/// A socket that asks for receive timestamps for netgrade's whole life. The
/// kernel turns timestamping on for the first such socket only after a
/// moment (a deferred job), and off again when the last one closes; with
/// this one open, every run's first datagram gets its arrival time too.
static TIMESTAMPS_ON: LazyLock<Option<std::net::UdpSocket>> = LazyLock::new(|| {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true).ok()?;
    Some(socket)
});

/// Turns the kernel's receive timestamps on for good (early, so they are on
/// by the time the first run's program sends).
pub fn keep_timestamps_on() {
    LazyLock::force(&TIMESTAMPS_ON);
}

/// One datagram as [`UdpServerSocket::recv_timed`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Its length (cut to the buffer).
    pub len: usize,
    /// The sender.
    pub peer: SocketAddr,
    /// The address and port it was sent to.
    pub local: SocketAddr,
    /// When the kernel received it (wall clock), if the kernel said.
    pub arrived: Option<std::time::SystemTime>,
}

/// A UDP server socket that reports each datagram's destination and replies from it.
#[derive(Debug)]
pub struct UdpServerSocket {
    socket: UdpSocket,
    /// Whether the socket is AF_INET6 (IPv4 peers then appear as mapped addresses).
    v6: bool,
    /// The socket's own address.
    local: SocketAddr,
    /// The namespace side sockets must be made in.
    netns: Option<Arc<NetNs>>,
    /// Sockets bound to other source ports, most recently made last.
    side: Mutex<Vec<(SocketAddr, Arc<UdpSocket>)>>,
}

impl UdpServerSocket {
    /// Binds a socket on `addr`, inside `netns` when given, and asks the
    /// kernel to report the destination of every datagram.
    pub fn bind(addr: SocketAddr, netns: Option<&NetNs>) -> io::Result<UdpServerSocket> {
        let netns = netns.map(NetNs::try_clone).transpose()?.map(Arc::new);
        let socket = super::bind_udp(addr, netns.as_deref())?;
        UdpServerSocket::from_tokio(socket, netns)
    }

    /// Wraps a bound socket; `netns` is the namespace it lives in, if not the host's.
    pub fn from_tokio(socket: UdpSocket, netns: Option<Arc<NetNs>>) -> io::Result<UdpServerSocket> {
        let local = socket.local_addr()?;
        let v6 = local.is_ipv6();
        let fd = socket.as_fd();
        // Linux accepts an IPv6 source only if it is an interface's address,
        // unless the socket may use non-local addresses.
        setsockopt(&fd, sockopt::IpFreebind, &true)?;
        // Arrival times from the kernel (best effort).
        let _ = setsockopt(&fd, sockopt::ReceiveTimestampns, &true);
        LazyLock::force(&TIMESTAMPS_ON);
        if v6 {
            setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)?;
            setsockopt(&fd, sockopt::Ipv6OrigDstAddr, &true)?;
            // IPv4 datagrams on a dual-stack socket carry the IPv4 options'
            // messages; a v6-only socket refuses these, and needs none.
            let _ = setsockopt(&fd, sockopt::Ipv4OrigDstAddr, &true);
        } else {
            setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
            setsockopt(&fd, sockopt::Ipv4OrigDstAddr, &true)?;
        }
        Ok(UdpServerSocket {
            socket,
            v6,
            local,
            netns,
            side: Mutex::new(Vec::new()),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Waits for a datagram: its length (cut to `buf`), the sender, and the
    /// address and port it was sent to.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        self.recv_timed(buf).await.map(|d| (d.len, d.peer, d.local))
    }

    /// Like [`UdpServerSocket::recv`], without waiting: `WouldBlock` when
    /// the kernel holds no datagram.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, SocketAddr)> {
        self.try_recv_timed(buf).map(|d| (d.len, d.peer, d.local))
    }

    /// Like [`UdpServerSocket::recv`], with the time the kernel received the
    /// datagram: however late netgrade reads it, the arrival is exact.
    pub async fn recv_timed(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.socket
            .async_io(Interest::READABLE, || self.recv_now(buf))
            .await
    }

    /// Like [`UdpServerSocket::recv_timed`], without waiting. It asks the
    /// kernel directly (tokio's cached readiness could hide datagrams the
    /// kernel already holds).
    pub fn try_recv_timed(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.recv_now(buf)
    }

    /// Sends `data` to `to` with source address and port `from` (normally
    /// the destination [`UdpServerSocket::recv`] reported). An unspecified
    /// `from` address lets the kernel choose, as a plain `send_to` does.
    pub async fn send_from(
        &self,
        data: &[u8],
        to: SocketAddr,
        from: SocketAddr,
    ) -> io::Result<usize> {
        if from.port() != self.local.port() && from.port() != 0 {
            let side = self.side_socket(from)?;
            return side.send_to(data, to).await;
        }
        let to = self.family(to);
        let from = self.family(SocketAddr::new(from.ip(), 0)).ip();
        self.socket
            .async_io(Interest::WRITABLE, || self.send_now(data, to, from))
            .await
    }

    /// `addr` as the socket's family writes it (IPv4 mapped on an IPv6 socket).
    fn family(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V4(a) if self.v6 => {
                SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
            }
            other => other,
        }
    }

    /// One `recvmsg`, returning `WouldBlock` when nothing is queued.
    fn recv_now(&self, buf: &mut [u8]) -> io::Result<Received> {
        let fd = self.socket.as_raw_fd();
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(
            libc::in6_pktinfo,
            libc::sockaddr_in6,
            libc::in_pktinfo,
            libc::sockaddr_in,
            libc::timespec
        );
        let msg =
            recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT)?;
        let peer = msg
            .address
            .as_ref()
            .and_then(std_addr)
            .ok_or_else(|| io::Error::other("a datagram without a sender address"))?;
        let (mut ip, mut port) = (self.local.ip(), self.local.port());
        let mut arrived = None;
        for cmsg in msg.cmsgs()? {
            match cmsg {
                ControlMessageOwned::ScmTimestampns(t) => {
                    arrived = Some(
                        std::time::UNIX_EPOCH
                            + std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32),
                    );
                }
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    ip = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)).into();
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    ip = Ipv6Addr::from(info.ipi6_addr.s6_addr).into();
                }
                ControlMessageOwned::Ipv4OrigDstAddr(sa) => port = u16::from_be(sa.sin_port),
                ControlMessageOwned::Ipv6OrigDstAddr(sa) => port = u16::from_be(sa.sin6_port),
                _ => {}
            }
        }
        let local = SocketAddr::new(ip.to_canonical(), port);
        Ok(Received {
            len: msg.bytes,
            peer: canonical(peer),
            local,
            arrived,
        })
    }

    /// One `sendmsg` from address `from`, returning `WouldBlock` when the
    /// send buffer is full.
    fn send_now(&self, data: &[u8], to: SocketAddr, from: IpAddr) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let iov = [IoSlice::new(data)];
        let flags = MsgFlags::MSG_DONTWAIT;
        let sent = match (to, from) {
            (SocketAddr::V4(to), IpAddr::V4(from)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(from).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let cmsg = [ControlMessage::Ipv4PacketInfo(&info)];
                let cmsgs: &[ControlMessage] = if from.is_unspecified() { &[] } else { &cmsg };
                sendmsg(fd, &iov, cmsgs, flags, Some(&SockaddrIn::from(to)))
            }
            (SocketAddr::V6(to), IpAddr::V6(from)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: from.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                let cmsg = [ControlMessage::Ipv6PacketInfo(&info)];
                let cmsgs: &[ControlMessage] = if from.is_unspecified() { &[] } else { &cmsg };
                sendmsg(fd, &iov, cmsgs, flags, Some(&SockaddrIn6::from(to)))
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send to {to} from {from}: the address families differ"),
                ));
            }
        };
        Ok(sent?)
    }

    /// A socket bound to `from` (made now, in the namespace, if there is none yet).
    fn side_socket(&self, from: SocketAddr) -> io::Result<Arc<UdpSocket>> {
        let mut side = self.side.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, socket)) = side.iter().find(|(a, _)| *a == from) {
            return Ok(socket.clone());
        }
        let socket = match &self.netns {
            Some(ns) => ns.run(move || bind_freely(from))??,
            None => bind_freely(from)?,
        };
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        if side.len() >= MAX_SIDE_SOCKETS {
            side.remove(0);
        }
        side.push((from, socket.clone()));
        Ok(socket)
    }
}

impl AsFd for UdpServerSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// A non-blocking socket bound to `addr`, which need not be an interface's address.
fn bind_freely(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, bind, socket};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket(family, SockType::Datagram, flags, None)?;
    setsockopt(&fd, sockopt::IpFreebind, &true)?;
    match addr {
        SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(a))?,
    }
    Ok(std::net::UdpSocket::from(fd))
}

/// `addr` as a std socket address, if it is an internet one.
fn std_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(a) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::new(a.ip(), a.port())));
    }
    let a = addr.as_sockaddr_in6()?;
    Some(SocketAddr::V6(SocketAddrV6::new(
        a.ip(),
        a.port(),
        a.flowinfo(),
        a.scope_id(),
    )))
}

/// `addr` with an IPv4-mapped IPv6 address written as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// An address nobody here owns, as a program's hard-coded server.
    const FAR_V4: Ipv4Addr = Ipv4Addr::new(191, 101, 232, 165);
    const FAR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5);

    /// A namespace where every address is local, as a captured run's is
    /// (without the steering program: a datagram reaches a socket only
    /// through the port it is bound to). `None` without the privileges.
    pub(crate) fn capture_ns() -> Option<NetNs> {
        let Ok(ns) = NetNs::new() else {
            eprintln!("skipped: no permission to create network namespaces");
            return None;
        };
        for args in [
            &[
                "route",
                "add",
                "local",
                "0.0.0.0/0",
                "dev",
                "lo",
                "table",
                "local",
            ][..],
            &[
                "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "local",
            ],
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let status = ns
                .run(move || std::process::Command::new("ip").args(&args).status())
                .unwrap()
                .expect("cannot run `ip`");
            assert!(status.success(), "ip route add failed");
        }
        Some(ns)
    }

    /// A client socket in `ns` bound to `bind`, connected to `to`, as glibc's resolver does.
    fn connected_client(ns: &NetNs, bind: SocketAddr, to: SocketAddr) -> std::net::UdpSocket {
        let client = ns
            .run(move || std::net::UdpSocket::bind(bind))
            .unwrap()
            .unwrap();
        client.connect(to).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
    }

    /// Sends `ping` from `client`, returns what the server saw.
    async fn exchange(
        server: &UdpServerSocket,
        client: &std::net::UdpSocket,
    ) -> (SocketAddr, SocketAddr) {
        client.send(b"ping").unwrap();
        let mut buf = [0u8; 64];
        let (n, peer, local) = tokio::time::timeout(Duration::from_secs(10), server.recv(&mut buf))
            .await
            .expect("the datagram arrives")
            .unwrap();
        assert_eq!(&buf[..n], b"ping");
        (peer, local)
    }

    /// What `client` receives next (blocking, with its read timeout).
    fn received(client: &std::net::UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf).expect("a reply within 10 s");
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn a_connected_client_gets_the_reply_only_from_where_it_sent() {
        let Some(ns) = capture_ns() else { return };
        let server = UdpServerSocket::bind("0.0.0.0:0".parse().unwrap(), Some(&ns)).unwrap();
        let port = server.local_addr().port();
        let far = SocketAddr::new(FAR_V4.into(), port);
        let client = connected_client(&ns, "127.0.0.1:0".parse().unwrap(), far);
        let (peer, local) = exchange(&server, &client).await;
        assert_eq!(local, far, "the destination the client used");
        assert_eq!(peer, client.local_addr().unwrap());
        // The kernel's own choice of source (127.0.0.1, towards the client) is
        // dropped by the connected client; the reply from `far` is not.
        let unspecified = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
        server.send_from(b"wrong", peer, unspecified).await.unwrap();
        server.send_from(b"right", peer, local).await.unwrap();
        assert_eq!(received(&client), b"right");
    }

    #[tokio::test]
    async fn a_socket_bound_to_one_address_replies_from_another() {
        let Some(ns) = capture_ns() else { return };
        let server = UdpServerSocket::bind("127.0.0.53:0".parse().unwrap(), Some(&ns)).unwrap();
        let port = server.local_addr().port();
        let far = SocketAddr::new(FAR_V4.into(), port);
        let client = connected_client(&ns, "127.0.0.1:0".parse().unwrap(), far);
        let peer = client.local_addr().unwrap();
        server
            .send_from(b"wrong", peer, server.local_addr())
            .await
            .unwrap();
        server.send_from(b"right", peer, far).await.unwrap();
        assert_eq!(received(&client), b"right");
    }

    #[tokio::test]
    async fn a_reply_from_another_port_goes_through_a_side_socket() {
        let Some(ns) = capture_ns() else { return };
        let server = UdpServerSocket::bind("127.0.0.1:0".parse().unwrap(), Some(&ns)).unwrap();
        let other = ns
            .run(|| std::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap()
            .unwrap();
        // A port nobody uses once `other` is closed.
        let free = other.local_addr().unwrap().port();
        drop(other);
        let far = SocketAddr::new(FAR_V4.into(), free);
        let client = connected_client(&ns, "127.0.0.1:0".parse().unwrap(), far);
        let peer = client.local_addr().unwrap();
        server
            .send_from(b"wrong", peer, server.local_addr())
            .await
            .unwrap();
        for _ in 0..2 {
            server.send_from(b"right", peer, far).await.unwrap();
            assert_eq!(received(&client), b"right");
        }
        assert_eq!(
            server.side.lock().unwrap().len(),
            1,
            "made once, then reused"
        );
    }

    #[tokio::test]
    async fn ipv6_and_ipv4_on_a_dual_stack_socket() {
        let Some(ns) = capture_ns() else { return };
        let server = UdpServerSocket::bind("[::]:0".parse().unwrap(), Some(&ns)).unwrap();
        let port = server.local_addr().port();
        for (bind, far) in [
            ("[::1]:0", SocketAddr::new(FAR_V6.into(), port)),
            ("127.0.0.1:0", SocketAddr::new(FAR_V4.into(), port)),
        ] {
            let client = connected_client(&ns, bind.parse().unwrap(), far);
            let (peer, local) = exchange(&server, &client).await;
            assert_eq!(local, far);
            assert_eq!(
                peer,
                client.local_addr().unwrap(),
                "IPv4 peers are not mapped"
            );
            let wrong = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
            server
                .send_from(b"wrong", peer, wrong)
                .await
                .unwrap_or_else(|e| panic!("wrong {bind}: {e}"));
            server
                .send_from(b"right", peer, local)
                .await
                .unwrap_or_else(|e| panic!("right {bind}: {e}"));
            assert_eq!(received(&client), b"right");
        }
    }

    #[tokio::test]
    async fn try_recv_reads_what_is_queued_and_then_would_block() {
        let server = UdpServerSocket::bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"queued", server.local_addr()).unwrap();
        let mut buf = [0u8; 16];
        let got = loop {
            match server.try_recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(&buf[..got.0], b"queued");
        assert_eq!(got.1, client.local_addr().unwrap());
        assert_eq!(got.2, server.local_addr());
        let again = server.try_recv(&mut buf).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
    }
}
