//! The login phase (RFC 7143 §6.3, §11.12-§11.13, §12): security
//! negotiation with CHAP (RFC 1994, §12.1.3) or none, operational
//! negotiation, stage transitions (CSG/NSG/T/C), ISID and TSIH rules.
//!
//! [`target::TargetLogin`] and [`initiator::InitiatorLogin`] are pure state
//! machines fed one Login PDU at a time; the endpoint that owns them stamps
//! sequence numbers and decides session membership.

pub mod chap;
pub mod initiator;
pub mod status;
pub mod target;
