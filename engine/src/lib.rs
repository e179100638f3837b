//! iscsi-engine: an iSCSI target and initiator (RFC 7143) as sans-IO state
//! machines, a SCSI block device (SPC-5/SBC-4) over pluggable block stores,
//! and thin async drivers that run them on any network implementing
//! [`net::Network`] (real tokio sockets or turmoil's simulated ones).
//!
//! Layers, data flowing down:
//! - [`pdu`]: the wire format of RFC 7143 §11 (BHS, AHS, digests).
//! - [`text`]: key=value text and the negotiation rules of §6 and §13.
//! - [`login`]: the login phase (§6, §12 CHAP), for both roles.
//! - [`target`] / [`initiator`]: full-feature phase state machines.
//! - [`scsi`]: the logical unit executing CDBs against a [`store::BlockStore`].
//! - [`net`]: async drivers, generic over the network.
#![forbid(unsafe_code)]

pub mod initiator;
pub mod login;
pub mod net;
pub mod pdu;
pub mod planted;
pub mod scsi;
pub mod serial;
pub mod store;
pub mod target;
pub mod text;
