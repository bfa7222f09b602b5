//! Docker/OCI seccomp JSON importer.
