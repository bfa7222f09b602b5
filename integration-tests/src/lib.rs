//! test support
pub mod containerd;
pub mod image;
