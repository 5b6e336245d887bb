//! Request examples of the OpenAPI document: valid requests against the demo data
//! (`changegate serve --demo`), so that a reader can try them, and a schema-driven fuzzer
//! (`scripts/schemathesis`) reaches past validation into the use cases.

use serde_json::{Value, json};

/// A change request of the demo system `TTHC-TINH`.
pub(crate) fn new_change_request() -> Value {
    json!({
        "system": "TTHC-TINH",
        "kind": "software",
        "title": "Cập nhật bản vá bảo mật thư viện xử lý XML",
        "description": "Vá lỗ hổng CVE-2024-0001; không đổi giao diện.",
        "environments": ["production"],
        "subjects": [{
            "type": "git_commit",
            "commit": "3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
            "tree": "c1f4b2a9d0e37f6b5a48e9d2c7b1a0f3e6d5c4b3"
        }]
    })
}

/// An edit of a draft.
pub(crate) fn edit_change_request() -> Value {
    json!({ "title": "Thay thế máy chủ cơ sở dữ liệu (bổ sung cấu hình RAID)" })
}

/// A note sending a change back to its owner.
pub(crate) fn note() -> Value {
    json!({
        "note": "Bổ sung kết quả quét lỗ hổng trước khi đánh giá.",
        "findings": [{
            "severity": "high",
            "text": "Chưa có kết quả quét lỗ hổng của mô-đun mới.",
            "item": "vuln-scan-pentest"
        }]
    })
}

/// Evidence that a remediation item is done.
pub(crate) fn fulfilment() -> Value {
    json!({ "evidence": "Đã bổ sung hồ sơ CO/CQ, lưu tại https://vanban.example.gov.vn/CO-CQ-2026.pdf" })
}

/// PA05's verification of a fulfilled item.
pub(crate) fn verification() -> Value {
    json!({ "accepted": true, "note": "Đã kiểm tra hồ sơ CO/CQ." })
}

/// Why an approval is revoked.
pub(crate) fn revoke_reason() -> Value {
    json!({ "reason": "Phát hiện tài khoản dùng chung trong bản triển khai." })
}

/// A passing sign-off answering every item of the default checklist, with a code of the
/// reviewer's second factor.
pub(crate) fn sign_off() -> Value {
    let items = [
        "level-approved",
        "design-documented",
        "source-protected",
        "no-default-passwords",
        "no-shared-accounts",
        "password-policy",
        "least-privilege",
        "admin-mfa",
        "approved-access-only",
        "ip-allowlist",
        "encrypted-transit",
        "access-logging",
        "soc-monitoring",
        "vuln-scan-pentest",
        "malware-scan",
        "hardening",
        "hardware-security",
        "dpia-updated",
        "backup-restore",
        "incident-contacts",
    ];
    json!({
        "conclusion": "pass",
        "checklist": items
            .iter()
            .map(|i| json!({ "item": i, "result": "pass", "note": "" }))
            .collect::<Vec<_>>(),
        "findings": [],
        "conditions": [
            "Rà soát lại nhật ký truy cập sau 30 ngày vận hành.",
            { "text": "Bổ sung hồ sơ CO/CQ trước khi vận hành.", "severity": "high" }
        ],
        "second_factor_code": "492039"
    })
}

/// An incident report.
pub(crate) fn new_incident() -> Value {
    json!({
        "kind": "abnormal_access",
        "severity": "medium",
        "summary": "Truy cập bất thường từ địa chỉ IP chưa xác định vào cổng quản trị.",
        "national_security": false
    })
}

/// A notice sent about an incident.
pub(crate) fn incident_notice() -> Value {
    json!({
        "kind": "initial",
        "recipient": "Phòng An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao (PA05) – Công an tỉnh",
        "channel": "văn bản",
        "document_number": "15/BC-STNMT"
    })
}

/// When A05 was notified.
pub(crate) fn a05_notified() -> Value {
    json!({ "notified_at": "2024-02-01T08:00:00Z" })
}

/// A freeze window later on.
pub(crate) fn new_freeze_window() -> Value {
    json!({
        "environment": "production",
        "starts_at": "2030-12-25T00:00:00Z",
        "ends_at": "2031-01-02T00:00:00Z",
        "reason": "Kỳ quyết toán cuối năm"
    })
}

/// A deployment of the demo's approved commit.
pub(crate) fn new_deployment() -> Value {
    json!({
        "system": "TTHC-TINH",
        "environment": "production",
        "commit": "5a6cf30966b4cd3413164e475e8a6f37ee125f8e",
        "tree": "a08585ecb240d748d3fe14c558fba56e2bbea45a"
    })
}

/// An organisation.
pub(crate) fn new_organisation() -> Value {
    json!({ "code": "SO-YTE", "name": "Sở Y tế", "kind": "owner" })
}

/// A user.
pub(crate) fn new_user() -> Value {
    json!({
        "username": "le.van.cuong",
        "display_name": "Lê Văn Cường",
        "org": "STNMT",
        "role": "owner"
    })
}

/// A token.
pub(crate) fn new_token() -> Value {
    json!({ "name": "ci-pipeline", "expires_in_days": 90 })
}

/// A system.
pub(crate) fn new_system() -> Value {
    json!({
        "code": "QLVB-TINH",
        "name": "Hệ thống quản lý văn bản và điều hành",
        "owner_org": "STNMT",
        "operating_unit": "Văn phòng Sở",
        "level": 3,
        "population_db": true,
        "environments": ["production", "staging"],
        "components": [],
        "last_review": "2024-06-30"
    })
}

/// A webhook (on the loopback address: an example must not send notifications elsewhere).
pub(crate) fn new_webhook() -> Value {
    json!({
        "url": "http://127.0.0.1:9/changegate",
        "secret": "whsec_CceECNMCsgDYZI3Yv+vSGDkL5yAGEW+OSxwffo/lgW0=",
        "events": ["change_request.submitted", "incident.reported"]
    })
}

pub(crate) fn edit_user() -> Value {
    json!({ "role": "auditor", "org": "SO-TTTT" })
}

pub(crate) fn deactivation() -> Value {
    json!({ "reason": "Nghỉ việc từ 01/12/2026 (Quyết định số 123/QĐ-STNMT)" })
}

/// The external assessment of a major change.
pub(crate) fn external_assessment() -> Value {
    json!({
        "organisation": "Trung tâm Giám sát an toàn không gian mạng quốc gia",
        "licence": "Giấy phép kinh doanh sản phẩm, dịch vụ an toàn thông tin mạng số 12/GP-BTTTT",
        "report_ref": "Báo cáo đánh giá số 45/BC-NCSC",
        "assessed_on": "2026-11-28"
    })
}

/// A personal-data breach's notice fields (Decree 356/2025).
pub(crate) fn breach_record() -> Value {
    json!({
        "description": "Tài khoản cán bộ bị lộ mật khẩu, bị dùng để tra cứu hàng loạt thông tin công dân",
        "data_categories": "Họ tên, ngày sinh, số định danh cá nhân, nơi thường trú",
        "subjects": 1200,
        "consequences": "Nguy cơ lộ lọt thông tin cá nhân của công dân",
        "measures": "Khóa tài khoản, đổi mật khẩu, chặn địa chỉ IP truy cập bất thường",
        "confirmation_ref": "Biên bản xác nhận số 03/BB-STNMT"
    })
}
