//! The target endpoint (sans-IO).
