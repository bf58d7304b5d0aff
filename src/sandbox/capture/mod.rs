//! Capture of hard-coded destinations (placeholder, filled below).
pub mod netlink;
pub mod steer;
