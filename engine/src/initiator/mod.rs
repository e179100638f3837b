//! The initiator session (sans-IO).
