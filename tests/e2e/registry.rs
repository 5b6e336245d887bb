//! The registry's life after registration (issue 11): editing and retiring a system, and the
//! list of systems with its filters and pages. Each step is checked through the API and by the
//! gate's answer after it.

use changegate_api::{EditSystem, NewSystem, Problem};
use changegate_tests::*;

fn fields(p: &Problem) -> Vec<&str> {
    p.errors.iter().map(|e| e.field.as_str()).collect()
}

#[tokio::test]
async fn an_admin_edits_a_system_but_cannot_remove_an_environment_an_open_change_names() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["staging"], vec![git(&c, &tr)]))
        .await;
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "staging", &c)).await).decision,
        "allow"
    );

    // Staging is named by an approved change: removing it is refused, naming the field.
    let before = t.audit_seq().await;
    let drop_staging = EditSystem {
        name: Some("Cổng dịch vụ công của tỉnh".into()),
        environments: Some(vec!["production".into()]),
        ..Default::default()
    };
    let p = problem(t.admin.edit_system("TTHC", &drop_staging).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(fields(&p), ["environments"], "{p:?}");
    assert!(p.errors[0].message.contains("staging"), "{p:?}");
    assert_eq!(t.audit_seq().await, before, "a refused edit writes nothing");
    let s = ok(t.admin.system("TTHC").await);
    assert_eq!(s.name, "Hệ thống TTHC", "a refused edit changes nothing");
    assert_eq!(s.environments, ["production", "staging"]);

    // Only an admin edits; bad input names its field; an unknown system is not found.
    let rename = EditSystem {
        name: Some("Cổng dịch vụ công của tỉnh".into()),
        ..Default::default()
    };
    assert_eq!(
        problem(w.owner.edit_system("TTHC", &rename).await).status,
        403
    );
    assert_eq!(
        problem(t.admin.edit_system("KHONG-CO", &rename).await).status,
        404
    );
    let bad = EditSystem {
        name: Some(String::new()),
        environments: Some(vec!["Sản xuất!".into()]),
        ..Default::default()
    };
    let p = problem(t.admin.edit_system("TTHC", &bad).await);
    assert_eq!(fields(&p), ["name", "environments[0]"], "{p:?}");
    assert_eq!(t.audit_seq().await, before);

    // A valid edit: the name, the operating unit and a new environment, audited with before
    // and after.
    let edit = EditSystem {
        name: Some("Cổng dịch vụ công của tỉnh".into()),
        operating_unit: Some("Trung tâm Chuyển đổi số".into()),
        environments: Some(vec!["production".into(), "staging".into(), "uat".into()]),
        population_db: None,
    };
    let s = ok(t.admin.edit_system("TTHC", &edit).await);
    assert_eq!(s.name, "Cổng dịch vụ công của tỉnh");
    assert_eq!(s.operating_unit, "Trung tâm Chuyển đổi số");
    assert_eq!(s.environments, ["production", "staging", "uat"]);
    assert_eq!(ok(w.owner.system("TTHC").await).name, s.name);
    let events = ok(t.admin.audit(before, 100).await).events;
    let ev = events
        .iter()
        .find(|e| e.action == "system.edit")
        .expect("the edit's audit event");
    assert_eq!(ev.actor, "quan.tri");
    assert!(
        ev.before.as_deref().unwrap_or("").contains("Hệ thống TTHC"),
        "{ev:?}"
    );
    assert!(ev.after.as_deref().unwrap_or("").contains("uat"), "{ev:?}");

    // The gate sees the new environment at once: a change can now be filed and approved for it.
    let (c2, tr2) = (random_oid(), random_oid());
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "uat", &c2)).await).codes(),
        ["no_approved_change"]
    );
    t.approved(&w, &change("TTHC", &["uat"], vec![git(&c2, &tr2)]))
        .await;
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "uat", &c2)).await).decision,
        "allow"
    );
    // An environment no open change names can go; the gate then refuses it at once.
    let s = ok(t
        .admin
        .edit_system(
            "DAT-DAI",
            &EditSystem {
                environments: Some(vec!["staging".into()]),
                ..Default::default()
            },
        )
        .await);
    assert_eq!(s.environments, ["staging"]);
    let d = ok(w
        .ci
        .gate(&ask_commit("DAT-DAI", "production", &random_oid()))
        .await);
    assert!(d.codes().contains(&"environment_not_covered"), "{d:?}");
}

#[tokio::test]
async fn a_retired_system_is_refused_by_the_gate_keeps_its_history_and_takes_no_new_changes() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let approved = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).decision,
        "allow"
    );

    // Only an admin retires, with a reason.
    let before = t.audit_seq().await;
    assert_eq!(
        problem(w.owner.retire_system("TTHC", "Thay thế").await).status,
        403
    );
    let p = problem(t.admin.retire_system("TTHC", "").await);
    assert_eq!(fields(&p), ["reason"], "{p:?}");
    assert_eq!(
        problem(t.admin.retire_system("KHONG-CO", "Thay thế").await).status,
        404
    );
    assert_eq!(t.audit_seq().await, before);

    let s = ok(t
        .admin
        .retire_system("TTHC", "Thay thế bởi Cổng dịch vụ công quốc gia")
        .await);
    assert_eq!(s.status, "retired");

    // The gate denies it at once, with `system_retired`.
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.decision, "deny");
    assert!(d.codes().contains(&"system_retired"), "{d:?}");

    // History stays: the system, its approved change and the retirement's reason.
    assert_eq!(ok(w.owner.system("TTHC").await).status, "retired");
    assert_eq!(ok(w.owner.change(approved.id).await).state, "approved");
    let events = ok(t.admin.audit(before, 100).await).events;
    let ev = events
        .iter()
        .find(|e| e.action == "system.retired")
        .expect("the retirement's audit event");
    assert!(
        ev.after
            .as_deref()
            .unwrap_or("")
            .contains("Cổng dịch vụ công quốc gia"),
        "{ev:?}"
    );

    // No new change request, no second retirement, no edit: each a clear 409.
    let seq = t.audit_seq().await;
    let p = problem(
        w.owner
            .file_change(&change(
                "TTHC",
                &["production"],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await,
    );
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "system_retired"),
        "{p:?}"
    );
    let p = problem(t.admin.retire_system("TTHC", "Lần nữa").await);
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "system_retired"),
        "{p:?}"
    );
    let p = problem(
        t.admin
            .edit_system(
                "TTHC",
                &EditSystem {
                    name: Some("Tên mới".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "system_retired"),
        "{p:?}"
    );
    assert_eq!(t.audit_seq().await, seq, "refusals write nothing");

    // The other system of the organisation is untouched.
    assert_eq!(ok(w.owner.system("DAT-DAI").await).status, "active");
}

#[tokio::test]
async fn the_systems_list_filters_and_pages_and_owners_see_only_their_organisation() {
    let t = spawn_app().await;
    let w = t.world().await;
    t.system("THUE-DT", "CUCTHUE", 3, &["production"]).await;
    let q = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let codes = |l: &changegate_api::SystemList| -> Vec<String> {
        l.items.iter().map(|s| s.code.clone()).collect()
    };

    let all = ok(t.admin.systems(&[]).await);
    assert_eq!(codes(&all), ["DAT-DAI", "THUE-DT", "TTHC"]);
    assert_eq!((all.total, all.page, all.per_page), (3, 1, 50));
    assert_eq!(
        codes(&ok(t.admin.systems(&q(&[("level", "3")])).await)),
        ["THUE-DT", "TTHC"]
    );
    assert_eq!(
        codes(&ok(t.admin.systems(&q(&[("org", "CUCTHUE")])).await)),
        ["THUE-DT"]
    );
    // An owner sees its organisation's systems only, whatever it asks for.
    assert_eq!(codes(&ok(w.owner.systems(&[]).await)), ["DAT-DAI", "TTHC"]);
    let theirs = ok(w.other_owner.systems(&q(&[("org", "STNMT")])).await);
    assert_eq!((theirs.total, theirs.items.len()), (0, 0));
    assert_eq!(codes(&ok(w.auditor.systems(&[]).await)).len(), 3);

    // Status and review date.
    ok(t.admin.retire_system("DAT-DAI", "Hợp nhất vào TTHC").await);
    assert_eq!(
        codes(&ok(t.admin.systems(&q(&[("status", "retired")])).await)),
        ["DAT-DAI"]
    );
    assert_eq!(
        codes(&ok(t.admin.systems(&q(&[("status", "active")])).await)),
        ["THUE-DT", "TTHC"]
    );
    let today = chrono::Utc::now().date_naive();
    let in_two_years = (today + chrono::Duration::days(730)).to_string();
    let due = ok(t
        .admin
        .systems(&q(&[("review_due_before", &in_two_years)]))
        .await);
    assert_eq!(due.total, 3, "every system is due within two years");
    let due = ok(t
        .admin
        .systems(&q(&[("review_due_before", &today.to_string())]))
        .await);
    assert_eq!(due.total, 0, "none is overdue today");

    // Bad filters: problem+json naming the field.
    for (k, v) in [
        ("level", "7"),
        ("level", "ba"),
        ("status", "deleted"),
        ("org", "KHONG-CO"),
        ("review_due_before", "31-12-2026"),
        ("page", "0"),
    ] {
        let p = problem(t.admin.systems(&q(&[(k, v)])).await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (422, "validation_failed"),
            "{k}={v}"
        );
        assert_eq!(fields(&p), [k], "{k}={v}: {p:?}");
    }

    // Pages of 50, by code.
    for i in 0..50 {
        ok(t.admin
            .create_system(&NewSystem {
                code: format!("HT-{i:02}"),
                name: format!("Hệ thống {i}"),
                owner_org: "CUCTHUE".into(),
                operating_unit: String::new(),
                level: 2,
                population_db: false,
                environments: vec![],
                components: vec![],
                last_review: None,
            })
            .await);
    }
    let p1 = ok(t.admin.systems(&[]).await);
    let p2 = ok(t.admin.systems(&q(&[("page", "2")])).await);
    assert_eq!((p1.total, p1.items.len()), (53, 50));
    assert_eq!(codes(&p2), ["HT-49", "THUE-DT", "TTHC"]);
    assert_eq!(p2.total, 53);
    let p3 = ok(t.admin.systems(&q(&[("page", "3")])).await);
    assert!(p3.items.is_empty());
}

#[tokio::test]
async fn the_changes_list_filters_searches_without_diacritics_and_pages() {
    let t = spawn_app().await;
    let w = t.world().await;
    let file = |system: &str, kind: &str, title: &str, description: &str| {
        let mut c = change(
            system,
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        );
        c.kind = kind.into();
        c.title = title.into();
        c.description = description.into();
        c
    };
    let upgrade = ok(w
        .owner
        .file_change(&file(
            "TTHC",
            "software",
            "Nâng cấp Cổng dịch vụ công",
            "Cập nhật phiên bản 2.3",
        ))
        .await);
    let disk = ok(w
        .owner
        .file_change(&file(
            "TTHC",
            "hardware",
            "Thay máy chủ cơ sở dữ liệu",
            "Đổi ổ đĩa RAID của Đắk Lắk",
        ))
        .await);
    ok(w.owner.submit(disk.id).await);
    let patch = ok(w
        .owner
        .file_change(&file("DAT-DAI", "software", "Vá lỗi bảo mật 100%", ""))
        .await);
    let q = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let ids = |l: &changegate_api::ChangeRequestList| -> Vec<i64> {
        l.items.iter().map(|c| c.id).collect()
    };

    // An existing client's call still works, and now says how many there are.
    let all = ok(w.owner.changes(None, None).await);
    assert_eq!(ids(&all), [patch.id, disk.id, upgrade.id]);
    assert_eq!((all.total, all.page, all.per_page), (3, 1, 50));

    // Search: with or without diacritics, any case, title or description, every word.
    for (text, want) in [
        ("nang cap", vec![upgrade.id]),
        ("NÂNG CẤP", vec![upgrade.id]),
        ("cong nang", vec![upgrade.id]),
        ("doi o dia dak lak", vec![disk.id]),
        ("Đổi", vec![disk.id]),
        ("100%", vec![patch.id]),
        ("0%", vec![patch.id]),
        ("%", vec![patch.id]),
        ("_", vec![]),
        ("nang cap raid", vec![]),
    ] {
        let got = ok(w.owner.changes_where(&q(&[("q", text)])).await);
        assert_eq!(ids(&got), want, "q={text:?}");
        assert_eq!(got.total, want.len() as u64, "q={text:?}");
    }

    // Filters.
    let by = |pairs: &[(&'static str, &str)]| {
        let qq = q(pairs);
        let owner = &w.owner;
        async move { ids(&ok(owner.changes_where(&qq).await)) }
    };
    assert_eq!(by(&[("system", "DAT-DAI")]).await, [patch.id]);
    assert_eq!(by(&[("kind", "hardware")]).await, [disk.id]);
    assert_eq!(by(&[("state", "submitted")]).await, [disk.id]);
    assert_eq!(
        by(&[("state", "draft"), ("system", "TTHC")]).await,
        [upgrade.id]
    );
    assert_eq!(by(&[("org", "STNMT")]).await.len(), 3);
    let today = chrono::Utc::now().with_timezone(&t.app.tz).date_naive();
    let tomorrow = (today + chrono::Duration::days(1)).to_string();
    let today = today.to_string();
    assert_eq!(by(&[("from", &today), ("to", &today)]).await.len(), 3);
    assert!(by(&[("from", &tomorrow)]).await.is_empty());
    // Another organisation's owner sees none of it, and its system reads as unknown.
    let theirs = ok(w.other_owner.changes_where(&q(&[("q", "nang cap")])).await);
    assert_eq!((theirs.total, theirs.items.len()), (0, 0));
    let p = problem(w.other_owner.changes_where(&q(&[("system", "TTHC")])).await);
    assert_eq!(fields(&p), ["system"]);
    // PA05 sees every organisation's.
    assert_eq!(
        ok(w.reviewer
            .client()
            .changes_where(&q(&[("q", "vá lỗi")]))
            .await)
        .total,
        1
    );

    // Bad filters: problem+json naming the field.
    let before = t.audit_seq().await;
    for (k, v) in [
        ("state", "gone"),
        ("kind", "firmware"),
        ("org", "KHONG-CO"),
        ("system", "KHONG-CO"),
        ("from", "01-12-2026"),
        ("to", "2026-13-01"),
        ("page", "0"),
        ("limit", "501"),
    ] {
        let p = problem(w.owner.changes_where(&q(&[(k, v)])).await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (422, "validation_failed"),
            "{k}={v}"
        );
        assert_eq!(fields(&p), [k], "{k}={v}: {p:?}");
    }
    let p = problem(
        w.owner
            .changes_where(&q(&[("from", &tomorrow), ("to", &today)]))
            .await,
    );
    assert_eq!(fields(&p), ["to"]);
    assert_eq!(t.audit_seq().await, before);

    // An edited draft is found by its new title, not by its old one.
    ok(w.owner
        .edit_change(
            upgrade.id,
            &changegate_api::EditChangeRequest {
                title: Some("Chuyển đổi số một cửa".into()),
                ..Default::default()
            },
        )
        .await);
    assert_eq!(by(&[("q", "chuyen doi so")]).await, [upgrade.id]);
    assert!(by(&[("q", "nang cap cong")]).await.is_empty());

    // Pages of 50, newest first; `limit` still sets the page size.
    let mut filed = vec![];
    for i in 0..50 {
        filed.push(
            ok(w.owner
                .file_change(&file(
                    "DAT-DAI",
                    "network",
                    &format!("Mở cổng mạng {i}"),
                    "",
                ))
                .await)
            .id,
        );
    }
    let p1 = ok(w.owner.changes_where(&[]).await);
    let p2 = ok(w.owner.changes_where(&q(&[("page", "2")])).await);
    assert_eq!((p1.total, p1.items.len(), p2.items.len()), (53, 50, 3));
    assert_eq!(p1.items[0].id, *filed.last().unwrap());
    assert_eq!(ids(&p2), [patch.id, disk.id, upgrade.id]);
    let small = ok(w
        .owner
        .changes_where(&q(&[("limit", "5"), ("page", "2"), ("kind", "network")]))
        .await);
    assert_eq!((small.total, small.per_page, small.items.len()), (50, 5, 5));
    assert_eq!(small.items[0].id, filed[44]);
}
