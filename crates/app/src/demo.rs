//! Demo data for `changegate serve --demo`: organisations, one user per role, systems connected
//! to the population database, and change requests in several states, created through the same
//! use cases as real data (so every row has its audit event). Credentials are one-time: on a
//! database that already holds the demo, the demo users get fresh one-time passwords and tokens.
//! The demo reviewers also get a second factor at once (its secret printed with their
//! credentials), so that the walk-through can sign off through the API with codes from an
//! authenticator app or `oathtool`; a real reviewer enrols their own at first sign-in.

use crate::identity::tokens::{Principal, hash_secret, one_time_password, principal_of};
use crate::registry::user_by_name;
use crate::{App, AppError, AppResult, event, totp};
use changegate_api as wire;
use changegate_domain::annual::ApprovalStatus;
use changegate_domain::change::Command;
use changegate_domain::incident::IncidentKind;
use changegate_domain::remediation::RemediationState;
use changegate_domain::{ChangeKind, CheckResult, ComponentKind, Conclusion, CrState, Severity};
use changegate_store::{changes, gate, identity, registry};
use sha2::{Digest, Sha256};

/// One demo account and its one-time credentials.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Role.
    pub role: String,
    /// Username.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Organisation code.
    pub org: String,
    /// One-time password (must be changed at first login).
    pub one_time_password: String,
    /// API token (90 days).
    pub token: String,
    /// The second factor's secret (base32, for an authenticator app), for the reviewers.
    pub second_factor_secret: Option<String>,
}

/// What the demo holds, for the printed walk-through.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The accounts.
    pub accounts: Vec<DemoAccount>,
    /// System code of the main demo system.
    pub system: String,
    /// Commit id of the approved demo change.
    pub approved_commit: String,
    /// Tree id of the approved demo change.
    pub approved_tree: String,
    /// Commit id of a change still waiting for its evaluation.
    pub pending_commit: String,
    /// Whether the demo was created now (false: it was there, credentials re-issued).
    pub created: bool,
}

const ORGS: [(&str, &str, &str); 4] = [
    ("STNMT", "Sở Tài nguyên và Môi trường", "owner"),
    ("CUCTHUE", "Cục Thuế tỉnh", "owner"),
    ("PA05", "Công an tỉnh – Phòng PA05", "reviewer"),
    ("STTTT", "Sở Thông tin và Truyền thông", "inspector"),
];

const USERS: [(&str, &str, &str, &str); 7] = [
    ("quan.tri", "Trần Quản Trị", "STTTT", "admin"),
    ("nguyen.van.an", "Nguyễn Văn An", "STNMT", "owner"),
    ("pham.thi.thu", "Phạm Thị Thu", "CUCTHUE", "owner"),
    ("tran.thi.hoa", "Trần Thị Hoa", "PA05", "reviewer"),
    ("do.minh.duc", "Đỗ Minh Đức", "PA05", "reviewer"),
    ("le.thanh.tra", "Lê Thanh Tra", "STTTT", "auditor"),
    (
        "ci.stnmt",
        "CI – Sở Tài nguyên và Môi trường",
        "STNMT",
        "ci",
    ),
];

fn oid(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..20])
}

fn answers(app: &App, fail_item: Option<&str>) -> Vec<wire::ItemAnswer> {
    app.pack
        .checklist
        .iter()
        .map(|i| {
            let failed = fail_item == Some(i.id.as_str());
            wire::ItemAnswer {
                item: i.id.clone(),
                result: if failed {
                    CheckResult::Fail
                } else if i.id == "hardware-security" {
                    CheckResult::Na
                } else {
                    CheckResult::Pass
                }
                .as_str()
                .into(),
                note: if failed {
                    "Tài khoản quản trị cơ sở dữ liệu vẫn dùng mật khẩu mặc định của nhà cung cấp."
                        .into()
                } else {
                    String::new()
                },
            }
        })
        .collect()
}

impl App {
    async fn principal(&self, username: &str) -> AppResult<Principal> {
        principal_of(&self.db, &user_by_name(&self.db, username).await?).await
    }

    /// Seeds the demo (or re-issues its credentials) and returns what to print.
    pub async fn seed_demo(&self) -> AppResult<Demo> {
        let op = Principal::operator();
        let created = registry::organisation_by_code(&self.db, "PA05")
            .await?
            .is_none();
        let approved = (oid("demo-approved-commit"), oid("demo-approved-tree"));
        let pending = oid("demo-pending-commit");
        let mut accounts = vec![];
        if created {
            for (code, name, kind) in ORGS {
                self.create_organisation(
                    &op,
                    wire::NewOrganisation {
                        code: code.into(),
                        name: name.into(),
                        kind: kind.into(),
                    },
                )
                .await?;
            }
            for (username, display_name, org, role) in USERS {
                let u = self
                    .create_user(
                        &op,
                        wire::NewUser {
                            username: username.into(),
                            display_name: display_name.into(),
                            org: org.into(),
                            role: role.into(),
                        },
                    )
                    .await?;
                let t = self
                    .create_token(
                        &op,
                        username,
                        wire::NewToken {
                            name: "demo".into(),
                            expires_in_days: Some(90),
                        },
                    )
                    .await?;
                accounts.push(DemoAccount {
                    role: role.into(),
                    username: username.into(),
                    display_name: display_name.into(),
                    org: org.into(),
                    one_time_password: u.one_time_password,
                    token: t.token,
                    second_factor_secret: self.demo_second_factor(role, username).await?,
                });
            }
            self.seed_demo_systems(&op, &approved, &pending).await?;
            self.seed_people(&op).await?;
            self.seed_annual_report().await?;
        } else {
            for (username, display_name, org, role) in USERS {
                let otp = self.reissue_password(&op, username).await?;
                let t = self
                    .create_token(
                        &op,
                        username,
                        wire::NewToken {
                            name: "demo".into(),
                            expires_in_days: Some(90),
                        },
                    )
                    .await?;
                accounts.push(DemoAccount {
                    role: role.into(),
                    username: username.into(),
                    display_name: display_name.into(),
                    org: org.into(),
                    one_time_password: otp,
                    token: t.token,
                    second_factor_secret: self.demo_second_factor(role, username).await?,
                });
            }
        }
        Ok(Demo {
            accounts,
            system: "TTHC-TINH".into(),
            approved_commit: approved.0,
            approved_tree: approved.1,
            pending_commit: pending,
            created,
        })
    }

    async fn demo_second_factor(&self, role: &str, username: &str) -> AppResult<Option<String>> {
        if role == changegate_domain::Role::Reviewer.as_str() {
            Ok(Some(self.enrol_second_factor_for_demo(username).await?))
        } else {
            Ok(None)
        }
    }

    /// Gives `username` a fresh second factor at once, as if they had enrolled it, and returns
    /// its secret (base32). For demo and benchmark data only: a real account enrols its own in
    /// the web UI, and the secret never leaves the server otherwise. Audited as the operator's.
    pub async fn enrol_second_factor_for_demo(&self, username: &str) -> AppResult<String> {
        let secret = totp::new_secret();
        let tx = self.begin().await?;
        let u = user_by_name(&tx.txn, username).await?;
        let (id, had) = (u.id, u.totp_secret.is_some());
        identity::set_second_factor(&tx.txn, u, secret.clone(), tx.at()).await?;
        crate::identity::close_step_up(&tx.txn, id).await?;
        tx.audit(event(
            Some(&Principal::operator()),
            "user.second_factor_enrol",
            "user",
            username,
            None,
            Some(serde_json::json!({ "second_factor": had })),
            Some(serde_json::json!({ "second_factor": true, "demo": true })),
        ))
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    async fn reissue_password(&self, op: &Principal, username: &str) -> AppResult<String> {
        let otp = one_time_password();
        let hash = hash_secret(&otp)?;
        let tx = self.begin().await?;
        let u = user_by_name(&tx.txn, username).await?;
        identity::reset_password(&tx.txn, &u, hash).await?;
        // A new password ends the browser sessions opened with the old one.
        let signed_out = identity::revoke_all_sessions_of(&tx.txn, u.id, tx.at()).await?;
        tx.audit(event(
            Some(op),
            "user.reset_password",
            "user",
            username,
            None,
            None,
            Some(
                serde_json::json!({ "must_change_password": true, "sessions_signed_out": signed_out }),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(otp)
    }

    /// What the annual report (Form 08) needs: every organisation's section-2 details, a level
    /// record for every system, and a re-levelling that opened a reclassification for PA05.
    async fn seed_annual_report(&self) -> AppResult<()> {
        let admin = self.principal("quan.tri").await?;
        let today = crate::now().with_timezone(&self.tz).date_naive();
        let contact = |name: &str,
                       founding: &str,
                       rep: &str,
                       title: &str,
                       address: &str,
                       phone: &str,
                       email: &str| wire::Contact {
            name: name.into(),
            founding_text: founding.into(),
            representative: rep.into(),
            representative_title: title.into(),
            address: address.into(),
            phone: phone.into(),
            email: email.into(),
        };
        for (code, c, unit) in [
            (
                "STNMT",
                contact(
                    "",
                    "Quyết định số 12/2008/QĐ-UBND ngày 10/03/2008 của Ủy ban nhân dân tỉnh",
                    "Nguyễn Văn Hùng",
                    "Giám đốc Sở",
                    "01 Trần Hưng Đạo, phường Phan Thiết",
                    "0252 3822 000",
                    "stnmt@example.gov.vn",
                ),
                Some(contact(
                    "Trung tâm Công nghệ thông tin tài nguyên và môi trường",
                    "Quyết định số 45/QĐ-STNMT ngày 02/05/2015",
                    "Trần Minh Tâm",
                    "Giám đốc Trung tâm",
                    "02 Trần Hưng Đạo, phường Phan Thiết",
                    "0252 3822 111",
                    "cntt.stnmt@example.gov.vn",
                )),
            ),
            (
                "CUCTHUE",
                contact(
                    "",
                    "Quyết định số 2270/QĐ-BTC ngày 10/11/2021 của Bộ Tài chính",
                    "Lê Văn Thành",
                    "Cục trưởng",
                    "15 Nguyễn Tất Thành, phường Phú Thủy",
                    "0252 3833 000",
                    "cucthue@example.gov.vn",
                ),
                Some(contact(
                    "Phòng Công nghệ thông tin – Cục Thuế tỉnh",
                    "Quyết định số 110/QĐ-CT ngày 05/01/2022",
                    "Phạm Thị Thu",
                    "Trưởng phòng",
                    "15 Nguyễn Tất Thành, phường Phú Thủy",
                    "0252 3833 222",
                    "cntt.thue@example.gov.vn",
                )),
            ),
            (
                "PA05",
                contact(
                    "",
                    "Quyết định số 1024/QĐ-BCA ngày 18/02/2020 của Bộ Công an",
                    "Võ Minh Quân",
                    "Trưởng phòng PA05",
                    "39 Tôn Đức Thắng, phường Phan Thiết",
                    "069 2 466 000",
                    "pa05@example.gov.vn",
                ),
                None,
            ),
            (
                "STTTT",
                contact(
                    "",
                    "Quyết định số 20/2008/QĐ-UBND ngày 01/04/2008 của Ủy ban nhân dân tỉnh",
                    "Đặng Văn Lâm",
                    "Giám đốc Sở",
                    "05 Lê Hồng Phong, phường Phan Thiết",
                    "0252 3844 000",
                    "stttt@example.gov.vn",
                ),
                None,
            ),
        ] {
            self.edit_organisation(
                &admin,
                code,
                wire::EditOrganisation {
                    name: None,
                    contact: Some(c),
                    security_unit: unit,
                },
            )
            .await?;
        }
        let d = |number: &str, days_ago: i64, issuer: &str| wire::LevelDecision {
            number: number.into(),
            date: today - chrono::Duration::days(days_ago),
            issuer: issuer.into(),
        };
        let records = [
            (
                "TTHC-TINH",
                wire::LevelRecord {
                    proposed_level: Some(3),
                    approval_status: Some(ApprovalStatus::Approved.as_str().into()),
                    approval_decision: Some(d("1234/QĐ-UBND", 260, "Ủy ban nhân dân tỉnh")),
                    expected_approval_date: None,
                    rules_decision: Some(d("56/QĐ-STNMT", 240, "Sở Tài nguyên và Môi trường")),
                    plan_deployment: Some("partly_deployed".into()),
                    plan_expected_date: Some(today + chrono::Duration::days(210)),
                },
            ),
            (
                "DAT-DAI",
                wire::LevelRecord {
                    proposed_level: Some(4),
                    approval_status: Some("appraised".into()),
                    approval_decision: None,
                    expected_approval_date: Some(today + chrono::Duration::days(120)),
                    rules_decision: Some(d("71/QĐ-STNMT", 150, "Sở Tài nguyên và Môi trường")),
                    plan_deployment: Some("not_deployed".into()),
                    plan_expected_date: Some(today + chrono::Duration::days(390)),
                },
            ),
            (
                "THUE-TINH",
                wire::LevelRecord {
                    proposed_level: Some(3),
                    approval_status: Some(ApprovalStatus::Approved.as_str().into()),
                    approval_decision: Some(d("889/QĐ-CT", 300, "Cục Thuế tỉnh")),
                    expected_approval_date: None,
                    rules_decision: Some(d("92/QĐ-CT", 280, "Cục Thuế tỉnh")),
                    plan_deployment: Some("fully_deployed".into()),
                    plan_expected_date: None,
                },
            ),
        ];
        for (code, r) in records {
            self.put_level_record(&admin, code, r).await?;
        }
        // Re-levelling: the tax system goes to level 4 by a new decision; PA05 gets the
        // reclassification to evaluate.
        self.relevel(
            &admin,
            "THUE-TINH",
            wire::Relevel {
                level: 4,
                decision: d("1502/QĐ-CT", 3, "Cục Thuế tỉnh"),
                reason: "Mở rộng kết nối, chia sẻ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư"
                    .into(),
            },
        )
        .await?;
        Ok(())
    }

    async fn seed_demo_systems(
        &self,
        op: &Principal,
        approved: &(String, String),
        pending: &str,
    ) -> AppResult<()> {
        let sw = |kind: ComponentKind, name: &str, version: &str| wire::Component {
            kind: kind.as_str().into(),
            name: name.into(),
            version: version.into(),
        };
        let today = chrono::Utc::now().date_naive();
        // The provincial procedures system was last evaluated 13 months ago: its yearly re-review
        // is overdue, and the sweep below opens it (and PA05 concludes it: a periodic check for
        // Form 08's column 12).
        let last_review = |code: &str| {
            today - chrono::Duration::days(if code == "TTHC-TINH" { 400 } else { 200 })
        };
        for (code, name, org, level, unit) in [
            (
                "TTHC-TINH",
                "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh",
                "STNMT",
                3,
                "Trung tâm Công nghệ thông tin – Sở Tài nguyên và Môi trường",
            ),
            (
                "DAT-DAI",
                "Cơ sở dữ liệu đất đai tỉnh",
                "STNMT",
                4,
                "Văn phòng Đăng ký đất đai",
            ),
            (
                "THUE-TINH",
                "Hệ thống quản lý thuế cấp tỉnh",
                "CUCTHUE",
                3,
                "Phòng Tin học – Cục Thuế tỉnh",
            ),
        ] {
            self.create_system(
                op,
                wire::NewSystem {
                    code: code.into(),
                    name: name.into(),
                    owner_org: org.into(),
                    operating_unit: unit.into(),
                    level,
                    population_db: true,
                    environments: vec!["production".into(), "staging".into()],
                    components: vec![
                        sw(ComponentKind::Software, "PostgreSQL", "15.6"),
                        sw(ComponentKind::Software, "Ứng dụng một cửa điện tử", "2.2.0"),
                        sw(
                            ComponentKind::Hardware,
                            "Máy chủ Dell PowerEdge R740",
                            "R740",
                        ),
                    ],
                    last_review: Some(last_review(code)),
                },
            )
            .await?;
        }
        let an = self.principal("nguyen.van.an").await?;
        let thu = self.principal("pham.thi.thu").await?;
        let hoa = self.principal("tran.thi.hoa").await?;
        let duc = self.principal("do.minh.duc").await?;
        let file = |system: &str,
                    kind: ChangeKind,
                    title: &str,
                    description: &str,
                    subjects: Vec<wire::WireSubject>| wire::NewChangeRequest {
            system: system.into(),
            kind: kind.as_str().into(),
            title: title.into(),
            description: description.into(),
            environments: vec!["production".into()],
            subjects,
            components: vec![],
            git: None,
            remediates_incident: None,
            major_change: vec![],
        };
        let git = |c: &str, t: &str| {
            vec![wire::WireSubject::GitCommit {
                commit: c.into(),
                tree: t.into(),
            }]
        };
        let sign = |conclusion: Conclusion, fail: Option<&str>| wire::NewSignOff {
            conclusion: conclusion.as_str().into(),
            checklist: answers(self, fail),
            findings: if fail.is_some() {
                vec![wire::WireFinding { severity: Severity::High.as_str().into(), item: None, text: "Tài khoản mặc định 'admin' của hệ quản trị cơ sở dữ liệu chưa đổi mật khẩu.".into() }]
            } else {
                vec![]
            },
            conditions: if fail.is_none() {
                vec![wire::WireCondition::Text(
                    "Rà soát lại nhật ký truy cập sau 30 ngày vận hành.".into(),
                )]
            } else {
                vec![]
            },
            second_factor_code: None,
        };
        // Approved: the gate lets exactly this content through.
        let mut c = file(
            "TTHC-TINH",
            ChangeKind::Software,
            "Nâng cấp mô-đun tra cứu thông tin công dân lên phiên bản 2.3",
            "Bổ sung xác thực hai lớp cho cán bộ một cửa; tra cứu Cơ sở dữ liệu quốc gia về dân cư chỉ qua ứng dụng.",
            git(&approved.0, &approved.1),
        );
        c.components = vec![wire::ComponentChange {
            name: "Ứng dụng một cửa điện tử".into(),
            before: "2.2.0".into(),
            after: "2.3.0".into(),
        }];
        let cr = self.file_change(&an, c).await?;
        self.act_on_change(Some(&an), cr.id, Command::Submit)
            .await?;
        self.sign_off(&hoa, cr.id, sign(Conclusion::Pass, None))
            .await?;
        // Submitted, awaiting evaluation.
        let cr = self
            .file_change(
                &an,
                file(
                    "TTHC-TINH",
                    ChangeKind::Configuration,
                    "Thay đổi cấu hình danh sách địa chỉ IP được phép truy cập",
                    "Chặn truy cập từ các địa chỉ IP chưa xác định theo văn bản của Công an tỉnh.",
                    git(pending, &oid("demo-pending-tree")),
                ),
            )
            .await?;
        self.act_on_change(Some(&an), cr.id, Command::Submit)
            .await?;
        // Draft.
        let mut c = file(
            "TTHC-TINH",
            ChangeKind::Hardware,
            "Thay thế máy chủ cơ sở dữ liệu",
            "Máy chủ cũ hết bảo hành; thay bằng máy chủ mới cùng cấu hình an toàn.",
            vec![],
        );
        c.components = vec![wire::ComponentChange {
            name: "Máy chủ Dell PowerEdge R740".into(),
            before: "R740".into(),
            after: "R760".into(),
        }];
        self.file_change(&an, c).await?;
        // Rejected: a default password was found.
        let cr = self
            .file_change(
                &an,
                file(
                    "DAT-DAI",
                    ChangeKind::Software,
                    "Triển khai mô-đun đồng bộ dữ liệu đất đai với dân cư",
                    "Đồng bộ định kỳ theo lô.",
                    git(&oid("demo-rejected-commit"), &oid("demo-rejected-tree")),
                ),
            )
            .await?;
        self.act_on_change(Some(&an), cr.id, Command::Submit)
            .await?;
        self.sign_off(
            &hoa,
            cr.id,
            sign(Conclusion::Fail, Some("no-default-passwords")),
        )
        .await?;
        // Level 4: one of two required sign-offs.
        let cr = self.file_change(&an, file("DAT-DAI", ChangeKind::Network, "Kết nối mạng truyền số liệu chuyên dùng", "Chuyển kết nối sang mạng truyền số liệu chuyên dùng của cơ quan Đảng, Nhà nước.",
            vec![wire::WireSubject::Artifact { digest: format!("sha256:{}", hex::encode(Sha256::digest(b"demo-network-config"))) }])).await?;
        self.act_on_change(Some(&an), cr.id, Command::Submit)
            .await?;
        self.sign_off(&duc, cr.id, sign(Conclusion::Pass, None))
            .await?;
        // Another owner's system, withdrawn.
        let cr = self
            .file_change(
                &thu,
                file(
                    "THUE-TINH",
                    ChangeKind::Software,
                    "Cập nhật bản vá bảo mật hệ điều hành",
                    "Áp dụng bản vá tháng 11.",
                    git(&oid("demo-thue-commit"), &oid("demo-thue-tree")),
                ),
            )
            .await?;
        self.act_on_change(Some(&thu), cr.id, Command::Withdraw)
            .await?;
        self.seed_periodic_re_review(&hoa).await?;
        self.seed_remediation(&an, &thu, &hoa, &duc).await?;
        self.seed_incident_clocks(&an, &hoa).await?;
        self.seed_major_change(&an).await
    }

    /// The periodic re-review of the provincial procedures system: the review sweep opens it
    /// (the system's re-review is overdue) and PA05 concludes it with a pass, so the system has a
    /// periodic check (*Định kỳ*) in the annual report and its next re-review is a year away.
    async fn seed_periodic_re_review(&self, hoa: &Principal) -> AppResult<()> {
        self.review_sweep(crate::now()).await?;
        let sys = gate::system_by_code(&self.db, "TTHC-TINH")
            .await?
            .ok_or_else(|| AppError::Internal("demo system TTHC-TINH is missing".into()))?;
        let re_review = changes::one_of_system_of_kind(&self.db, sys.id, ChangeKind::ReReview)
            .await?
            .ok_or_else(|| AppError::Internal("the review sweep opened no re-review".into()))?;
        self.sign_off(
            hoa,
            re_review.id,
            wire::NewSignOff {
                conclusion: Conclusion::Pass.as_str().into(),
                checklist: answers(self, None),
                findings: vec![],
                conditions: vec![],
                second_factor_code: None,
            },
        )
        .await?;
        Ok(())
    }

    /// Decree 331/2026 Art. 31.2.c: a major change (architecture, technology) submitted with its
    /// external assessment recorded, awaiting PA05's evaluation.
    async fn seed_major_change(&self, an: &Principal) -> AppResult<()> {
        let cr = self
            .file_change(
                an,
                wire::NewChangeRequest {
                    system: "TTHC-TINH".into(),
                    kind: ChangeKind::Software.as_str().into(),
                    title: "Chuyển cổng dịch vụ công sang nền tảng điện toán đám mây của tỉnh".into(),
                    description: "Thay đổi kiến trúc triển khai (máy chủ vật lý sang máy ảo) và nền tảng công nghệ (hệ quản trị cơ sở dữ liệu mới).".into(),
                    environments: vec!["production".into()],
                    subjects: vec![wire::WireSubject::GitCommit {
                        commit: oid("demo-major-commit"),
                        tree: oid("demo-major-tree"),
                    }],
                    components: vec![],
                    git: None,
                    remediates_incident: None,
                    major_change: vec!["architecture".into(), "technology".into()],
                },
            )
            .await?;
        self.act_on_change(Some(an), cr.id, Command::Submit).await?;
        let today = self.today();
        self.record_external_assessment(
            an,
            cr.id,
            wire::NewExternalAssessment {
                organisation: "Trung tâm Giám sát an toàn không gian mạng quốc gia".into(),
                licence: "Tổ chức được Bộ Công an chỉ định đánh giá an ninh mạng".into(),
                report_ref: "Báo cáo đánh giá số 45/BC-NCSC".into(),
                assessed_on: today - chrono::Duration::days(2),
            },
        )
        .await?;
        // A second one still waits for its external assessment: the change page offers the
        // form, and a passing sign-off is refused until it is recorded.
        let cr = self
            .file_change(
                an,
                wire::NewChangeRequest {
                    system: "DAT-DAI".into(),
                    kind: ChangeKind::Software.as_str().into(),
                    title: "Mở rộng cơ sở dữ liệu đất đai cho cấp xã khai thác".into(),
                    description: "Mở rộng phạm vi người dùng tới cán bộ địa chính cấp xã và thêm chức năng tra cứu biến động.".into(),
                    environments: vec!["production".into()],
                    subjects: vec![wire::WireSubject::GitCommit {
                        commit: oid("demo-major-scope-commit"),
                        tree: oid("demo-major-scope-tree"),
                    }],
                    components: vec![],
                    git: None,
                    remediates_incident: None,
                    major_change: vec!["function".into(), "scope".into()],
                },
            )
            .await?;
        self.act_on_change(Some(an), cr.id, Command::Submit).await?;
        Ok(())
    }

    /// Incident clocks counting from detection: a serious incident detected 20 hours before its
    /// report (4 hours left for its initial notice; resolved, so the gate stays open) with its
    /// report sent within the 72 hours, and a personal-data breach detected 30 hours ago whose
    /// A05 notice is still due.
    async fn seed_incident_clocks(&self, an: &Principal, hoa: &Principal) -> AppResult<()> {
        let now = crate::now();
        let serious = self
            .report_incident(
                an,
                "DAT-DAI",
                wire::NewIncident {
                    kind: IncidentKind::AbnormalAccess.as_str().into(),
                    severity: Severity::High.as_str().into(),
                    summary: "Phát hiện truy cập bất thường vào cơ sở dữ liệu đất đai ngoài giờ hành chính từ một địa chỉ IP lạ.".into(),
                    detected_at: Some(now - chrono::Duration::hours(20)),
                    national_security: false,
                },
            )
            .await?;
        self.record_incident_notice(
            an,
            serious.id,
            wire::NewIncidentNotice {
                kind: "report".into(),
                sent_at: None,
                recipient: "Phòng PA05 – Công an tỉnh".into(),
                channel: "văn bản".into(),
                document_number: Some("27/BC-STNMT".into()),
            },
        )
        .await?;
        self.resolve_incident(hoa, serious.id).await?;
        let breach = self.report_incident(
            an,
            "TTHC-TINH",
            wire::NewIncident {
                kind: IncidentKind::DataBreach.as_str().into(),
                severity: Severity::Medium.as_str().into(),
                summary: "Lộ danh sách hồ sơ thủ tục hành chính (họ tên, số định danh) qua một đường dẫn chia sẻ công khai.".into(),
                detected_at: Some(now - chrono::Duration::hours(30)),
                national_security: false,
            },
        )
        .await?;
        // Decree 356/2025: what the notice to A05 will say, and the confirmation record.
        self.record_breach(
            an,
            breach.id,
            wire::BreachRecord {
                description: Some("Một đường dẫn chia sẻ công khai trỏ tới danh sách hồ sơ thủ tục hành chính đã bị truy cập từ bên ngoài.".into()),
                data_categories: Some("Họ tên, số định danh cá nhân, số điện thoại".into()),
                subjects: Some(1200),
                consequences: Some("Nguy cơ bị lợi dụng để lừa đảo qua điện thoại.".into()),
                measures: Some("Đã gỡ đường dẫn, đổi quyền chia sẻ, rà soát nhật ký truy cập.".into()),
                confirmation_ref: Some("Biên bản xác nhận số 03/BB-STNMT".into()),
            },
        )
        .await?;
        Ok(())
    }

    /// Someone who left and more incidents (issue 11): an owner who reported an incident, then
    /// left and was deactivated (his name stays on what he did; the admin's list shows him
    /// inactive with the reason); incidents of every kind and several severities and states, so
    /// that the list's filters and its search without diacritics ("nang cap") find something.
    /// None of the open ones is of a blocking severity: the demo's gates stay as they were.
    async fn seed_people(&self, op: &Principal) -> AppResult<()> {
        let (leaver, name) = ("hoang.van.nam", "Hoàng Văn Nam");
        self.create_user(
            op,
            wire::NewUser {
                username: leaver.into(),
                display_name: name.into(),
                org: "STNMT".into(),
                role: "owner".into(),
            },
        )
        .await?;
        let nam = self.principal(leaver).await?;
        let thu = self.principal("pham.thi.thu").await?;
        let an = self.principal("nguyen.van.an").await?;
        let hoa = self.principal("tran.thi.hoa").await?;
        let malware = self
            .report_incident(
                &nam,
                "TTHC-TINH",
                wire::NewIncident {
                    kind: IncidentKind::Malware.as_str().into(),
                    severity: Severity::Low.as_str().into(),
                    summary: "Phần mềm diệt virus phát hiện và cách ly mã độc trên máy trạm của cán bộ một cửa.".into(),
                    detected_at: None,
                    national_security: false,
                },
            )
            .await?;
        self.resolve_incident(&hoa, malware.id).await?;
        for (who, system, kind, severity, summary) in [
            (
                &thu,
                "THUE-TINH",
                IncidentKind::Vulnerability,
                Severity::Medium,
                "Cần nâng cấp thư viện OpenSSL trên máy chủ ứng dụng: phiên bản đang dùng có lỗ hổng đã công bố.",
            ),
            (
                &an,
                "DAT-DAI",
                IncidentKind::Other,
                Severity::Low,
                "Mất kết nối đến cơ sở dữ liệu quốc gia về dân cư trong 40 phút do sự cố đường truyền.",
            ),
        ] {
            self.report_incident(
                who,
                system,
                wire::NewIncident {
                    kind: kind.as_str().into(),
                    severity: severity.as_str().into(),
                    summary: summary.into(),
                    detected_at: None,
                    national_security: false,
                },
            )
            .await?;
        }
        self.deactivate_user(
            op,
            leaver,
            "Nghỉ việc từ 01/12/2026 theo Quyết định số 215/QĐ-STNMT; thu hồi tài khoản theo yêu cầu của danh mục kiểm tra.",
        )
        .await?;
        Ok(())
    }

    /// The remediation loop, every state of it: a change sent back with findings and edited
    /// since; conditions of an approval fulfilled (awaiting PA05), verified, and one overdue that
    /// closes a system's gate; a finding of a failed evaluation fulfilled and reopened by PA05.
    async fn seed_remediation(
        &self,
        an: &Principal,
        thu: &Principal,
        hoa: &Principal,
        duc: &Principal,
    ) -> AppResult<()> {
        use crate::remediation::Raise;
        use changegate_domain::change::Severity;
        use changegate_domain::remediation::RemediationKind;
        let items = |cr: i64, state: RemediationState| crate::remediation::RemediationFilter {
            change_request: Some(cr),
            state: Some(state.as_str().into()),
            ..Default::default()
        };
        // The approved TTHC-TINH change (the first filed): its condition fulfilled, awaiting PA05.
        let approved = self
            .list_changes(
                an,
                &crate::changes::ChangeFilter {
                    system: Some("TTHC-TINH".into()),
                    state: Some(CrState::Approved.as_str().into()),
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .await?;
        if let Some(cr) = approved.items.first() {
            for it in self
                .list_remediations(an, &items(cr.id, RemediationState::Open))
                .await?
                .items
            {
                self.fulfil_remediation(an, it.id, "Đã rà soát nhật ký truy cập 30 ngày đầu vận hành; không có truy cập bất thường. Biên bản rà soát số 12/BB-STNMT.".into())
                    .await?;
            }
        }
        // The rejected DAT-DAI change: its finding fulfilled, then reopened by PA05.
        let rejected = self
            .list_changes(
                an,
                &crate::changes::ChangeFilter {
                    system: Some("DAT-DAI".into()),
                    state: Some(CrState::Rejected.as_str().into()),
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .await?;
        if let Some(cr) = rejected.items.first() {
            for it in self
                .list_remediations(an, &items(cr.id, RemediationState::Open))
                .await?
                .items
            {
                self.fulfil_remediation(an, it.id, "Đã đổi mật khẩu tài khoản admin.".into())
                    .await?;
                self.verify_remediation(hoa, it.id, false, "Chưa có bằng chứng: cần ảnh chụp cấu hình và nhật ký đổi mật khẩu; tài khoản mặc định cần được vô hiệu hóa, không chỉ đổi mật khẩu.".into())
                    .await?;
            }
        }
        // THUE-TINH: a change sent back with findings, edited since (a draft to resubmit).
        let c = wire::NewChangeRequest {
            system: "THUE-TINH".into(),
            kind: ChangeKind::Software.as_str().into(),
            title: "Nâng cấp cổng tra cứu nghĩa vụ thuế của công dân".into(),
            description: "Tra cứu theo số định danh cá nhân qua Cơ sở dữ liệu quốc gia về dân cư."
                .into(),
            environments: vec!["production".into()],
            subjects: vec![wire::WireSubject::GitCommit {
                commit: oid("demo-thue-portal-commit"),
                tree: oid("demo-thue-portal-tree"),
            }],
            components: vec![],
            git: None,
            remediates_incident: None,
            major_change: vec![],
        };
        let cr = self.file_change(thu, c).await?;
        self.act_on_change(Some(thu), cr.id, Command::Submit)
            .await?;
        let note = wire::Note {
            note: "Hồ sơ chưa đủ để đánh giá; bổ sung theo các phát hiện dưới đây rồi gửi lại.".into(),
            findings: vec![
                wire::WireFinding {
                    severity: Severity::High.as_str().into(),
                    text: "Chưa có kết quả quét lỗ hổng, kiểm tra xâm nhập của cổng tra cứu mới.".into(),
                    item: Some("vuln-scan-pentest".into()),
                },
                wire::WireFinding {
                    severity: Severity::Medium.as_str().into(),
                    text: "Tài liệu thiết kế chưa mô tả luồng tra cứu qua\nCơ sở dữ liệu quốc gia về dân cư.".into(),
                    item: Some("design-documented".into()),
                },
            ],
        };
        self.request_changes(duc, cr.id, note).await?;
        let edit = wire::EditChangeRequest {
            description: Some("Tra cứu theo số định danh cá nhân qua Cơ sở dữ liệu quốc gia về dân cư; chỉ cán bộ được phân quyền, có nhật ký truy cập. Kèm kết quả quét lỗ hổng ngày 28/11/2026.".into()),
            subjects: Some(vec![wire::WireSubject::GitCommit {
                commit: oid("demo-thue-portal-commit-2"),
                tree: oid("demo-thue-portal-tree-2"),
            }]),
            ..Default::default()
        };
        self.edit_change(thu, cr.id, edit).await?;
        // THUE-TINH: an approval whose high condition is overdue: the gate is closed
        // (condition_overdue) until PA05 verifies it. Only the demo raises an item already due.
        let c = wire::NewChangeRequest {
            system: "THUE-TINH".into(),
            kind: ChangeKind::Hardware.as_str().into(),
            title: "Bổ sung thiết bị tường lửa cho phân vùng máy chủ".into(),
            description: "Lắp đặt tường lửa thế hệ mới trước phân vùng máy chủ cơ sở dữ liệu."
                .into(),
            environments: vec!["production".into()],
            subjects: vec![wire::WireSubject::Artifact {
                digest: format!(
                    "sha256:{}",
                    hex::encode(Sha256::digest(b"demo-thue-firewall"))
                ),
            }],
            components: vec![],
            git: None,
            remediates_incident: None,
            major_change: vec![],
        };
        let cr = self.file_change(thu, c).await?;
        self.act_on_change(Some(thu), cr.id, Command::Submit)
            .await?;
        let mut pass = wire::NewSignOff {
            conclusion: Conclusion::Pass.as_str().into(),
            checklist: answers(self, None),
            findings: vec![],
            conditions: vec![],
            second_factor_code: None,
        };
        pass.conditions = vec![wire::WireCondition::Full(wire::ConditionSpec {
            text: "Cấu hình nhật ký tường lửa gửi về hệ thống giám sát tập trung của tỉnh.".into(),
            severity: Some(Severity::Low.as_str().into()),
            due: None,
        })];
        self.sign_off(hoa, cr.id, pass).await?;
        let sys = crate::registry::system_by_code(&self.db, "THUE-TINH").await?;
        let tx = self.begin().await?;
        let overdue = tx.at().with_timezone(&self.tz).date_naive() - chrono::Duration::days(3);
        let raise = Raise {
            kind: RemediationKind::Condition,
            severity: Severity::High,
            text: "Bổ sung hồ sơ CO/CQ của thiết bị trước khi vận hành.",
            item: None,
            due: Some(overdue),
        };
        self.raise_items(&tx, hoa, &sys, cr.id, cr.round, vec![raise])
            .await?;
        tx.commit().await?;
        // Its low condition: fulfilled by the owner and verified by PA05.
        for it in self
            .list_remediations(thu, &items(cr.id, RemediationState::Open))
            .await?
            .items
        {
            if it.severity == Severity::Low.as_str() {
                self.fulfil_remediation(thu, it.id, "Đã cấu hình gửi nhật ký về hệ thống giám sát của tỉnh (ảnh chụp cấu hình kèm theo).".into())
                    .await?;
                self.verify_remediation(
                    hoa,
                    it.id,
                    true,
                    "Đã kiểm tra trên hệ thống giám sát.".into(),
                )
                .await?;
            }
        }
        Ok(())
    }
}
