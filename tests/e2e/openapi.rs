//! The OpenAPI document is served and describes the contract's endpoints.

use changegate_tests::*;
use reqwest::Method;

#[tokio::test]
async fn the_openapi_document_lists_the_gate_and_sign_off() {
    let t = spawn_app().await;
    let (status, ct, body) = t
        .anon
        .raw(Method::GET, "/api/openapi.json", None, vec![])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.as_u16(), 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths in {doc}"));
    for p in [
        "/api/v1/gate",
        "/api/v1/change-requests",
        "/api/v1/change-requests/{id}/sign-off",
        "/api/v1/change-requests/{id}/submit",
        "/api/v1/systems/{code}/incidents",
        "/api/v1/incidents/{id}/resolve",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(paths["/api/v1/gate"]["get"].is_object());
    assert!(paths["/api/v1/change-requests/{id}/sign-off"]["post"].is_object());
}
