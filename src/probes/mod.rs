//! Probes: netgrade acting as a client against the student's server.
//!
//! A probe opens a connection (or, for [`dns`] over UDP, a socket), sends
//! exactly the bytes the lab spec gives, reads what comes back under
//! deadlines, and records the whole exchange as one event in the run's
//! [`Trace`](crate::trace::Trace). Checks judge the recorded bytes later,
//! with the HTTP parser that lives beside its probe ([`http`]) and the DNS
//! reader both layers share ([`crate::dns_wire`]).

pub mod dns;
pub mod heartbeat;
pub mod http;
pub mod tracker;

use std::net::SocketAddr;
use std::time::Duration;

use crate::sandbox::NetNs;

/// Opens a TCP connection to `addr` from inside `netns` (the run's network,
/// where the student's server lives), or from the host network.
pub async fn connect(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    timeout: Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let Some(ns) = netns else {
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        };
    };
    // A socket belongs to the namespace it is created in: connect on a thread
    // inside it (loopback answers at once), then hand the stream to tokio.
    let ns = ns.try_clone()?;
    let stream = tokio::task::spawn_blocking(move || {
        ns.run(move || std::net::TcpStream::connect_timeout(&addr, timeout))
    })
    .await
    .map_err(std::io::Error::other)???;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}
