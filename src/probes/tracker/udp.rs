//! BEP 15 over UDP.
