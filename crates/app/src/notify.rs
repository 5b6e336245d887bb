//! Notifications through an outbox. A use case calls [`WriteTx::notify`] inside its transaction:
//! one delivery row per subscribed webhook is written with the change itself, so a committed
//! event is delivered (at least once, the same `webhook-id` on every retry) and an uncommitted
//! one never is. Messages are rendered in Vietnamese and English from minijinja templates
//! embedded in the binary (`templates/notify/<event>/{subject,body}.{vi,en}.txt.j2`).
//! Deliveries are signed per the Standard Webhooks specification.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult, WriteTx};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api as wire;
use changegate_domain::Role;
use changegate_domain::notify::DeliveryStatus;
use changegate_store::entity::webhook;
use changegate_store::outbox::{self, Attempt, NewDelivery};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::LazyLock;

macro_rules! templates {
    ($($ev:literal),* $(,)?) => {
        &[$(($ev, [
            include_str!(concat!("../templates/notify/", $ev, "/subject.vi.txt.j2")),
            include_str!(concat!("../templates/notify/", $ev, "/body.vi.txt.j2")),
            include_str!(concat!("../templates/notify/", $ev, "/subject.en.txt.j2")),
            include_str!(concat!("../templates/notify/", $ev, "/body.en.txt.j2")),
        ])),*]
    };
}

/// Every event type, with its four templates (subject and body, Vietnamese and English).
pub const TEMPLATES: &[(&str, [&str; 4])] = templates!(
    "change_request.submitted",
    "change_request.signed_off",
    "change_request.approved",
    "change_request.rejected",
    "change_request.break_glass",
    "incident.reported",
    "re_review.due",
    "re_review.overdue",
    "approval.expiring",
    "breach.clock",
    "account.shared",
    "account.locked",
    "remediation.due_soon",
    "remediation.overdue",
    "remediation.fulfilled",
    "remediation.verified",
    "remediation.reopened",
    "incident.notice_due",
    "incident.notice_overdue",
    "backup.failed",
    "annual_report.due",
);

/// The event types a webhook can subscribe to.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(e, _)| *e)
}

static ENV: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    for (ev, t) in TEMPLATES {
        for (part, src) in ["subject.vi", "body.vi", "subject.en", "body.en"]
            .iter()
            .zip(t)
        {
            // The templates are part of the binary and checked by a test; a broken one is a
            // build defect, reported at render time.
            let _ = env.add_template_owned(format!("{ev}/{part}"), *src);
        }
    }
    env
});

/// Renders the message of an event in both languages: `{"vi": {subject, body}, "en": {…}}`.
pub fn render(event: &str, data: &serde_json::Value) -> AppResult<serde_json::Value> {
    let mut out = serde_json::Map::new();
    for lang in ["vi", "en"] {
        let part = |p: &str| {
            ENV.get_template(&format!("{event}/{p}.{lang}"))
                .and_then(|t| t.render(data))
                .map_err(|e| AppError::Internal(format!("template {event}/{p}.{lang}: {e}")))
        };
        out.insert(
            lang.into(),
            serde_json::json!({ "subject": part("subject")?.trim(), "body": part("body")? }),
        );
    }
    Ok(serde_json::Value::Object(out))
}

/// Decodes a Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes.
pub fn decode_secret(s: &str) -> Result<Vec<u8>, String> {
    let b = s.strip_prefix("whsec_").ok_or("must start with whsec_")?;
    let raw = B64.decode(b).map_err(|_| "after whsec_ must come base64")?;
    if !(24..=64).contains(&raw.len()) {
        return Err(format!(
            "must hold 24 to 64 random bytes, not {}",
            raw.len()
        ));
    }
    Ok(raw)
}

/// The `webhook-signature` header value: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn signature(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Retry delay after `attempts` failed attempts: 5 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    Duration::seconds((5i64 << attempts.clamp(0, 10)).min(3600))
}

/// How long deliveries are retried before they are kept as failed.
pub const GIVE_UP_AFTER: Duration = Duration::hours(24);

impl WriteTx<'_> {
    /// Queues an event for every active webhook subscribed to it, in this transaction.
    pub async fn notify(&self, event: &str, data: serde_json::Value) -> AppResult<()> {
        self.notify_many(vec![(event, data)]).await
    }

    /// Queues several events, in order, in this transaction: the webhooks are read once and the
    /// deliveries inserted in multi-row statements (for jobs that announce many things at once).
    pub(crate) async fn notify_many(
        &self,
        events: Vec<(&str, serde_json::Value)>,
    ) -> AppResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let hooks = outbox::subscriptions(&self.txn).await?;
        if hooks.is_empty() {
            return Ok(());
        }
        let at = self.at();
        let mut rows = vec![];
        for (event, mut data) in events {
            let to: Vec<i64> = hooks
                .iter()
                .filter(|s| s.events.iter().any(|x| x == "*" || x == event))
                .map(|s| s.webhook_id)
                .collect();
            if to.is_empty() {
                continue;
            }
            data["message"] = render(event, &data)?;
            let body =
                serde_json::json!({ "type": event, "timestamp": at, "data": data }).to_string();
            for h in to {
                rows.push(NewDelivery {
                    webhook_id: h,
                    msg_id: format!("msg_{}", hex::encode(rand::random::<[u8; 12]>())),
                    event: event.to_owned(),
                    payload: body.clone(),
                    at,
                });
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        // 12 columns a row: 1,000 rows stay well under SQLite's 32,766 variables.
        while !rows.is_empty() {
            let rest = rows.split_off(1000.min(rows.len()));
            outbox::queue_deliveries(&self.txn, rows).await?;
            rows = rest;
        }
        self.queued_deliveries();
        Ok(())
    }
}

/// A delivery to attempt.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Row id.
    pub id: i64,
    /// The webhook it goes to.
    pub webhook: i64,
    /// `webhook-id`.
    pub msg_id: String,
    /// Where.
    pub url: String,
    /// HMAC key.
    pub key: Vec<u8>,
    /// Body.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// When first queued.
    pub created_at: DateTime<Utc>,
}

fn webhook_view(h: &webhook::Model) -> AppResult<wire::Webhook> {
    Ok(wire::Webhook {
        id: h.id,
        url: h.url.clone(),
        events: h.events.0.clone(),
        active: h.active,
        created_at: h.created_at,
    })
}

impl App {
    /// Registers a webhook (admin).
    pub async fn create_webhook(
        &self,
        who: &Principal,
        n: wire::NewWebhook,
    ) -> AppResult<wire::Webhook> {
        who.require(&[Role::Admin], "registering a webhook")?;
        let mut errors = vec![];
        match url::Url::parse(&n.url) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
            _ => errors.push((
                "url".to_owned(),
                format!(
                    "{:?} is not an http(s) URL",
                    n.url.chars().take(200).collect::<String>()
                ),
            )),
        }
        if let Err(e) = decode_secret(&n.secret) {
            errors.push(("secret".to_owned(), e));
        }
        if n.events.is_empty() {
            errors.push((
                "events".to_owned(),
                "name at least one event, or \"*\"".into(),
            ));
        }
        for (i, e) in n.events.iter().enumerate() {
            if e != "*" && !event_types().any(|t| t == e) {
                errors.push((
                    format!("events[{i}]"),
                    format!(
                        "{e:?} is not one of *, {}",
                        event_types().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let h = outbox::create_webhook(
            &tx.txn,
            outbox::NewWebhook {
                url: n.url,
                secret: n.secret,
                events: n.events.clone(),
                created_by: who.user_id,
                at: tx.at(),
            },
        )
        .await?;
        let view = webhook_view(&h)?;
        tx.audit(crate::event(
            Some(who),
            "webhook.create",
            "webhook",
            h.id,
            None,
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Registered webhooks (admin).
    pub async fn list_webhooks(&self, who: &Principal) -> AppResult<Vec<wire::Webhook>> {
        who.require(&[Role::Admin], "listing webhooks")?;
        outbox::webhooks(&self.db)
            .await?
            .iter()
            .map(webhook_view)
            .collect()
    }

    /// Deliveries, newest first, optionally of one status (admin): failed ones stay visible.
    pub async fn list_deliveries(
        &self,
        who: &Principal,
        status: Option<&str>,
    ) -> AppResult<Vec<wire::Delivery>> {
        who.require(&[Role::Admin], "reading webhook deliveries")?;
        let status = match status {
            None => None,
            Some(s) => {
                let Ok(s) = DeliveryStatus::parse(s) else {
                    return Err(AppError::invalid(
                        "status",
                        format!("{s:?} is not pending, delivered or failed"),
                    ));
                };
                Some(s)
            }
        };
        Ok(outbox::recent_deliveries(&self.db, status, 500)
            .await?
            .into_iter()
            .map(|d| wire::Delivery {
                id: d.id,
                webhook: d.webhook_id,
                msg_id: d.msg_id,
                event: d.event,
                status: d.status.to_string(),
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_error: d.last_error,
                created_at: d.created_at,
                delivered_at: d.delivered_at,
            })
            .collect())
    }

    /// Claims up to `limit` deliveries that are due, for `lease` (other replicas skip them), at
    /// most `per_webhook` in flight to one webhook counting the `busy` ones (in flight per
    /// webhook), so that an endpoint that hangs cannot take every slot of the dispatcher.
    pub async fn claim_due_deliveries(
        &self,
        limit: u64,
        lease: Duration,
        busy: &std::collections::HashMap<i64, usize>,
        per_webhook: usize,
    ) -> AppResult<Vec<DueDelivery>> {
        let now = crate::now();
        let full: Vec<i64> = busy
            .iter()
            .filter(|(_, n)| **n >= per_webhook)
            .map(|(id, _)| *id)
            .collect();
        let mut taken = busy.clone();
        let due = outbox::due_deliveries(&self.db, now, full, limit).await?;
        let mut out = vec![];
        let mut hooks = std::collections::HashMap::new();
        for d in due {
            let n = taken.entry(d.webhook_id).or_default();
            if *n >= per_webhook {
                continue;
            }
            // Claim: only one replica's conditional update succeeds.
            if !outbox::lease_delivery(&self.db, d.id, now, now + lease).await? {
                continue;
            }
            *n += 1;
            if let std::collections::hash_map::Entry::Vacant(e) = hooks.entry(d.webhook_id) {
                e.insert(outbox::webhook(&self.db, d.webhook_id).await?);
            }
            let usable = match hooks.get(&d.webhook_id) {
                Some(Some(h)) => decode_secret(&h.secret).ok().map(|k| (h.url.clone(), k)),
                _ => None,
            };
            let Some((url, key)) = usable else {
                // Nothing can ever deliver it: keep it as failed rather than retrying forever.
                outbox::give_up_delivery(
                    &self.db,
                    d.id,
                    "the webhook is gone or its secret is unreadable",
                )
                .await?;
                continue;
            };
            out.push(DueDelivery {
                id: d.id,
                webhook: d.webhook_id,
                msg_id: d.msg_id,
                url,
                key,
                payload: d.payload,
                attempts: d.attempts,
                created_at: d.created_at,
            });
        }
        Ok(out)
    }

    /// Records the outcome of an attempt: delivered, retried later with backoff, or kept as
    /// failed after a day of retries.
    pub async fn finish_delivery(
        &self,
        d: &DueDelivery,
        outcome: Result<(), String>,
    ) -> AppResult<()> {
        let now = crate::now();
        let attempts = d.attempts + 1;
        let attempt = match outcome {
            Ok(()) => Attempt::Delivered(now),
            Err(e) => {
                let next = now + backoff(attempts);
                let give_up = next - d.created_at > GIVE_UP_AFTER;
                if give_up {
                    tracing::warn!(delivery = d.id, msg_id = %d.msg_id, "webhook delivery failed for 24 hours; kept as failed");
                }
                Attempt::Failed {
                    error: e.chars().take(500).collect(),
                    next_attempt_at: next,
                    give_up,
                }
            }
        };
        outbox::record_attempt(&self.db, d.id, attempts, attempt).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_in_both_languages() {
        let data = serde_json::json!({ "username": "tran.thi.hoa", "display_name": "Trần Thị Hoa", "org": "PA05", "ips": ["127.0.0.1", "127.0.0.2"], "until": "2026-11-24T10:15:00Z", "ip": "127.0.0.2", "failures": 5, "id": 7, "system": "TTHC", "system_name": "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh", "title": "Nâng cấp", "actor": "Trần Thị Hoa", "kind": "malware", "severity": "high", "summary": "Mã độc", "level": 3 });
        for ev in event_types() {
            let m = render(ev, &data).unwrap();
            for lang in ["vi", "en"] {
                assert!(
                    !m[lang]["subject"].as_str().unwrap().is_empty(),
                    "{ev} {lang}"
                );
                let body = m[lang]["body"].as_str().unwrap();
                if ev.starts_with("account.") {
                    assert!(body.contains("tran.thi.hoa"), "{ev} {lang}");
                } else if ev.starts_with("backup.") {
                    assert!(
                        body.contains("changegate admin run-job backup"),
                        "{ev} {lang}"
                    );
                } else if ev.starts_with("annual_report.") {
                    assert!(
                        body.contains("Mẫu số 08") || body.contains("Form 08"),
                        "{ev} {lang}"
                    );
                } else {
                    assert!(
                        body.contains("TTHC") || body.contains("Hệ thống"),
                        "{ev} {lang}"
                    );
                }
            }
        }
        let vi = render("change_request.submitted", &data).unwrap();
        assert!(
            vi["vi"]["body"]
                .as_str()
                .unwrap()
                .contains("Hệ thống thông tin giải quyết thủ tục hành chính tỉnh")
        );
    }

    /// Every notification as it is sent, both languages, against a snapshot
    /// (`src/snapshots/`): a change to a template's wording shows up in review.
    #[test]
    fn every_notification_matches_its_snapshot() {
        let data: serde_json::Value = serde_json::from_str(
            r#"{
            "username": "tran.thi.hoa", "display_name": "Trần Thị Hoa", "org": "PA05",
            "ips": ["127.0.0.1", "127.0.0.2"], "until": "2026-11-24T10:15:00Z", "ip": "127.0.0.2",
            "failures": 5, "id": 7, "system": "TTHC",
            "system_name": "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh",
            "title": "Nâng cấp", "actor": "Trần Thị Hoa", "kind": "malware", "severity": "high",
            "severity_vi": "cao", "summary": "Mã độc", "level": 3, "blocking": true,
            "breach_deadline": "2026-11-27T10:15:00Z", "deadline": "2026-11-25T10:15:00Z",
            "due": "2026-11-25T10:15:00Z", "minutes_left": 90, "overdue": false,
            "notice": "report", "detected_at": "2026-11-24T08:00:00Z", "conclusion": "pass",
            "year": 2026, "days_left": 5, "error": "disk full", "text": "Cấu hình nhật ký",
            "change_request": 12, "valid_until": "2027-11-24T10:15:00Z", "note": "Ghi chú",
            "due_vi": "25/11/2026", "justification": "Khắc phục khẩn cấp", "hours_left": 6,
            "file": "/var/backups/changegate.tar", "evidence": "Ảnh chụp cấu hình",
            "emergency_until": "2026-11-25T10:15:00Z", "at": "2026-11-24T10:15:00Z",
            "period_from": "2025-12-15", "period_from_vi": "15/12/2025", "period_to": "2026-12-14",
            "period_to_vi": "14/12/2026", "condition": true, "closes_gate": true,
            "national_security": false, "to": "PA05", "units_to_owner": false
        }"#,
        )
        .unwrap();
        let mut out = String::new();
        for ev in event_types() {
            let m = render(ev, &data).unwrap();
            for lang in ["vi", "en"] {
                out.push_str(&format!(
                    "=== {ev} [{lang}]\n{}\n---\n{}\n",
                    m[lang]["subject"].as_str().unwrap_or_default(),
                    m[lang]["body"].as_str().unwrap_or_default().trim_end()
                ));
            }
        }
        insta::assert_snapshot!("notifications", out);
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_must_be_whsec_and_24_to_64_bytes() {
        assert!(decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret(&format!("whsec_{}", B64.encode([1u8; 23]))).is_err());
        assert!(decode_secret(&format!("whsec_{}", B64.encode([1u8; 65]))).is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::seconds(10));
        assert_eq!(backoff(2), Duration::seconds(20));
        assert_eq!(backoff(30), Duration::seconds(3600));
    }
}
