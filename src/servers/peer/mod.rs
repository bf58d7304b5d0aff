//! Reference BitTorrent peers: the peer wire protocol and a seeder with
//! seeded behaviours.

pub mod wire;
