//! Placeholder until the seccomp translator lands (branch `seccomp`).
use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp: not supported yet")]
    Unsupported,
}

#[derive(Debug, Clone)]
pub struct CompiledFilter;

impl CompiledFilter {
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        true
    }
}

pub fn compile(_s: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    Err(SeccompError::Unsupported)
}

pub fn load(_f: &CompiledFilter) -> Result<(), SeccompError> {
    Err(SeccompError::Unsupported)
}

pub const SUPPORTED_ACTIONS: &[&str] = &[];
pub const SUPPORTED_ARCHES: &[&str] = &[];
pub const SUPPORTED_FLAGS: &[&str] = &[];
