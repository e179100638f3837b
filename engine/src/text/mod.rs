//! Text key=value pairs (RFC 7143 §6.1) and their negotiation (§6.2, §13).
//!
//! - [`codec`]: the NUL-separated `key=value` format, bounded.
//! - [`keys`]: every key of §13 with its kind (list, numerical min/max,
//!   Boolean AND/OR, declarative), range, default, scope and phase.
//! - [`negotiation`]: the offer → answer rules, including NotUnderstood,
//!   Irrelevant and Reject, for both roles.
//! - [`params`]: the negotiated values a session and a connection run with.
//! - [`discovery`]: SendTargets answers and the TargetAddress format.

pub mod codec;
pub mod discovery;
pub mod keys;
pub mod negotiation;
pub mod params;

pub use codec::{TextError, decode_pairs, encode_pairs};
pub use discovery::{SendTargetsRequest, TargetAddress, TargetRecord};
pub use negotiation::{NegotiationError, Negotiator, Phase, Preferences, Role};
pub use params::{ConnectionParams, SessionParams, SessionType, TaskReporting};
