//! Snapshot tests (`insta`): the OpenAPI document and rendered web pages, compared with the
//! `.snap` files in `e2e/snapshots/`. A change to the contract or to a page's markup fails here
//! until its new snapshot is reviewed and committed (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test --workspace -- snapshots::` and read the diff). What changes
//! from run to run (dates, times, countdowns, CSRF tokens and form ids, git ids) is redacted.

use crate::web_security::Web;
use changegate_api::NewIncident;
use changegate_tests::*;
use reqwest::Method;

/// Redactions of the values that differ between runs.
fn volatile() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r#"name="(csrf|form_id)" value="[^"]*""#,
            r#"name="$1" value="[token]""#,
        ),
        (r#"data-csrf="[^"]*""#, r#"data-csrf="[csrf]""#),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?",
            "[datetime]",
        ),
        (r"\b\d{4}-\d{2}-\d{2}\b", "[date]"),
        (r"\b\d{1,2}/\d{1,2}/\d{4}\b", "[date]"),
        (r"\b\d{1,2}:\d{2}(:\d{2})?\b", "[time]"),
        (
            r#"<span class="countdown">[^<]*</span>"#,
            r#"<span class="countdown">[countdown]</span>"#,
        ),
        (r"\d+ (giờ|ngày)( \d+ phút)?|\d+ phút", "[duration]"),
        (r"\b[0-9a-f]{40}\b", "[git-id]"),
        (r"\b[0-9a-f]{12}\b", "[short-id]"),
    ]
}

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let t = spawn_app().await;
    let (status, _, body) = t
        .anon
        .raw(Method::GET, "/api/openapi.json", None, vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.as_u16(), 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    // Keys sorted (serde_json's map), so only a change of the contract changes the text.
    let pretty = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| panic!("{e}"));
    insta::assert_snapshot!("openapi", pretty);
}

/// The pages of an owner of STNMT with one incident reported: the dashboard, the incident, the
/// list of incidents and the system's page.
#[tokio::test]
async fn an_owners_pages_match_their_snapshots() {
    let t = spawn_app().await;
    let w = t.world().await;
    let incident = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "abnormal_access".into(),
                severity: "high".into(),
                summary:
                    "Truy cập bất thường từ địa chỉ IP không xác định vào cơ sở dữ liệu dân cư."
                        .into(),
                detected_at: None,
                national_security: false,
            },
        )
        .await);
    let otp = t
        .person("chu.he.thong", "Nguyễn Chủ Hệ Thống", "STNMT", "owner")
        .await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &otp).await;
    let mut settings = insta::Settings::clone_current();
    for (re, with) in volatile() {
        settings.add_filter(re, with);
    }
    settings
        .bind_async(async {
            for (name, path) in [
                ("page_dashboard", "/".to_owned()),
                ("page_incident", format!("/incidents/{}", incident.id)),
                ("page_incidents", "/incidents".to_owned()),
                ("page_system", "/systems/TTHC".to_owned()),
            ] {
                let r = web.get(&path).await;
                assert_eq!(r.status, 200, "GET {path}: {}", r.body);
                // minijinja escapes `/` too: dates read as dates, so that they are redacted.
                insta::assert_snapshot!(name, r.body.replace("&#x2f;", "/"));
            }
        })
        .await;
}
