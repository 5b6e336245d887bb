//! Kubernetes validating admission (`POST /k8s/validate`, AdmissionReview `admission.k8s.io/v1`).
//!
//! Every image of a Pod or pod template must be pinned by digest and allowed by the gate for the
//! system and environment the object belongs to (its `changegate.io/system` and
//! `changegate.io/env` labels, else the namespace mapping). The decision comes from the gate's
//! in-memory index; nothing waits. Every decision that is not a dry run is audited as a
//! deployment attempt. A review that cannot be judged is denied, never answered with an error the
//! API server could take for a failure of ours.

use super::{Target, Unmapped};
use crate::auth::Principal;
use crate::registry::{may_see_org, system_by_code};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::enforce::{ContainerImage, LABEL_ENV, LABEL_SYSTEM, cut, read_workload};
use changegate_domain::{Code, EnvName, Role};
use serde_json::{Value, json};

/// The API version answered.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// A warning's length limit (Kubernetes asks for under 120 characters).
const WARNING_MAX: usize = 119;
/// Warnings per answer.
const WARNINGS_MAX: usize = 20;
/// The status message's length limit.
const MESSAGE_MAX: usize = 1000;

/// The outcome of a review.
#[derive(Debug)]
pub enum Review {
    /// A complete AdmissionReview answer (HTTP 200).
    Answer(Value),
    /// The body is not an AdmissionReview v1 with a uid: nothing to answer to (HTTP 400).
    NotAReview(String),
}

/// What the webhook decided, before it is written as an AdmissionReview.
#[derive(Debug, Default)]
struct Verdict {
    allowed: bool,
    codes: Vec<String>,
    message: String,
    warnings: Vec<String>,
    target: Option<Target>,
    change_requests: Vec<i64>,
}

impl Verdict {
    fn deny(code: &str, message: impl Into<String>) -> Self {
        Verdict {
            allowed: false,
            codes: vec![code.to_owned()],
            message: message.into(),
            ..Verdict::default()
        }
    }

    fn allow(warning: Option<String>) -> Self {
        Verdict {
            allowed: true,
            warnings: warning.into_iter().collect(),
            ..Verdict::default()
        }
    }

    fn add_code(&mut self, code: &str) {
        if !self.codes.iter().any(|c| c == code) {
            self.codes.push(code.to_owned());
        }
    }

    fn warn(&mut self, w: String) {
        if self.warnings.len() < WARNINGS_MAX {
            self.warnings.push(cut(&w, WARNING_MAX));
        }
    }
}

fn short_image(image: &str) -> String {
    // `registry/name@sha256:abcdef…` keeps the first 12 digits of the digest.
    match image.split_once("@sha256:") {
        Some((name, d)) if d.len() > 12 => format!("{name}@sha256:{}…", &d[..12]),
        _ => image.to_owned(),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

impl App {
    /// Answers an AdmissionReview (roles `admission` and `ci`).
    pub async fn admission_review(&self, who: &Principal, body: &[u8]) -> AppResult<Review> {
        who.require(&[Role::Admission, Role::Ci], "answering admission reviews")?;
        let Ok(review) = serde_json::from_slice::<Value>(body) else {
            return Ok(Review::NotAReview("the body is not JSON".into()));
        };
        let api_version = review.get("apiVersion").and_then(Value::as_str);
        let kind = review.get("kind").and_then(Value::as_str);
        if kind != Some("AdmissionReview") || api_version != Some(API_VERSION) {
            return Ok(Review::NotAReview(format!(
                "expected kind AdmissionReview and apiVersion {API_VERSION}, got kind {:?} and apiVersion {:?}; configure admissionReviewVersions: [\"v1\"]",
                cut(kind.unwrap_or(""), 60),
                cut(api_version.unwrap_or(""), 60)
            )));
        }
        let Some(request) = review.get("request").filter(|r| r.is_object()) else {
            return Ok(Review::NotAReview(
                "the AdmissionReview has no request".into(),
            ));
        };
        let uid = match request.get("uid").and_then(Value::as_str) {
            Some(u) if !u.is_empty() && u.len() <= 128 => u.to_owned(),
            _ => {
                return Ok(Review::NotAReview(
                    "the request has no uid (1 to 128 characters) to answer to".into(),
                ));
            }
        };
        let dry_run = request
            .get("dryRun")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut verdict = self.judge(who, request).await;
        if !dry_run && let Err(e) = self.audit_admission(who, &uid, request, &verdict).await {
            tracing::error!(error = %e, uid, "could not record an admission decision; denied");
            verdict = Verdict::deny(
                "gate_unavailable",
                "changegate could not record the decision; denied (fail closed)",
            );
        }
        let mut response = json!({ "uid": uid, "allowed": verdict.allowed });
        if !verdict.allowed {
            response["status"] = json!({
                "code": 403,
                "reason": "Forbidden",
                "message": cut(&verdict.message, MESSAGE_MAX),
            });
        }
        if !verdict.warnings.is_empty() {
            response["warnings"] = json!(verdict.warnings);
        }
        Ok(Review::Answer(json!({
            "apiVersion": API_VERSION,
            "kind": "AdmissionReview",
            "response": response,
        })))
    }

    async fn judge(&self, who: &Principal, request: &Value) -> Verdict {
        let operation = request
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(operation, "CREATE" | "UPDATE") {
            // DELETE and CONNECT start nothing new.
            return Verdict::allow(None);
        }
        let Some(kind) = str_at(request, &["kind", "kind"]) else {
            return Verdict::deny(
                "malformed_review",
                "changegate: the request has no kind.kind",
            );
        };
        let object = match request.get("object") {
            Some(o) if o.is_object() => o,
            _ => {
                return Verdict::deny(
                    "malformed_review",
                    format!("changegate: the {operation} request has no object"),
                );
            }
        };
        let w = match read_workload(kind, object) {
            Ok(w) => w,
            Err(e) => return Verdict::deny("malformed_object", format!("changegate: {e}")),
        };
        if !w.has_pod_spec || w.images.is_empty() {
            return Verdict::allow(None);
        }
        let namespace = request
            .get("namespace")
            .and_then(Value::as_str)
            .or_else(|| str_at(object, &["metadata", "namespace"]))
            .unwrap_or("");
        let target = match (&w.system, &w.env) {
            (Some(s), Some(e)) => match (Code::parse(s), EnvName::parse(e)) {
                (Ok(system), Ok(env)) => Some(Target { system, env }),
                (Err(err), _) | (_, Err(err)) => {
                    return Verdict::deny("malformed_object", format!("changegate: {err}"));
                }
            },
            (Some(_), None) | (None, Some(_)) => {
                return Verdict::deny(
                    "malformed_object",
                    format!(
                        "changegate: give both labels {LABEL_SYSTEM} and {LABEL_ENV}, or neither"
                    ),
                );
            }
            (None, None) => self.enforce.k8s.namespaces.get(namespace).cloned(),
        };
        let Some(target) = target else {
            return match self.enforce.k8s.unmapped {
                Unmapped::Deny => Verdict::deny(
                    "unmapped_object",
                    format!(
                        "changegate: namespace {namespace:?} maps to no system and the object has no {LABEL_SYSTEM} label"
                    ),
                ),
                Unmapped::Allow => Verdict::allow(Some(cut(
                    &format!("changegate: namespace {namespace} maps to no system; not judged"),
                    WARNING_MAX,
                ))),
            };
        };
        let mut v = self.judge_images(who, &target, &w.images).await;
        v.target = Some(target);
        v
    }

    async fn judge_images(
        &self,
        who: &Principal,
        t: &Target,
        images: &[ContainerImage],
    ) -> Verdict {
        let mut v = Verdict {
            allowed: true,
            ..Verdict::default()
        };
        let mut details: Vec<String> = vec![];
        let mut seen: Vec<&str> = vec![];
        let mut earliest: Option<(chrono::DateTime<chrono::Utc>, i64)> = None;
        for img in images {
            if seen.contains(&img.image.as_str()) {
                continue;
            }
            seen.push(&img.image);
            let shown = short_image(&img.image);
            let Some(digest) = img.pinned() else {
                v.allowed = false;
                v.add_code("image_not_pinned");
                details.push(format!("{shown} is not pinned by digest"));
                v.warn(format!(
                    "{} {}: {shown} is not pinned (@sha256:…)",
                    img.field, img.name
                ));
                continue;
            };
            let p = wire::GateParams {
                system: t.system.to_string(),
                env: t.env.to_string(),
                artifact: Some(digest.to_string()),
                ..wire::GateParams::default()
            };
            match self.decide(who, &p).await {
                Ok((d, _)) if d.allow => {
                    if let (Some(until), Some(cr)) = (d.valid_until, d.change_request) {
                        if earliest.is_none_or(|(u, _)| until < u) {
                            earliest = Some((until, cr));
                        }
                        if !v.change_requests.contains(&cr) {
                            v.change_requests.push(cr);
                        }
                    }
                }
                Ok((d, _)) => {
                    v.allowed = false;
                    let codes: Vec<&str> = d.reasons.iter().map(|r| r.code.as_str()).collect();
                    for c in &codes {
                        v.add_code(c);
                    }
                    details.push(format!(
                        "{shown} not approved: {}",
                        d.reasons
                            .iter()
                            .map(|r| r.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                    v.warn(format!(
                        "{} {}: {shown}: {}",
                        img.field,
                        img.name,
                        codes.join(", ")
                    ));
                }
                Err(e) => {
                    v.allowed = false;
                    let code = match e {
                        AppError::Invalid(_) => "malformed_object",
                        _ => "gate_unavailable",
                    };
                    v.add_code(code);
                    details.push(format!("{shown}: {e}"));
                }
            }
        }
        if v.allowed {
            if let Some((until, cr)) = earliest {
                v.warn(format!(
                    "changegate: approval of change request {cr} holds until {}",
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
        } else {
            v.message = format!(
                "changegate: {}/{} denied: {} ({})",
                t.system,
                t.env,
                v.codes.join(", "),
                details.join("; ")
            );
        }
        v
    }

    async fn audit_admission(
        &self,
        who: &Principal,
        uid: &str,
        request: &Value,
        v: &Verdict,
    ) -> AppResult<()> {
        let system_id = match &v.target {
            Some(t) => system_by_code(&self.db, t.system.as_str())
                .await
                .ok()
                .filter(|s| may_see_org(who, s.owner_org_id))
                .map(|s| s.id),
            None => None,
        };
        let images: Vec<String> = request
            .get("kind")
            .and_then(|k| k.get("kind"))
            .and_then(Value::as_str)
            .zip(request.get("object"))
            .and_then(|(k, o)| read_workload(k, o).ok())
            .map(|w| {
                w.images
                    .into_iter()
                    .map(|i| cut(&i.image, 300))
                    .take(64)
                    .collect()
            })
            .unwrap_or_default();
        let s = |path: &[&str]| str_at(request, path).map(|x| cut(x, 300));
        let after = json!({
            "via": "kubernetes_admission",
            "allowed": v.allowed,
            "reasons": v.codes,
            "system": v.target.as_ref().map(|t| t.system.to_string()),
            "environment": v.target.as_ref().map(|t| t.env.to_string()),
            "change_requests": v.change_requests,
            "namespace": s(&["namespace"]),
            "kind": s(&["kind", "kind"]),
            "name": s(&["name"]).or_else(|| s(&["object", "metadata", "name"])),
            "operation": s(&["operation"]),
            "user": s(&["userInfo", "username"]),
            "images": images,
        });
        let tx = self.begin().await?;
        tx.audit(event(
            Some(who),
            if v.allowed {
                "deployment.admission_allowed"
            } else {
                "deployment.admission_refused"
            },
            "deployment",
            cut(uid, 128),
            system_id,
            None,
            Some(after),
        ))
        .await?;
        tx.commit().await
    }
}
