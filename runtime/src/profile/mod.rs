//! Hardening profiles: a security team's rules, checked against every container spec
//! before any side effect. The pure core is
//! `spec × profile × host facts → Decision` ([`plan::evaluate`]): either the full list of
//! violations, or a hardened spec plus the plans (Landlock, user namespace) the runtime
//! applies. See `profiles/README.md` for the format and semantics.

pub mod diff;
pub mod explain;
pub mod gate;
pub mod host;
pub mod k8s;
pub mod lint;
pub mod load;
pub mod locate;
pub mod node_config;
pub mod node_paths;
pub mod plan;
pub mod rules;
pub mod schema;
pub mod seccomp_data;
pub mod seccomp_import;
pub mod show;
pub mod spec_gen;
pub mod violation;

pub use host::{CgroupVersion, HostFacts, NsInodeLookup, StatNsLookup};
pub use load::{load_profile, LoadError};
pub use plan::{evaluate, AuditRecord, Decision, Hardened, Refusal};
pub use rules::user_namespace::UsernsRequest;
pub use schema::{Mode, Profile};
pub use violation::{Injection, Violation};

#[cfg(test)]
mod tests;
