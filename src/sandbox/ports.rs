//! Which ports a student's server listens on, read from /proc.
//!
//! Students pick their own port (6789, 80, 8080, 8888, 12000, 2053 …).
//! netgrade collects the socket inodes held by the program's processes
//! (`/proc/PID/fd/* → socket:[INODE]`) and finds those inodes among the
//! sockets of the program's network namespace: listening TCP sockets
//! (`/proc/PID/net/tcp` and `tcp6`, state `0A`), and UDP sockets bound to
//! a port and not connected to a peer (`udp`, `udp6`, state `07`), where a
//! UDP server (a DNS server) waits for datagrams.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Listening TCP addresses held by `pids`, as seen from `pids[0]`'s namespace.
pub fn listening(pids: &[i32]) -> Vec<SocketAddr> {
    held(pids, &["tcp", "tcp6"], LISTEN)
}

/// UDP addresses `pids` hold bound and unconnected (where a UDP server
/// receives), as seen from `pids[0]`'s namespace.
pub fn bound_udp(pids: &[i32]) -> Vec<SocketAddr> {
    held(pids, &["udp", "udp6"], UNCONNECTED)
}

/// The state of a listening TCP socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";
/// The state of an unconnected UDP socket in `/proc/net/udp` (`TCP_CLOSE`).
const UNCONNECTED: &str = "07";

/// The addresses in `tables` whose sockets `pids` hold, in `state`.
fn held(pids: &[i32], tables: &[&str], state: &str) -> Vec<SocketAddr> {
    let Some(first) = pids.first() else {
        return Vec::new();
    };
    let inodes: HashSet<u64> = pids.iter().flat_map(|pid| socket_inodes(*pid)).collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for table in tables {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{first}/net/{table}")) else {
            continue;
        };
        out.extend(
            parse_sockets(&text, state)
                .into_iter()
                // Port 0: a socket not bound yet (a client about to send).
                .filter(|(a, _)| a.port() != 0)
                .filter(|(_, inode)| inodes.contains(inode))
                .map(|(a, _)| a),
        );
    }
    out.sort();
    out.dedup();
    out
}

fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Listening sockets of a `/proc/net/tcp{,6}` table: (local address, inode).
pub fn parse_table(text: &str) -> Vec<(SocketAddr, u64)> {
    parse_sockets(text, LISTEN)
}

/// Sockets of a `/proc/net/{tcp,udp}{,6}` table in `state`: (local address, inode).
fn parse_sockets(text: &str, state: &str) -> Vec<(SocketAddr, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != state {
                return None;
            }
            let (ip, port) = f[1].split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = parse_ip(ip)?;
            Some((SocketAddr::new(ip, port), f[9].parse().ok()?))
        })
        .collect()
}

/// The kernel prints addresses as host-order 32-bit words in hex.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Where to connect to reach a server listening on `addr`.
pub fn connect_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_parsed() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1A85 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:2EE0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n   2: 0100007F:9C40 0100007F:1A85 01 00000000:00000000 00:00000000 00000000     0        0 778 1\n";
        let got = parse_table(text);
        assert_eq!(
            got,
            vec![
                ("0.0.0.0:6789".parse().unwrap(), 12345),
                ("127.0.0.1:12000".parse().unwrap(), 777)
            ]
        );
        let v6 = "h\n   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 99 1\n";
        assert_eq!(parse_table(v6), vec![("[::]:8080".parse().unwrap(), 99)]);
    }

    #[test]
    fn connect_addresses() {
        assert_eq!(
            connect_addr("0.0.0.0:6789".parse().unwrap()).to_string(),
            "127.0.0.1:6789"
        );
        assert_eq!(
            connect_addr("[::]:8080".parse().unwrap()).to_string(),
            "[::1]:8080"
        );
        assert_eq!(
            connect_addr("127.0.0.1:1".parse().unwrap()).to_string(),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn our_own_udp_server_socket_is_found_and_a_connected_one_is_not() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        let found = bound_udp(&[std::process::id() as i32]);
        assert!(found.contains(&addr), "{found:?}");
        assert!(!found.contains(&client.local_addr().unwrap()), "{found:?}");
        assert!(!listening(&[std::process::id() as i32]).contains(&addr));
    }

    #[test]
    fn udp_tables_are_parsed() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n 1: 0100007F:0805 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0\n 2: 0100007F:D431 0100007F:0805 01 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
        assert_eq!(
            parse_sockets(text, UNCONNECTED),
            vec![("127.0.0.1:2053".parse().unwrap(), 4242)]
        );
    }

    #[test]
    fn our_own_listener_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listening(&[std::process::id() as i32]);
        assert!(found.contains(&addr), "{found:?} lacks {addr}");
    }
}
