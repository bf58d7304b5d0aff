//! Private network namespaces: one per run, with only loopback, up.
//!
//! A namespace lets every run bind the handout's fixed port (12000) at once,
//! keeps student traffic off the host, and lets netgrade find every process
//! of a run afterwards (they all live in the namespace). Creating one needs
//! CAP_SYS_ADMIN (root); without it netgrade falls back to the host network.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sched::{CloneFlags, setns, unshare};

/// A network namespace, alive as long as this handle or a process in it is.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    inode: u64,
}

impl NetNs {
    /// Creates a namespace with loopback up. Fails without CAP_SYS_ADMIN.
    pub fn new() -> std::io::Result<NetNs> {
        // Namespaces belong to threads: make it on a short-lived thread so the
        // calling (tokio) thread stays in the host namespace.
        std::thread::spawn(|| -> std::io::Result<NetNs> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            loopback_up()?;
            no_time_wait();
            let file = File::open("/proc/thread-self/ns/net")?;
            let inode = std::os::unix::fs::MetadataExt::ino(&file.metadata()?);
            Ok(NetNs { file, inode })
        })
        .join()
        .map_err(|_| std::io::Error::other("namespace thread panicked"))?
    }

    /// Runs `f` on a thread inside the namespace (sockets it creates stay there).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<T> {
        let fd = self.file.try_clone()?;
        std::thread::spawn(move || -> std::io::Result<T> {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)?;
            Ok(f())
        })
        .join()
        .map_err(|_| std::io::Error::other("namespace thread panicked"))?
    }

    /// Another handle on the same namespace.
    pub fn try_clone(&self) -> std::io::Result<NetNs> {
        Ok(NetNs {
            file: self.file.try_clone()?,
            inode: self.inode,
        })
    }

    /// Raw descriptor, for `setns` in a child between fork and exec.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// A command for `program` that runs inside this namespace (it enters
    /// it between fork and exec), killed when dropped: a peer of the lab's
    /// servers in tests (dig, unbound, dnspython).
    pub fn command(&self, program: &str) -> tokio::process::Command {
        let fd = self.raw_fd();
        let mut cmd = tokio::process::Command::new(program);
        cmd.kill_on_drop(true);
        // SAFETY: only setns, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// PIDs of every process whose network namespace is this one.
    pub fn processes(&self) -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let me = std::process::id() as i32;
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .map(|m| std::os::unix::fs::MetadataExt::ino(&m) == self.inode)
                    .unwrap_or(false)
            })
            .collect()
    }
}

/// Sets the loopback interface of the current thread's namespace up.
/// No connection of the namespace waits in TIME_WAIT: a student's server
/// without `SO_REUSEADDR` that netgrade restarts binds its port again at
/// once, whoever closed first (on a private loopback, TIME_WAIT guards
/// against nothing). `/proc/sys/net` is the calling thread's namespace's.
fn no_time_wait() {
    let _ = std::fs::write("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0");
}

fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain ioctls on a socket we own, with a zeroed ifreq naming "lo".
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let result = if libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(sock);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_namespaces_bind_the_same_port() {
        let (Ok(a), Ok(b)) = (NetNs::new(), NetNs::new()) else {
            eprintln!("skipped: no permission to create network namespaces");
            return;
        };
        let sa = a
            .run(|| std::net::UdpSocket::bind("127.0.0.1:12000"))
            .unwrap()
            .unwrap();
        let sb = b
            .run(|| std::net::UdpSocket::bind("127.0.0.1:12000"))
            .unwrap()
            .unwrap();
        // Loopback works inside: a datagram to ourselves arrives.
        sa.send_to(b"hi", "127.0.0.1:12000").unwrap();
        let mut buf = [0u8; 8];
        sa.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert_eq!(sa.recv(&mut buf).unwrap(), 2);
        drop(sb);
        assert_ne!(a.inode, b.inode);
    }
}
