//! Watches a run's loopback for traffic that misses the reference servers.
//!
//! Inside a run's network namespace nothing but the student's program and
//! netgrade's servers talks, so every UDP datagram to a port no server uses,
//! and every TCP connection attempt, is the program's mistake: a hard-coded
//! port from another handout (10000, 12002), or a TCP socket for a UDP lab.
//! The sniffer records them as [`EventKind::Stray`] so checks can say so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::sandbox::NetNs;
use crate::trace::{EventKind, Recorder, Transport};

/// Stray packets recorded per run; the rest are counted only by their absence.
const MAX_STRAYS: usize = 100;

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

/// Records stray packets until `stop` fires, then reads what the kernel
/// already queued (so a packet sent just before the program exited is never
/// lost to scheduling) and returns. `udp_ports` and `tcp_ports` are the ports
/// of the run's servers (their traffic is not stray).
pub async fn run(
    fd: AsyncFd<OwnedFd>,
    udp_ports: Vec<u16>,
    tcp_ports: Vec<u16>,
    recorder: Recorder,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut recorded = 0usize;
    let mut keep = |packet: Option<(usize, u8)>, buf: &[u8]| {
        let Some((n, pkttype)) = packet else { return };
        // Loopback shows each packet twice: leaving and arriving. Keep one.
        if pkttype == libc::PACKET_OUTGOING || recorded >= MAX_STRAYS {
            return;
        }
        if let Some((transport, from, to)) = classify(&buf[..n], &udp_ports, &tcp_ports) {
            recorder.record(EventKind::Stray {
                transport,
                from,
                to,
            });
            recorded += 1;
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

/// The stray flow a raw IP packet belongs to, if it is one.
pub fn classify(
    packet: &[u8],
    udp_ports: &[u16],
    tcp_ports: &[u16],
) -> Option<(Transport, SocketAddr, SocketAddr)> {
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
    let flow = (SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
    match proto {
        17 if !udp_ports.contains(&dport) && !udp_ports.contains(&sport) => {
            Some((Transport::Udp, flow.0, flow.1))
        }
        6 if !tcp_ports.contains(&dport) => {
            let flags = *payload.get(13)?;
            let syn_only = flags & 0x12 == 0x02;
            syn_only.then_some((Transport::Tcp, flow.0, flow.1))
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
    fn udp_to_another_port_is_stray_server_traffic_is_not() {
        let (t, from, to) = classify(&ipv4(17, 40000, 12002, 0), &[12000], &[]).unwrap();
        assert_eq!(t, Transport::Udp);
        assert_eq!(from.port(), 40000);
        assert_eq!(to.to_string(), "127.0.0.1:12002");
        assert_eq!(classify(&ipv4(17, 40000, 12000, 0), &[12000], &[]), None);
        assert_eq!(classify(&ipv4(17, 12000, 40000, 0), &[12000], &[]), None);
    }

    #[test]
    fn only_tcp_connection_attempts_count() {
        assert_eq!(
            classify(&ipv4(6, 40000, 12000, 0x02), &[12000], &[])
                .unwrap()
                .0,
            Transport::Tcp
        );
        assert_eq!(classify(&ipv4(6, 12000, 40000, 0x12), &[12000], &[]), None);
        assert_eq!(classify(&ipv4(6, 12000, 40000, 0x14), &[12000], &[]), None);
        assert_eq!(classify(&ipv4(6, 40000, 6789, 0x02), &[], &[6789]), None);
    }

    #[test]
    fn garbage_is_ignored() {
        assert_eq!(classify(&[], &[], &[]), None);
        assert_eq!(classify(&[0x45, 0, 0], &[], &[]), None);
        assert_eq!(classify(&[0x99; 60], &[], &[]), None);
    }
}
