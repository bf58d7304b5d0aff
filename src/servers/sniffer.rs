//! Watches a run's loopback for traffic that does not go straight to a
//! reference server.
//!
//! Inside a run's network namespace nothing but the student's program and
//! netgrade's servers talks, so every new flow (a UDP datagram from a new
//! socket, a TCP connection attempt) to an address that is not a server's
//! own is the program's doing: a hard-coded host (`smtp.gmail.com`, a lab
//! machine's IP), another handout's port (10000, 12002), or a TCP socket in
//! a UDP lab. The capture's [`Table`] says what became of it: handed to a
//! server ([`crate::trace::EventKind::Captured`]) or received by nobody
//! ([`crate::trace::EventKind::Stray`]), which checks and reports then name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::sandbox::NetNs;
use crate::sandbox::capture::Table;
use crate::trace::{Recorder, Transport};

/// Flows recorded per run; the rest are counted only by their absence.
const MAX_FLOWS: usize = 100;

/// Opens a packet socket on the namespace's loopback (needs CAP_NET_RAW, which
/// whoever could create the namespace has).
pub fn open(netns: &NetNs) -> std::io::Result<AsyncFd<OwnedFd>> {
    let fd = netns.run(|| {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            )
        };
        if raw < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: `raw` is a fresh descriptor nobody else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        }
    })??;
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and
    // the same for the AsyncFd's whole life.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Records new flows until `stop` fires, then reads what the kernel
/// already queued (so a packet sent just before the program exited is never
/// lost to scheduling) and returns.
pub async fn run(
    fd: AsyncFd<OwnedFd>,
    table: Table,
    recorder: Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut seen: std::collections::HashSet<(Transport, SocketAddr, SocketAddr)> =
        std::collections::HashSet::new();
    let mut answering: std::collections::HashSet<(Transport, SocketAddr)> =
        std::collections::HashSet::new();
    let mut keep = |packet: Option<(usize, u8)>, buf: &[u8]| {
        let Some((n, pkttype)) = packet else { return };
        // Loopback shows each packet twice: leaving and arriving. Keep one.
        if pkttype == libc::PACKET_OUTGOING || seen.len() >= MAX_FLOWS {
            return;
        }
        let Some((transport, from, to)) = flow(&buf[..n]) else {
            return;
        };
        // A reply from a captured destination (a server answering in its
        // place, from that address and port) is not the program's traffic.
        if answering.contains(&(transport, from)) || !seen.insert((transport, from, to)) {
            return;
        }
        if let Some(event) = table.classify(transport, from, to) {
            if let crate::trace::EventKind::Captured { to, .. } = &event {
                answering.insert((transport, *to));
            }
            recorder.record(event);
        }
    };
    loop {
        tokio::select! {
            ready = fd.readable() => {
                let Ok(mut guard) = ready else { return };
                match guard.try_io(|inner| recv(inner.as_raw_fd(), &mut buf, 0)) {
                    Ok(Ok(packet)) => keep(Some(packet), &buf),
                    Ok(Err(_)) => return,
                    Err(_would_block) => {}
                }
            }
            _ = stop.changed() => {
                while let Ok(packet) = recv(fd.as_raw_fd(), &mut buf, libc::MSG_DONTWAIT) {
                    keep(Some(packet), &buf);
                }
                // Closing a packet socket waits for an RCU grace period (tens
                // of ms): let that happen off the run's critical path.
                tokio::task::spawn_blocking(move || drop(fd));
                return;
            }
        }
    }
}

/// One packet from the packet socket: its length and packet type.
fn recv(fd: std::os::fd::RawFd, buf: &mut [u8], flags: i32) -> std::io::Result<(usize, u8)> {
    // SAFETY: recvfrom into our buffer with a zeroed sockaddr_ll of the right size.
    unsafe {
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let n = libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            (&raw mut addr).cast(),
            &mut len,
        );
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok((n as usize, addr.sll_pkttype))
        }
    }
}

/// The flow a raw IP packet opens, if it may open one: any UDP datagram, or
/// a TCP SYN (a connection attempt).
pub fn flow(packet: &[u8]) -> Option<(Transport, SocketAddr, SocketAddr)> {
    let version = packet.first()? >> 4;
    let (proto, src, dst, payload) = match version {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            (
                *packet.get(9)?,
                IpAddr::V4(Ipv4Addr::from(src)),
                IpAddr::V4(Ipv4Addr::from(dst)),
                packet.get(ihl..)?,
            )
        }
        6 => {
            let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            (
                *packet.get(6)?,
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                packet.get(40..)?,
            )
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes(payload.get(0..2)?.try_into().ok()?);
    let dport = u16::from_be_bytes(payload.get(2..4)?.try_into().ok()?);
    let from = SocketAddr::new(src, sport);
    let to = SocketAddr::new(dst, dport);
    match proto {
        17 => Some((Transport::Udp, from, to)),
        6 => {
            let flags = *payload.get(13)?;
            let syn_only = flags & 0x12 == 0x02;
            syn_only.then_some((Transport::Tcp, from, to))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, sport: u16, dport: u16, tcp_flags: u8) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0; 9]);
        p.push(tcp_flags);
        p.extend_from_slice(&[0; 6]);
        p
    }

    #[test]
    fn datagrams_and_connection_attempts_open_flows() {
        let (t, from, to) = flow(&ipv4(17, 40000, 12002, 0)).unwrap();
        assert_eq!(t, Transport::Udp);
        assert_eq!(from.port(), 40000);
        assert_eq!(to.to_string(), "127.0.0.1:12002");
        assert_eq!(
            flow(&ipv4(6, 40000, 12000, 0x02)).unwrap().0,
            Transport::Tcp
        );
        // SYN-ACK, ACK: not a new connection.
        assert_eq!(flow(&ipv4(6, 12000, 40000, 0x12)), None);
        assert_eq!(flow(&ipv4(6, 12000, 40000, 0x10)), None);
    }

    #[test]
    fn garbage_is_ignored() {
        assert_eq!(flow(&[]), None);
        assert_eq!(flow(&[0x45, 0, 0]), None);
        assert_eq!(flow(&[0x99; 60]), None);
    }
}
