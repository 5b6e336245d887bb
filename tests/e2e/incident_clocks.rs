//! Incident clocks (Decree 331/2026 Art. 31.2.d; Decree 356/2025): deadlines count from the
//! detection; reminders and overdue notices go out once; each notice sent is recorded.

use changegate_api::{Incident, NewIncident, NewIncidentNotice};
use changegate_store::entity::audit_event;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use changegate_tests::*;
use chrono::{DateTime, Duration, Utc};

fn incident(kind: &str, severity: &str, detected_at: Option<DateTime<Utc>>) -> NewIncident {
    NewIncident {
        kind: kind.into(),
        severity: severity.into(),
        summary: "Phát hiện mã độc trên máy chủ ứng dụng".into(),
        detected_at,
        national_security: false,
    }
}

fn due(i: &Incident, kind: &str) -> Option<DateTime<Utc>> {
    i.deadlines.iter().find(|d| d.kind == kind).map(|d| d.due)
}

async fn count(t: &TestApp, action: &str) -> u64 {
    audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .count(&t.app.db)
        .await
        .unwrap()
}

fn notice(kind: &str) -> NewIncidentNotice {
    NewIncidentNotice {
        kind: kind.into(),
        sent_at: None,
        recipient: "PA05 – Công an tỉnh".into(),
        channel: "văn bản".into(),
        document_number: Some("15/BC-STNMT".into()),
    }
}

#[tokio::test]
async fn a_serious_incident_detected_23_hours_before_its_report_has_an_hour_left_then_is_overdue() {
    let t = spawn_app().await;
    let w = t.world().await;
    let detected = Utc::now() - Duration::hours(23);
    let i = ok(w
        .owner
        .report_incident("TTHC", &incident("malware", "high", Some(detected)))
        .await);
    let initial = due(&i, "initial").expect("a serious incident calls for an initial notice");
    let left = initial - Utc::now();
    assert!(
        left > Duration::minutes(58) && left <= Duration::hours(1),
        "{left:?}"
    );
    assert_eq!(
        due(&i, "report"),
        Some(i.detected_at.unwrap() + Duration::hours(72))
    );
    assert!(
        i.deadlines
            .iter()
            .all(|d| !d.overdue && d.sent_at.is_none())
    );
    // The clock is injected, not slept: now, one reminder (the 1-hour one); an hour later, one
    // overdue notice; each once, however many sweeps run.
    for _ in 0..2 {
        t.app.review_sweep(Utc::now()).await.unwrap();
    }
    assert_eq!(count(&t, "incident.notice_reminder").await, 1);
    assert_eq!(count(&t, "incident.notice_overdue").await, 0);
    let later = Utc::now() + Duration::minutes(61);
    for _ in 0..2 {
        t.app.review_sweep(later).await.unwrap();
    }
    assert_eq!(count(&t, "incident.notice_overdue").await, 1);
    // Recorded as sent: the deadline shows it, and no more notices go out for it.
    let i = ok(w.owner.record_notice(i.id, &notice("initial")).await);
    let d = i.deadlines.iter().find(|d| d.kind == "initial").unwrap();
    assert!(d.sent_at.is_some() && !d.overdue);
    assert_eq!(i.notices.len(), 1);
    assert_eq!(i.notices[0].recorded_by, "nguyen.van.an");
    let p = problem(
        w.reviewer
            .client()
            .record_notice(i.id, &notice("initial"))
            .await,
    );
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "illegal_transition"),
        "recorded twice"
    );
    // Interim reports may be many.
    ok(w.reviewer
        .client()
        .record_notice(i.id, &notice("interim"))
        .await);
    ok(w.reviewer
        .client()
        .record_notice(i.id, &notice("interim"))
        .await);
}

#[tokio::test]
async fn a_breach_counts_72_hours_from_detection_and_national_security_is_due_at_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    let detected = Utc::now() - Duration::hours(10);
    let b = ok(w
        .owner
        .report_incident("TTHC", &incident("data_breach", "medium", Some(detected)))
        .await);
    let detected = b.detected_at.unwrap();
    assert_eq!(b.a05_deadline, Some(detected + Duration::hours(72)));
    assert_eq!(due(&b, "a05"), b.a05_deadline);
    assert_eq!(
        due(&b, "initial"),
        None,
        "a medium incident has no initial notice"
    );
    let mut n = incident("other", "low", None);
    n.national_security = true;
    let ns = ok(w.owner.report_incident("TTHC", &n).await);
    assert_eq!(
        due(&ns, "initial"),
        Some(ns.reported_at),
        "at once: by the report"
    );
    // Recording the A05 notice stops the breach clock.
    let b = ok(w
        .reviewer
        .client()
        .record_notice(b.id, &notice("a05"))
        .await);
    assert!(b.a05_notified_at.is_some());
}

#[tokio::test]
async fn bad_incident_clock_input_is_refused_and_changes_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let future = incident("malware", "high", Some(Utc::now() + Duration::hours(2)));
    let p = problem(w.owner.report_incident("TTHC", &future).await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "detected_at"));
    assert_eq!(count(&t, "incident.report").await, 0);
    let i = ok(w
        .owner
        .report_incident("TTHC", &incident("malware", "high", None))
        .await);
    let mut bad = notice("phone_call");
    let p = problem(w.owner.record_notice(i.id, &bad).await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "kind"));
    bad = notice("report");
    bad.sent_at = Some(Utc::now() + Duration::days(1));
    let p = problem(w.owner.record_notice(i.id, &bad).await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "sent_at"));
    let p = problem(w.other_owner.record_notice(i.id, &notice("report")).await);
    assert_eq!(p.status, 404, "another organisation's incident");
    assert_eq!(count(&t, "incident.notice").await, 0);
}
