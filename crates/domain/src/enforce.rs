//! Pure rules of enforcement beyond the pipeline file: reading the images of a Kubernetes object
//! (pods and pod templates), telling a pinned image from a tag, the reproducible digest of a
//! deployed directory, and which gate reasons say that content is not covered by an approval.
//!
//! No IO here: the command line walks the directory and hands the entries to
//! [`directory_digest`]; the app parses the AdmissionReview and hands its object to
//! [`read_workload`].

use crate::gate::{Decision, ReasonCode};
use crate::ids::ArtifactDigest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The label naming the system an object belongs to.
pub const LABEL_SYSTEM: &str = "changegate.io/system";
/// The label naming the environment an object belongs to.
pub const LABEL_ENV: &str = "changegate.io/env";

/// The most containers (of every list together) one object may carry; a larger object is denied.
pub const MAX_CONTAINERS: usize = 256;

/// The lists of containers of a pod spec, by their field name.
pub const CONTAINER_FIELDS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// One container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// `containers`, `initContainers` or `ephemeralContainers`.
    pub field: &'static str,
    /// The container's name (empty when missing).
    pub name: String,
    /// The image reference as written.
    pub image: String,
}

impl ContainerImage {
    /// The image's digest when it is pinned (`…@sha256:<64 hex>`, a tag before the `@` allowed).
    pub fn pinned(&self) -> Option<ArtifactDigest> {
        pinned_digest(&self.image)
    }
}

/// The digest an image reference is pinned to: it ends in `@sha256:` and 64 hex digits.
pub fn pinned_digest(image: &str) -> Option<ArtifactDigest> {
    let (_, digest) = image.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    ArtifactDigest::parse(digest).ok()
}

/// What an object says about itself: its images and its changegate labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// Every container image of every pod spec, in order.
    pub images: Vec<ContainerImage>,
    /// `changegate.io/system` from the object or its pod template.
    pub system: Option<String>,
    /// `changegate.io/env` from the object or its pod template.
    pub env: Option<String>,
    /// Whether a pod spec was found (an object without one runs nothing).
    pub has_pod_spec: bool,
}

/// Why an object cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The object is not a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
    /// More containers than [`MAX_CONTAINERS`].
    #[error("the object has {0} containers; at most {MAX_CONTAINERS} are judged")]
    TooManyContainers(usize),
    /// A container list or container of the wrong shape.
    #[error("{0}")]
    Malformed(String),
    /// The object and its pod template name different systems or environments.
    #[error("the labels of the object and of its pod template disagree on {0}")]
    ConflictingLabels(&'static str),
}

/// The pod spec of an object of `kind`: the object's own `spec` for a Pod, `spec.template.spec`
/// for Deployment, StatefulSet, DaemonSet, ReplicaSet and Job (and any kind shaped alike), and
/// `spec.jobTemplate.spec.template.spec` for CronJob. Also the pod template's metadata.
fn pod_spec<'a>(kind: &str, object: &'a Value) -> (Option<&'a Value>, Option<&'a Value>) {
    let spec = object.get("spec");
    match kind {
        "Pod" => (spec, None),
        "CronJob" => {
            let t = spec
                .and_then(|s| s.get("jobTemplate"))
                .and_then(|j| j.get("spec"))
                .and_then(|s| s.get("template"));
            (
                t.and_then(|t| t.get("spec")),
                t.and_then(|t| t.get("metadata")),
            )
        }
        _ => {
            let t = spec.and_then(|s| s.get("template"));
            (
                t.and_then(|t| t.get("spec")),
                t.and_then(|t| t.get("metadata")),
            )
        }
    }
}

fn label<'a>(metadata: Option<&'a Value>, key: &str) -> Result<Option<&'a str>, WorkloadError> {
    match metadata
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.get(key))
    {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(WorkloadError::Malformed(format!(
            "label {key} is not a string"
        ))),
    }
}

fn one_label(
    own: Option<&Value>,
    template: Option<&Value>,
    key: &'static str,
) -> Result<Option<String>, WorkloadError> {
    match (label(own, key)?, label(template, key)?) {
        (Some(a), Some(b)) if a != b => Err(WorkloadError::ConflictingLabels(key)),
        (Some(a), _) | (None, Some(a)) => Ok(Some(a.to_owned())),
        (None, None) => Ok(None),
    }
}

/// Reads an object of `kind` (a Pod or a workload with a pod template).
pub fn read_workload(kind: &str, object: &Value) -> Result<Workload, WorkloadError> {
    if !object.is_object() {
        return Err(WorkloadError::NotAnObject);
    }
    let (spec, template_meta) = pod_spec(kind, object);
    let own_meta = object.get("metadata");
    let mut w = Workload {
        system: one_label(own_meta, template_meta, LABEL_SYSTEM)?,
        env: one_label(own_meta, template_meta, LABEL_ENV)?,
        ..Workload::default()
    };
    let Some(spec) = spec.filter(|s| !s.is_null()) else {
        return Ok(w);
    };
    if !spec.is_object() {
        return Err(WorkloadError::Malformed(
            "the pod spec is not an object".into(),
        ));
    }
    w.has_pod_spec = true;
    let mut total = 0usize;
    for field in CONTAINER_FIELDS {
        match spec.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => total += list.len(),
            Some(_) => {
                return Err(WorkloadError::Malformed(format!("{field} is not a list")));
            }
        }
    }
    if total > MAX_CONTAINERS {
        return Err(WorkloadError::TooManyContainers(total));
    }
    for field in CONTAINER_FIELDS {
        let Some(Value::Array(list)) = spec.get(field) else {
            continue;
        };
        for (i, c) in list.iter().enumerate() {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let image = match c.get("image") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => {
                    return Err(WorkloadError::Malformed(format!(
                        "{field}[{i}] has no image"
                    )));
                }
            };
            w.images.push(ContainerImage { field, name, image });
        }
    }
    Ok(w)
}

/// Whether a gate decision says that the content itself is covered by a valid approval for the
/// environment, whatever else closes the gate for the whole system (an open incident, an overdue
/// re-review, a freeze window, a suspension): only reasons about the content count.
pub fn content_covered(d: &Decision) -> bool {
    d.allow
        || d.reasons.iter().all(|r| {
            matches!(
                r.code,
                ReasonCode::IncidentOpen
                    | ReasonCode::ReReviewOverdue
                    | ReasonCode::ConditionOverdue
                    | ReasonCode::FreezeWindow
                    | ReasonCode::SystemSuspended
                    | ReasonCode::SystemRetired
            )
        })
}

/// What a directory entry is, for [`directory_digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; executable when any execute bit is set.
    File {
        /// Any execute bit set.
        executable: bool,
    },
    /// A symbolic link (its content is the link's target, not followed).
    Symlink,
}

impl EntryKind {
    /// The mode written in the manifest, as git writes it.
    pub fn mode(self) -> &'static str {
        match self {
            EntryKind::File { executable: false } => "100644",
            EntryKind::File { executable: true } => "100755",
            EntryKind::Symlink => "120000",
        }
    }
}

/// One entry of a deployed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Path relative to the directory, components separated by `/`, no `.` or `..`.
    pub path: String,
    /// File or symlink.
    pub kind: EntryKind,
    /// SHA-256 of the file's content (of the link's target text for a symlink).
    pub sha256: [u8; 32],
}

/// The digest of a deployed directory, reproducible on any machine:
///
/// 1. every regular file and symbolic link under the directory (directories themselves, empty
///    ones included, are not entries; symbolic links are not followed);
/// 2. one manifest line per entry: `<mode> <sha256 hex of the content> <relative path>\n`, the
///    mode `100644` (file), `100755` (file with any execute bit) or `120000` (symlink, whose
///    content is its target), the path relative to the directory with `/` separators;
/// 3. lines sorted by the path's UTF-8 bytes;
/// 4. the digest is `sha256:` and the SHA-256 of the manifest.
///
/// Owners, times and other permission bits do not count, so a copy made by another account,
/// another day or under another umask has the same digest.
pub fn directory_digest(entries: &[DirEntry]) -> ArtifactDigest {
    let mut sorted: Vec<&DirEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut h = Sha256::new();
    for e in sorted {
        h.update(e.kind.mode().as_bytes());
        h.update(b" ");
        h.update(hex::encode(e.sha256).as_bytes());
        h.update(b" ");
        h.update(e.path.as_bytes());
        h.update(b"\n");
    }
    let hex = hex::encode(h.finalize());
    ArtifactDigest::parse(&format!("sha256:{hex}"))
        .unwrap_or_else(|_| unreachable!("64 lowercase hex digits always parse"))
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

str_enum!(
    /// How a GitHub deployment protection rule request was answered (GitHub's own names).
    GithubReviewState, "GitHub review state" {
        /// The deployment may proceed.
        Approved = "approved",
        /// It may not.
        Rejected = "rejected",
    }
);

impl GithubReviewState {
    /// The answer to a gate decision.
    pub fn of(d: &Decision) -> Self {
        if d.allow {
            GithubReviewState::Approved
        } else {
            GithubReviewState::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_image_is_pinned_only_by_a_full_sha256_digest() {
        assert!(pinned_digest(&format!("registry.local/tthc@sha256:{D}")).is_some());
        assert!(pinned_digest(&format!("registry.local:5000/tthc:1.2@sha256:{D}")).is_some());
        assert!(pinned_digest("registry.local/tthc:1.2").is_none());
        assert!(pinned_digest("registry.local:5000/tthc").is_none());
        assert!(pinned_digest(&format!("tthc@sha256:{}", &D[1..])).is_none());
        assert!(pinned_digest(&format!("tthc@sha512:{D}")).is_none());
        assert!(pinned_digest(&format!("tthc@sha256:{D}x")).is_none());
    }

    #[test]
    fn images_of_pods_and_of_every_template_kind_are_read() {
        let spec = json!({"initContainers": [{"name": "init", "image": "a"}],
                          "containers": [{"name": "web", "image": "b"}],
                          "ephemeralContainers": [{"name": "dbg", "image": "c"}]});
        let pod = json!({"metadata": {"labels": {LABEL_SYSTEM: "TTHC", LABEL_ENV: "production"}}, "spec": spec});
        let w = read_workload("Pod", &pod).unwrap();
        assert_eq!(
            w.images
                .iter()
                .map(|i| (i.field, i.image.as_str()))
                .collect::<Vec<_>>(),
            [
                ("containers", "b"),
                ("initContainers", "a"),
                ("ephemeralContainers", "c")
            ]
        );
        assert_eq!(w.system.as_deref(), Some("TTHC"));
        let deploy = json!({"spec": {"template": {"metadata": {"labels": {LABEL_ENV: "staging"}}, "spec": spec}}});
        let w = read_workload("Deployment", &deploy).unwrap();
        assert_eq!(w.images.len(), 3);
        assert_eq!(w.env.as_deref(), Some("staging"));
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}});
        assert_eq!(read_workload("CronJob", &cron).unwrap().images.len(), 3);
        assert!(
            !read_workload("ConfigMap", &json!({"data": {}}))
                .unwrap()
                .has_pod_spec
        );
    }

    #[test]
    fn malformed_and_oversized_objects_are_refused() {
        let many: Vec<_> = (0..10_000)
            .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
            .collect();
        assert_eq!(
            read_workload("Pod", &json!({"spec": {"containers": many}})),
            Err(WorkloadError::TooManyContainers(10_000))
        );
        assert!(read_workload("Pod", &json!({"spec": {"containers": [{"name": "x"}]}})).is_err());
        assert!(read_workload("Pod", &json!({"spec": {"containers": "x"}})).is_err());
        assert!(read_workload("Pod", &json!([])).is_err());
        let conflicting = json!({"metadata": {"labels": {LABEL_SYSTEM: "A"}},
            "spec": {"template": {"metadata": {"labels": {LABEL_SYSTEM: "B"}}, "spec": {}}}});
        assert_eq!(
            read_workload("Deployment", &conflicting),
            Err(WorkloadError::ConflictingLabels(LABEL_SYSTEM))
        );
    }

    #[test]
    fn the_directory_digest_ignores_order_and_counts_paths_modes_and_contents() {
        let e = |p: &str, x: bool, c: u8| DirEntry {
            path: p.into(),
            kind: EntryKind::File { executable: x },
            sha256: [c; 32],
        };
        let a = directory_digest(&[e("a.txt", false, 1), e("bin/run", true, 2)]);
        assert_eq!(
            a,
            directory_digest(&[e("bin/run", true, 2), e("a.txt", false, 1)])
        );
        assert_ne!(
            a,
            directory_digest(&[e("a.txt", false, 1), e("bin/run", false, 2)])
        );
        assert_ne!(
            a,
            directory_digest(&[e("a.txt", false, 1), e("bin/run", true, 3)])
        );
        assert_ne!(
            a,
            directory_digest(&[e("b.txt", false, 1), e("bin/run", true, 2)])
        );
        // The documented manifest, by hand.
        let manifest = format!(
            "100644 {} a.txt\n100755 {} bin/run\n",
            hex::encode([1u8; 32]),
            hex::encode([2u8; 32])
        );
        assert_eq!(
            a.as_str(),
            format!("sha256:{}", hex::encode(Sha256::digest(manifest)))
        );
    }

    #[test]
    fn cut_keeps_short_text_and_marks_a_cut() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("Nguyễn Văn An", 5).chars().count(), 5);
    }
}
