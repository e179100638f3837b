//! The keys of RFC 7143 §13.
