//! Just enough rtnetlink to make every address local in a run's namespace:
//! a `local` route for 0.0.0.0/0 and ::/0 on loopback, and an address for
//! the capture's resolver. Must be called on a thread inside the namespace.

use std::io;
use std::net::IpAddr;

const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const RT_TABLE_LOCAL: u8 = 255;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_HOST: u8 = 254;
const RTN_LOCAL: u8 = 2;
const RTA_OIF: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// A netlink route socket in the calling thread's namespace.
struct Route(std::os::fd::OwnedFd);

impl Route {
    fn open() -> io::Result<Route> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Route(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends one request and waits for the kernel's acknowledgement.
    fn request(&self, kind: u16, body: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let len = 16 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        msg.extend_from_slice(body);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel.
        let sent = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.0.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; 1024];
        // SAFETY: recv into our buffer.
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                reply.as_mut_ptr().cast(),
                reply.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        ack(&reply[..n as usize])
    }
}

/// The error code of a netlink acknowledgement (0 is success).
fn ack(reply: &[u8]) -> io::Result<()> {
    let kind = reply
        .get(4..6)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .ok_or_else(|| io::Error::other("short netlink reply"))?;
    if kind != NLMSG_ERROR {
        return Err(io::Error::other(format!(
            "unexpected netlink reply type {kind}"
        )));
    }
    let code = reply
        .get(16..20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| io::Error::other("short netlink acknowledgement"))?;
    match code {
        0 => Ok(()),
        // Already there (a second call on the same namespace) is fine.
        c if -c == libc::EEXIST => Ok(()),
        c => Err(io::Error::from_raw_os_error(-c)),
    }
}

/// Appends a route attribute (type, value), padded to 4 bytes.
fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn loopback_index() -> io::Result<u32> {
    // SAFETY: a NUL-terminated literal.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// Makes every destination of `family` (`AF_INET` or `AF_INET6`) local:
/// `ip route add local 0.0.0.0/0 dev lo table local` (or `::/0`).
pub fn route_everything_local(family: i32) -> io::Result<()> {
    let lo = loopback_index()?;
    let mut body = vec![
        family as u8,
        0, // dst_len: the whole address space
        0,
        0,
        RT_TABLE_LOCAL,
        RTPROT_STATIC,
        RT_SCOPE_HOST,
        RTN_LOCAL,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
    attr(&mut body, RTA_OIF, &lo.to_ne_bytes());
    Route::open()?.request(RTM_NEWROUTE, &body)
}

/// Adds `addr/prefix` to loopback (`ip addr add ADDR/PREFIX dev lo`).
pub fn add_loopback_address(addr: IpAddr, prefix: u8) -> io::Result<()> {
    let lo = loopback_index()?;
    let (family, bytes) = match addr {
        IpAddr::V4(a) => (libc::AF_INET, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6, a.octets().to_vec()),
    };
    let mut body = vec![family as u8, prefix, 0, RT_SCOPE_HOST];
    body.extend_from_slice(&lo.to_ne_bytes());
    attr(&mut body, IFA_LOCAL, &bytes);
    attr(&mut body, IFA_ADDRESS, &bytes);
    Route::open()?.request(RTM_NEWADDR, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_read() {
        let mut ok = vec![0u8; 36];
        ok[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(ack(&ok).is_ok());
        ok[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            ack(&ok).unwrap_err().raw_os_error(),
            Some(libc::EPERM),
            "a refusal is the kernel's error"
        );
        ok[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert!(ack(&ok).is_ok());
        assert!(ack(&[1, 2]).is_err());
    }

    #[test]
    fn attributes_are_padded() {
        let mut out = Vec::new();
        attr(&mut out, RTA_OIF, &[1, 0, 0, 0]);
        assert_eq!(out, [8, 0, 4, 0, 1, 0, 0, 0]);
        let mut out = Vec::new();
        attr(&mut out, 9, &[7]);
        assert_eq!(out.len(), 8);
    }
}
