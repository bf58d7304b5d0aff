//! The UDP heartbeat labs (the UDP Pinger lab's optional exercise 2): the
//! student's heartbeat client against netgrade's echo server ([`client`]),
//! and the student's heartbeat server against netgrade's heartbeats
//! ([`server`]).

mod client;
mod server;

pub use client::{hung_on_loss, no_hang_on_loss, sends_heartbeats};
pub use server::{detects_stop, keeps_running, one_way_delay, reports_lost};
