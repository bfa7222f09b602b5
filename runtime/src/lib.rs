//! Stockade: a hardened OCI runtime.
//!
//! Data flows spec + profile -> check (pure) -> hardening plan (pure data) -> apply
//! (thin, privileged) -> exec. See ARCHITECTURE.md.

pub mod landlock_plan;
pub mod profile;
