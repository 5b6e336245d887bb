//! Vietnamese text goes in and comes back byte for byte, wherever people read it.

use changegate_api::{
    ComponentChange, EditChangeRequest, NewChangeRequest, NewIncident, NewOrganisation, NewSystem,
    WireFinding,
};
use changegate_store::entity::organisation;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use changegate_tests::*;

const PERSON: &str = "Nguyễn Thị Ánh Tuyết";
const ORG: &str = "Ủy ban nhân dân tỉnh Bình Thuận – Văn phòng";
const SYSTEM: &str = "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh";
const TITLE: &str = "Đã khắc phục lỗ hổng – mức nghiêm trọng";
/// Decomposed (NFD) on purpose: "Nguyễn" written with combining marks must not be normalised.
const DECOMPOSED: &str = "Nguye\u{0302}\u{0303}n Va\u{0306}n \u{0110}u\u{031B}\u{0301}c";
const DESCRIPTION: &str = "Cập nhật mô-đun tra cứu; bỏ công cụ Excel/VBScript tự viết.\n\
    Kiểm tra: « ổn định », \"đạt\" <b>không</b> & 100% — xong.\tHết.";

#[tokio::test]
async fn vietnamese_names_titles_notes_and_findings_come_back_byte_for_byte() {
    let t = spawn_app().await;
    t.world().await;
    let org = ok(t
        .admin
        .create_organisation(&NewOrganisation {
            code: "UBND-BT".into(),
            name: ORG.into(),
            kind: "owner".into(),
        })
        .await);
    assert_eq!(org.name, ORG);
    let stored = organisation::Entity::find()
        .filter(organisation::Column::Code.eq("UBND-BT"))
        .one(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no organisation row"));
    assert_eq!(stored.name.as_bytes(), ORG.as_bytes());

    let owner = t.user("anh.tuyet", PERSON, "UBND-BT", "owner").await;
    let reviewer = t.reviewer("duc.pa05", DECOMPOSED, "PA05").await;
    let me = ok(owner.me().await);
    assert_eq!(me.display_name, PERSON);
    assert_eq!(ok(reviewer.me().await).display_name, DECOMPOSED);

    let sys = ok(t
        .admin
        .create_system(&NewSystem {
            code: "TTHC-BT".into(),
            name: SYSTEM.into(),
            owner_org: "UBND-BT".into(),
            operating_unit: "Trung tâm Công nghệ thông tin và Truyền thông".into(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![changegate_api::Component {
                kind: "hardware".into(),
                name: "Máy chủ cơ sở dữ liệu dân cư".into(),
                version: "Dell R740 – bản 2".into(),
            }],
            last_review: None,
        })
        .await);
    let again = ok(owner.system("TTHC-BT").await);
    assert_eq!(again, sys);
    assert_eq!(again.name, SYSTEM);
    assert_eq!(
        again.operating_unit,
        "Trung tâm Công nghệ thông tin và Truyền thông"
    );
    assert_eq!(again.components[0].name, "Máy chủ cơ sở dữ liệu dân cư");

    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(owner
        .file_change(&NewChangeRequest {
            system: "TTHC-BT".into(),
            kind: "software".into(),
            title: "bản nháp".into(),
            description: String::new(),
            environments: vec![],
            subjects: vec![git(&c, &tr)],
            components: vec![ComponentChange {
                name: "Phần mềm một cửa điện tử".into(),
                before: "phiên bản 1.9".into(),
                after: "phiên bản 2.0 – bản vá".into(),
            }],
            git: None,
            remediates_incident: None,
            major_change: vec![],
        })
        .await);
    let cr2 = ok(owner
        .edit_change(
            cr.id,
            &EditChangeRequest {
                title: Some(TITLE.into()),
                description: Some(DESCRIPTION.into()),
                ..EditChangeRequest::default()
            },
        )
        .await);
    assert_eq!(cr2.title, TITLE);
    assert_eq!(cr2.description, DESCRIPTION);
    assert_eq!(cr2.filed_by, "anh.tuyet");
    ok(owner.submit(cr.id).await);

    let mut s = sign_off_all(&cr2, "pass");
    s.checklist[1].result = "na".into();
    s.checklist[1].note = "Không áp dụng: không thay đổi phần cứng".into();
    s.findings = vec![WireFinding {
        severity: "medium".into(),
        text: "Còn tài khoản dùng chung ở bộ phận một cửa".into(),
        item: Some("no-shared-accounts".into()),
    }];
    s.conditions = vec!["Khắc phục trong vòng 30 ngày, báo cáo Công an tỉnh (PA05)".into()];
    ok(reviewer.sign_off(cr.id, &s).await);

    let got = ok(owner.change(cr.id).await);
    assert_eq!(got.title.as_bytes(), TITLE.as_bytes());
    assert_eq!(got.description.as_bytes(), DESCRIPTION.as_bytes());
    assert_eq!(got.components, cr.components);
    assert_eq!(got.components[0].after, "phiên bản 2.0 – bản vá");
    let so = &got.sign_offs[0];
    assert_eq!(so.reviewer_name.as_bytes(), DECOMPOSED.as_bytes());
    assert_eq!(so.checklist, s.checklist);
    assert_eq!(so.findings, s.findings);
    // Conditions come back with their severity and due date resolved, the text byte for byte.
    let texts: Vec<&str> = so.conditions.iter().map(|c| c.text()).collect();
    let sent: Vec<&str> = s.conditions.iter().map(|c| c.text()).collect();
    assert_eq!(texts, sent);
    let conditions = ok(owner
        .remediations(&[("change_request", cr.id.to_string())])
        .await);
    assert_eq!(conditions.items[0].text.as_bytes(), sent[0].as_bytes());
    assert!(got.checklist.iter().all(|i| !i.vi.is_empty()));
    assert!(
        got.checklist
            .iter()
            .any(|i| i.vi.contains("Cơ sở dữ liệu quốc gia về dân cư")),
        "the checklist speaks Vietnamese"
    );

    let inc = ok(owner
        .report_incident(
            "TTHC-BT",
            &NewIncident {
                detected_at: None,
                national_security: false,
                kind: "vulnerability".into(),
                severity: "low".into(),
                summary: TITLE.into(),
            },
        )
        .await);
    assert_eq!(inc.summary, TITLE);

    // The audit log keeps the text as given too.
    let note = "Đề nghị bổ sung biên bản kiểm tra, đánh giá an toàn thông tin";
    let cr3 = ok(owner
        .file_change(&change(
            "TTHC-BT",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(owner.submit(cr3.id).await);
    ok(reviewer.request_changes(cr3.id, note).await);
    let auditor = t.user("thanh.tra", PERSON, "SO-TTTT", "auditor").await;
    let events = ok(auditor.audit(0, 1000).await).events;
    let last = events
        .iter()
        .rfind(|e| e.action == "change_request.request_changes")
        .unwrap_or_else(|| panic!("no request_changes event"));
    assert_eq!(last.entity_id, cr3.id.to_string());
    let after: serde_json::Value = serde_json::from_str(last.after.as_deref().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after["note"], note);
    assert!(
        events
            .iter()
            .any(|e| e.after.as_deref().is_some_and(|a| a.contains(DECOMPOSED))),
        "the reviewer's name is in the audit log as given"
    );
}
