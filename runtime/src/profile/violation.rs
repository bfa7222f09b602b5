//! What a rule reports: one typed violation per offending spec field.

use serde::Serialize;

use super::schema::Mode;

/// One way in which a spec breaks a profile rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable rule id, `section.check` (e.g. `capabilities.allowed`).
    pub rule: &'static str,
    /// Where in config.json (e.g. `process.capabilities.bounding`).
    pub path: String,
    /// The value found (`<unset>` when absent).
    pub actual: String,
    /// What the profile allows.
    pub allowed: String,
    /// The Kubernetes field the workload owner changes to comply.
    pub k8s_field: &'static str,
    /// The profile's reason for the rule.
    pub reason: String,
    /// Mode in effect for this rule.
    pub mode: Mode,
}

/// What a rule needs to describe a violation besides the spec values.
#[derive(Debug, Clone, Copy)]
pub struct RuleMeta<'a> {
    pub reason: &'a str,
    pub mode: Mode,
}

impl RuleMeta<'_> {
    /// Build a violation of `rule` at `path`.
    pub fn violation(
        &self,
        rule: &'static str,
        path: impl Into<String>,
        actual: impl Into<String>,
        allowed: impl Into<String>,
        k8s_field: &'static str,
    ) -> Violation {
        Violation {
            rule,
            path: path.into(),
            actual: actual.into(),
            allowed: allowed.into(),
            k8s_field,
            reason: self.reason.to_owned(),
            mode: self.mode,
        }
    }
}

/// Rendering used for absent values.
pub const UNSET: &str = "<unset>";

/// One change the hardening step made to the spec (or asks the runtime to make).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Injection {
    /// Rule that caused the change.
    pub rule: &'static str,
    /// Where in config.json.
    pub path: String,
    /// What was set, added or removed, in words.
    pub change: String,
}

impl Injection {
    pub fn new(rule: &'static str, path: impl Into<String>, change: impl Into<String>) -> Self {
        Injection {
            rule,
            path: path.into(),
            change: change.into(),
        }
    }
}
