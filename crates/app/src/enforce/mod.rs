//! Enforcement beyond the pipeline file (issue 13): the environment asks the gate, not the job.
//!
//! - [`admission`]: Kubernetes validating admission (`POST /k8s/validate`), answered from the
//!   gate's in-memory index;
//! - [`github`]: GitHub's custom deployment protection rule (a GitHub App);
//! - [`observations`]: content observed running on servers deployed by hand, which opens an
//!   `unapproved_content` incident when no valid approval covers it.
//!
//! The settings come from the server's configuration ([`Enforcement`] in [`crate::App`]).
//! Errors are [`crate::AppError`]; `anyhow` is not used here.

pub mod admission;
pub mod github;
pub mod observations;

use changegate_domain::{Code, EnvName};
use std::collections::BTreeMap;

/// Where an object or a repository's environment belongs: a system and one of its environments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// System code.
    pub system: Code,
    /// Environment.
    pub env: EnvName,
}

/// What the admission webhook does with an object that names no system (no labels, no mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmapped {
    /// Refuse it (the default: fail closed).
    #[default]
    Deny,
    /// Let it through, with a warning.
    Allow,
}

/// Kubernetes admission settings.
#[derive(Debug, Clone, Default)]
pub struct K8sSettings {
    /// Namespace name → system and environment, for objects without `changegate.io/*` labels.
    pub namespaces: BTreeMap<String, Target>,
    /// What to do with an object that names no system.
    pub unmapped: Unmapped,
}

/// The enforcement points' settings and state, held by the app.
#[derive(Default)]
pub struct Enforcement {
    /// Kubernetes admission.
    pub k8s: K8sSettings,
    /// GitHub deployment protection rule (None: the webhook answers 404).
    pub github: Option<github::GithubSettings>,
    /// Woken when a GitHub deployment request arrives.
    pub wake: tokio::sync::Notify,
}
