use super::bencode::{Value, decode};
use super::*;
