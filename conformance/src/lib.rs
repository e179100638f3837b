//! iscsi-conformance: the `iscsi-harness` command line, the suites that run
//! against real peers (tgtd, libiscsi, open-iscsi and LIO in a QEMU guest),
//! and the set-up of those peers.

pub mod initiator_cli;
pub mod interop;
pub mod libiscsi;
pub mod peers;
pub mod report;
pub mod serve;
