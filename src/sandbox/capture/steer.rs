//! Steering with BPF `sk_lookup` (Linux 5.9+): whatever address and port a
//! program sends to inside the run's namespace, the kernel hands the
//! connection or datagram to one of netgrade's sockets.
//!
//! A small program, attached to the namespace, runs when the kernel looks
//! for the socket that should receive a new TCP connection or a UDP datagram.
//! It reads a socket map keyed by `protocol << 16 | port`:
//!
//! 1. when the *source* port is one of netgrade's (a server answering the
//!    program), it steps aside, so replies reach the program's own sockets;
//! 2. else the socket registered for the destination port, if any;
//! 3. else the protocol's default socket (key `protocol << 16`), if any;
//! 4. else the kernel's normal lookup (nothing listens: refused).
//!
//! Because nothing is rewritten, a connection keeps the address the program
//! used (`smtp.gmail.com`'s address, port 587) on both ends: servers see it
//! as their local address, and the namespace's traffic watcher sees it too.
//!
//! The program is written as raw BPF instructions (about 40), so netgrade
//! needs no BPF toolchain; the kernel's verifier checks it at load time.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::trace::Transport;

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_PROG_LOAD: i32 = 5;
const BPF_LINK_CREATE: i32 = 28;
const BPF_MAP_TYPE_SOCKHASH: u32 = 18;
const BPF_PROG_TYPE_SK_LOOKUP: u32 = 30;
const BPF_SK_LOOKUP: u32 = 36;
/// The ports the namespace hands out to sockets that bind none (its
/// `ip_local_port_range`): the IANA dynamic range. Traffic to them is never
/// sent to a default socket: it is a reply to one of the program's sockets.
pub const EPHEMERAL_PORTS: (u16, u16) = (49152, 65535);
/// Sockets one run can register (servers, well-known ports, defaults).
const MAX_ENTRIES: u32 = 64;
/// Bytes of `union bpf_attr` passed to the kernel (zeroed beyond what is set).
const ATTR_SIZE: usize = 128;

/// Which connections or datagrams a socket receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Those sent to this port, at any address.
    Port(Transport, u16),
    /// Those sent to a port no other entry names (the lab allows redirects).
    Default(Transport),
}

impl Route {
    /// The map key: IP protocol number in the high half, port (0: default) in the low.
    pub fn key(self) -> u32 {
        let proto = |t: Transport| match t {
            Transport::Tcp => libc::IPPROTO_TCP as u32,
            Transport::Udp => libc::IPPROTO_UDP as u32,
        };
        match self {
            Route::Port(t, port) => proto(t) << 16 | u32::from(port),
            Route::Default(t) => proto(t) << 16,
        }
    }
}

/// The steering program attached to one namespace; detached when dropped.
#[derive(Debug)]
pub struct Steering {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
}

impl Steering {
    /// Loads the program and attaches it to the namespace `netns_fd`.
    pub fn attach(netns_fd: RawFd) -> io::Result<Steering> {
        let map = map_create()?;
        let prog = prog_load(map.as_raw_fd())?;
        let link = link_create(prog.as_raw_fd(), netns_fd)?;
        Ok(Steering {
            map,
            _prog: prog,
            _link: link,
        })
    }

    /// Sends what `route` matches to `socket` (a bound UDP socket or a
    /// listening TCP socket in the namespace).
    pub fn insert(&self, route: Route, socket: BorrowedFd) -> io::Result<()> {
        let key = route.key();
        let value = socket.as_raw_fd() as u64;
        let mut attr = [0u8; ATTR_SIZE];
        put32(&mut attr, 0, self.map.as_raw_fd() as u32);
        put64(&mut attr, 8, (&raw const key) as u64);
        put64(&mut attr, 16, (&raw const value) as u64);
        put64(&mut attr, 24, 0); // BPF_ANY
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }
}

fn put32(attr: &mut [u8], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(attr: &mut [u8], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// The bpf(2) system call; returns the new descriptor, if the command makes one.
fn bpf(cmd: i32, attr: &mut [u8; ATTR_SIZE]) -> io::Result<i64> {
    // SAFETY: `attr` is a zero-padded `union bpf_attr` of ATTR_SIZE bytes; every
    // pointer in it points to memory that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), ATTR_SIZE) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn map_create() -> io::Result<OwnedFd> {
    let mut attr = [0u8; ATTR_SIZE];
    put32(&mut attr, 0, BPF_MAP_TYPE_SOCKHASH);
    put32(&mut attr, 4, 4); // key: u32
    put32(&mut attr, 8, 8); // value: socket descriptor as u64
    put32(&mut attr, 12, MAX_ENTRIES);
    bpf(BPF_MAP_CREATE, &mut attr).map(owned)
}

fn link_create(prog: RawFd, netns: RawFd) -> io::Result<OwnedFd> {
    let mut attr = [0u8; ATTR_SIZE];
    put32(&mut attr, 0, prog as u32);
    put32(&mut attr, 4, netns as u32);
    put32(&mut attr, 8, BPF_SK_LOOKUP);
    bpf(BPF_LINK_CREATE, &mut attr).map(owned)
}

/// Loads the program; on refusal, loads it again to get the verifier's log.
fn prog_load(map: RawFd) -> io::Result<OwnedFd> {
    let insns = program(map);
    load(&insns, None).or_else(|e| {
        let mut log = vec![0u8; 64 * 1024];
        match load(&insns, Some(&mut log)) {
            Ok(fd) => Ok(fd),
            Err(_) => {
                let text = String::from_utf8_lossy(&log);
                let text = text.trim_end_matches('\0').trim();
                let tail: String = text.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
                Err(io::Error::new(e.kind(), format!("{e} (verifier: {tail})")))
            }
        }
    })
}

fn load(insns: &[Insn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let name = b"netgrade_steer\0\0";
    let mut attr = [0u8; ATTR_SIZE];
    put32(&mut attr, 0, BPF_PROG_TYPE_SK_LOOKUP);
    put32(&mut attr, 4, insns.len() as u32);
    put64(&mut attr, 8, insns.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    if let Some(log) = log {
        put32(&mut attr, 24, 1);
        put32(&mut attr, 28, log.len() as u32);
        put64(&mut attr, 32, log.as_mut_ptr() as u64);
    }
    attr[48..64].copy_from_slice(name);
    put32(&mut attr, 68, BPF_SK_LOOKUP); // expected_attach_type
    bpf(BPF_PROG_LOAD, &mut attr).map(owned)
}

/// One BPF instruction, as the kernel reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (see the kernel's Documentation/bpf/standardization/instruction-set.rst).
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const LDX_H: u8 = 0x69; // dst = *(u16 *)(src + off)
const STX_W: u8 = 0x63; // *(u32 *)(dst + off) = src
const MOV_X: u8 = 0xbf; // dst = src
const MOV_K: u8 = 0xb7; // dst = imm
const LSH_K: u8 = 0x67; // dst <<= imm
const OR_X: u8 = 0x4f; // dst |= src
const ADD_K: u8 = 0x07; // dst += imm
const BE: u8 = 0xdc; // dst = to-big-endian(dst), imm bits (a swap on little-endian)
const LD_DW: u8 = 0x18; // dst = imm64 (two slots; src 1: a map descriptor)
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JA: u8 = 0x05; // goto +off
const JGE_K: u8 = 0x35; // if dst >= imm goto +off (unsigned)

// struct bpf_sk_lookup offsets.
const CTX_PROTOCOL: i16 = 12;
const CTX_REMOTE_PORT: i16 = 36; // __be16
const CTX_LOCAL_PORT: i16 = 60; // u32, host order

// Helpers.
const MAP_LOOKUP_ELEM: i32 = 1;
const SK_RELEASE: i32 = 86;
const SK_ASSIGN: i32 = 124;
const SK_PASS: i32 = 1;

/// The steering program for the socket map `map` (see the module docs).
/// r6 = context, r7 = protocol << 16, r8 = the socket found.
fn program(map: RawFd) -> Vec<Insn> {
    let mut p = vec![
        insn(MOV_X, 6, 1, 0, 0),
        insn(LDX_W, 7, 6, CTX_PROTOCOL, 0),
        insn(LSH_K, 7, 0, 0, 16),
        // 1. The source port is netgrade's: a server answering. Step aside.
        insn(LDX_H, 2, 6, CTX_REMOTE_PORT, 0),
        insn(BE, 2, 0, 0, 16),
        insn(OR_X, 2, 7, 0, 0),
    ];
    lookup(&mut p, map);
    let if_not_ours = jump_placeholder(&mut p, JEQ_K);
    p.extend([
        insn(MOV_X, 1, 0, 0, 0),
        insn(CALL, 0, 0, 0, SK_RELEASE),
        insn(MOV_K, 0, 0, 0, SK_PASS),
        insn(EXIT, 0, 0, 0, 0),
    ]);
    land(&mut p, if_not_ours);
    // 2. The destination port's socket.
    p.extend([insn(LDX_W, 2, 6, CTX_LOCAL_PORT, 0), insn(OR_X, 2, 7, 0, 0)]);
    lookup(&mut p, map);
    let if_no_port = jump_placeholder(&mut p, JEQ_K);
    let to_assign = jump_placeholder(&mut p, JA);
    land(&mut p, if_no_port);
    // 3. The protocol's default socket, for ports below the namespace's
    //    ephemeral range (above it live the program's own sockets, which
    //    replies from netgrade's servers must reach).
    p.push(insn(LDX_W, 2, 6, CTX_LOCAL_PORT, 0));
    let if_ephemeral = jump_placeholder(&mut p, JGE_K);
    p[if_ephemeral].regs = 2;
    p[if_ephemeral].imm = i32::from(EPHEMERAL_PORTS.0);
    p.push(insn(MOV_X, 2, 7, 0, 0));
    lookup(&mut p, map);
    let if_none = jump_placeholder(&mut p, JEQ_K);
    land(&mut p, to_assign);
    p.extend([
        insn(MOV_X, 8, 0, 0, 0),
        insn(MOV_X, 1, 6, 0, 0),
        insn(MOV_X, 2, 8, 0, 0),
        insn(MOV_K, 3, 0, 0, 0),
        // An IPv6 lookup cannot take an IPv4 socket: the kernel says so and
        // the normal lookup goes on (the connection is refused).
        insn(CALL, 0, 0, 0, SK_ASSIGN),
        insn(MOV_X, 1, 8, 0, 0),
        insn(CALL, 0, 0, 0, SK_RELEASE),
    ]);
    // 4. Pass: the kernel uses the assigned socket, or its normal lookup.
    land(&mut p, if_none);
    land(&mut p, if_ephemeral);
    p.extend([insn(MOV_K, 0, 0, 0, SK_PASS), insn(EXIT, 0, 0, 0, 0)]);
    p
}

/// r0 = map[r2] (the key in r2 is stored on the stack first).
fn lookup(p: &mut Vec<Insn>, map: RawFd) {
    p.extend([
        insn(STX_W, 10, 2, -4, 0),
        insn(LD_DW, 1, 1, 0, map),
        insn(0, 0, 0, 0, 0),
        insn(MOV_X, 2, 10, 0, 0),
        insn(ADD_K, 2, 0, 0, -4),
        insn(CALL, 0, 0, 0, MAP_LOOKUP_ELEM),
    ]);
}

/// A jump (on r0 == 0 for JEQ) whose target is set later by [`land`].
fn jump_placeholder(p: &mut Vec<Insn>, code: u8) -> usize {
    p.push(insn(code, 0, 0, 0, 0));
    p.len() - 1
}

/// Points the jump at `from` to the next instruction.
fn land(p: &mut [Insn], from: usize) {
    let here = p.len();
    p[from].off = (here - from - 1) as i16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_put_the_protocol_above_the_port() {
        assert_eq!(Route::Port(Transport::Udp, 12000).key(), 17 << 16 | 12000);
        assert_eq!(Route::Default(Transport::Tcp).key(), 6 << 16);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = program(3);
        for (i, ins) in p.iter().enumerate() {
            if matches!(ins.code, JEQ_K | JA) {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(
                    target > i as i64 && (target as usize) < p.len(),
                    "{i}: {ins:?}"
                );
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
