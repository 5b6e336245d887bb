//! The review sweep over more systems than one page (it acts on them a page per transaction):
//! each due system gets its re-review opened once and exactly one reminder (the overdue notice or
//! the nearest offset reached), with its notification and audit event, in order; what was opened
//! or sent before is not repeated; the audit chain stays intact; a second sweep does nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use changegate_api as wire;
use changegate_app::audit::{Verified, verify_db};
use changegate_app::{App, Principal};
use changegate_domain::gate::SystemStatus;
use changegate_domain::notify::ReminderKind;
use changegate_domain::{ChangeKind, CrState, PolicyPack};
use changegate_store::entity::{audit_event, change_request as cr, delivery, reminder, system};
use changegate_store::sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use changegate_store::types::{JsonText, Text};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use std::collections::HashMap;

/// What the sweep must do for a system: none, or (opens a re-review, reminder offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Nothing,
    Act { opens: bool, offset: i32 },
}

#[tokio::test]
async fn a_sweep_over_2500_systems_acts_once_on_each_due_one_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let pack = PolicyPack::parse("population-db.toml", changegate_app::DEFAULT_PACK).unwrap();
    let app = App::open(&url, pack).await.unwrap();
    let op = Principal::operator();
    app.create_organisation(
        &op,
        wire::NewOrganisation {
            code: "STNMT".into(),
            name: "Sở Tài nguyên và Môi trường".into(),
            kind: "owner".into(),
        },
    )
    .await
    .unwrap();
    app.create_user(
        &op,
        wire::NewUser {
            username: "nguyen.van.an".into(),
            display_name: "Nguyễn Văn An".into(),
            org: "STNMT".into(),
            role: "owner".into(),
        },
    )
    .await
    .unwrap();
    let owner = changegate_app::registry::user_by_name(&app.db, "nguyen.van.an")
        .await
        .unwrap()
        .id;
    app.create_webhook(
        &op,
        wire::NewWebhook {
            url: "http://127.0.0.1:9/hook".into(),
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            events: vec!["*".into()],
        },
    )
    .await
    .unwrap();
    let org = changegate_store::entity::organisation::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;

    let now = Utc::now();
    // Whole seconds, as reminders record due dates.
    let day = |d: i64| {
        DateTime::from_timestamp((now + Duration::days(d)).timestamp(), 0).unwrap()
            + Duration::hours(1)
    };
    let n = 2500;
    let mut expected = HashMap::new();
    let rows: Vec<system::ActiveModel> = (0..n)
        .map(|i| {
            let (due, expect) = match i % 6 {
                0 => (
                    Some(day(-3)),
                    Expect::Act {
                        opens: true,
                        offset: 0,
                    },
                ),
                1 => (
                    Some(day(5)),
                    Expect::Act {
                        opens: true,
                        offset: 7,
                    },
                ),
                2 => (
                    Some(day(20)),
                    Expect::Act {
                        opens: true,
                        offset: 30,
                    },
                ),
                3 => (
                    Some(day(0) - Duration::hours(3)),
                    Expect::Act {
                        opens: true,
                        offset: 0,
                    },
                ),
                4 => (Some(day(200)), Expect::Nothing),
                _ => (None, Expect::Nothing),
            };
            let code = format!("HT-{i:05}");
            expected.insert(code.clone(), (due, expect));
            system::ActiveModel {
                code: Set(code),
                name: Set(format!("Hệ thống thông tin số {i}")),
                owner_org_id: Set(org),
                operating_unit: Set(String::new()),
                level: Set(3),
                population_db: Set(true),
                environments: Set(JsonText(vec!["production".into()])),
                components: Set(JsonText(vec![])),
                status: Set(SystemStatus::Active.into()),
                last_evaluated_on: Set(None),
                next_review_due: Set(due),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        system::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    let ids: HashMap<String, i64> = system::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.code, s.id))
        .collect();
    // HT-00001 has its re-review open already (filed by hand); HT-00007 was reminded at 7 days.
    cr::Entity::insert(cr::ActiveModel {
        system_id: Set(ids["HT-00001"]),
        kind: Set(ChangeKind::ReReview.into()),
        title: Set("Kiểm tra lại".into()),
        description: Set(String::new()),
        state: Set(CrState::Submitted.into()),
        environments: Set(JsonText(vec!["production".into()])),
        components: Set(JsonText(vec![])),
        filed_by: Set(owner),
        editors: Set(JsonText(vec![owner])),
        round: Set(1),
        approved_at: Set(None),
        valid_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    expected.insert(
        "HT-00001".into(),
        (
            Some(day(5)),
            Expect::Act {
                opens: false,
                offset: 7,
            },
        ),
    );
    reminder::Entity::insert(reminder::ActiveModel {
        kind: Set(Text(ReminderKind::ReReview)),
        subject: Set("HT-00007".into()),
        due: Set(day(5).to_rfc3339_opts(SecondsFormat::Secs, true)),
        offset_days: Set(7),
        sent_at: Set(now),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    expected.insert(
        "HT-00007".into(),
        (
            Some(day(5)),
            Expect::Act {
                opens: true,
                offset: -1,
            },
        ),
    );
    let head_before = changegate_store::audit::head(&app.db).await.unwrap().0;

    let summary = app.review_sweep(now).await.unwrap();

    let acting: Vec<_> = expected
        .values()
        .filter_map(|(_, e)| match e {
            Expect::Act { opens, offset } => Some((*opens, *offset)),
            Expect::Nothing => None,
        })
        .collect();
    let opened = acting.iter().filter(|(o, _)| *o).count();
    let overdue = acting.iter().filter(|(_, off)| *off == 0).count();
    let reminded = acting.iter().filter(|(_, off)| *off > 0).count();
    // The annual report's reminders depend on the day of the year the test runs (Form 08 is due
    // in December): only what this test set up is asserted.
    let acted = format!(
        "{opened} re-review(s) opened, {reminded} re-review reminder(s), {overdue} overdue notice(s), 0 breach-clock reminder(s), 0 remediation reminder(s), 0 overdue remediation notice(s), 0 incident notice reminder(s), 0 overdue incident notice(s), "
    );
    assert!(
        summary.starts_with(&acted) && summary.ends_with(" annual report reminder(s)"),
        "{summary}"
    );

    // Per system: re-reviews open, reminders recorded.
    let open: Vec<i64> = cr::Entity::find()
        .filter(cr::Column::Kind.eq("re_review"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.system_id)
        .collect();
    let reminders = reminder::Entity::find().all(&app.db).await.unwrap();
    for (code, (due, e)) in &expected {
        let id = ids[code];
        let n_open = open.iter().filter(|s| **s == id).count();
        let mine: Vec<_> = reminders.iter().filter(|r| &r.subject == code).collect();
        match e {
            Expect::Nothing => {
                assert_eq!(n_open, 0, "{code}");
                assert!(mine.is_empty(), "{code}");
            }
            Expect::Act { offset, .. } => {
                assert_eq!(n_open, 1, "{code}: one open re-review");
                assert_eq!(mine.len(), 1, "{code}: one reminder");
                let offset = if *offset < 0 { 7 } else { *offset };
                assert_eq!(mine[0].offset_days, offset, "{code}");
                assert_eq!(
                    mine[0].due,
                    due.unwrap().to_rfc3339_opts(SecondsFormat::Secs, true)
                );
            }
        }
    }

    // The events, in order: the scheduled-jobs account once, then per system its re-review
    // opened, then its reminder; one delivery per notification.
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::Seq.gt(head_before))
        .order_by_asc(audit_event::Column::Seq)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(events[0].action, "user.create_service_account");
    let events = &events[1..];
    assert_eq!(events.len(), opened + reminded + overdue);
    let mut last_system = 0;
    for (i, e) in events.iter().enumerate() {
        let sid = e.system_id.unwrap();
        assert!(sid >= last_system, "systems in order");
        last_system = sid;
        // HT-00007 was reminded before: its opening is followed by the next system's events.
        if e.action == "change_request.open_re_review" && sid != ids["HT-00007"] {
            let next = &events[i + 1];
            assert_eq!(
                next.system_id,
                Some(sid),
                "its reminder follows the opening"
            );
            assert!(next.action.starts_with("system.re_review_"));
            let after: serde_json::Value =
                serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
            assert_eq!(after["id"].to_string(), e.entity_id);
            let c = cr::Entity::find_by_id(e.entity_id.parse::<i64>().unwrap())
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((c.system_id, c.kind.as_str()), (sid, "re_review"));
            assert_eq!(after["title"], c.title.as_str());
        }
    }
    assert_eq!(
        delivery::Entity::find().count(&app.db).await.unwrap() as usize,
        events.len()
    );
    assert!(matches!(
        verify_db(&app.db).await.unwrap(),
        Verified::Intact(_)
    ));

    // A second sweep finds everything done.
    assert_eq!(
        app.review_sweep(now).await.unwrap(),
        "0 re-review(s) opened, 0 re-review reminder(s), 0 overdue notice(s), 0 breach-clock reminder(s), 0 remediation reminder(s), 0 overdue remediation notice(s), 0 incident notice reminder(s), 0 overdue incident notice(s), 0 annual report reminder(s)"
    );
}
