//! Helpers shared by the conformance tests: our target binary as a child
//! process ([`target`]), a scripted iSCSI client ([`scripted`]), and the
//! policy for tests that need a real peer ([`peers`]). Each test binary
//! uses only some of them.
#![allow(dead_code)]

pub mod peers;
pub mod scripted;
pub mod target;
