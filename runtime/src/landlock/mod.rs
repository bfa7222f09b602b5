//! Landlock, in the same two phases as `seccomp/`: `plan` is the pure data the
//! hardening step builds and resolves against the host's ABI (exact access masks),
//! `apply` is the init's thin, privileged side that hands those masks to the kernel.

pub mod apply;
pub mod plan;
