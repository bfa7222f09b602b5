//! User namespaces for containers: host id ranges allocated from the node's pool
//! ([`alloc`]), the spec's mappings for a range ([`mapping`], pure), and idmapped
//! mounts that make an image owned by host root look root-owned inside the range
//! ([`idmap`]).
//!
//! Order in `create`: allocate (under the database lock) -> inject mappings into the
//! spec -> idmap the rootfs onto a target under the state root -> libcontainer. On
//! failure and in `delete`: remove the idmapped target, then release the range.

pub mod alloc;
mod error;
pub mod idmap;
pub mod mapping;
pub mod overlay;
pub mod setup;
pub mod stdio;

pub use alloc::{HostRange, RangeAllocator, DEFAULT_DB, SANDBOX_ANNOTATION};
pub use error::UsernsError;
pub use idmap::IdmapUserns;
pub use mapping::{explicit_in_pool, inject, mappings_for, Injection};
