//! `changegate-bench-seed`: fills a database with a realistic world for the benchmark.
//!
//! The people, systems and two change requests whose commits the benchmark asks about are made
//! through the real use cases (so they have their audit events). The bulk of the change requests
//! is then inserted directly with sea-orm `insert_many`, in batches inside transactions, so that
//! 100,000 rows take seconds rather than the hours that argon2 and the audit chain would cost.
//!
//! With `--review-systems N` it also registers N more systems directly (a mix of security levels
//! whose periodic re-reviews fall due over their interval, some overdue), for timing the review
//! sweep; with `--audit-events N` it appends N events to the audit log as a valid hash chain (in
//! large transactions, hashed with the domain's chain function), for timing `audit verify`.
//!
//! Prints `key=value` lines for `scripts/bench`: `token` (the CI pipeline's), `owner_token`,
//! `reviewer_token`, `reviewer_totp_secret` (the reviewer's second factor), `system`, `env`, `commit`, `tree`, `deny_commit`, `bulk_seconds`,
//! `systems_due` (re-reviews within the first reminder or overdue), `audit_head`.

use anyhow::Context;
use changegate_api as wire;
use changegate_app::auth::principal_of;
use changegate_app::registry::user_by_name;
use changegate_app::{App, Principal};
use changegate_domain::PolicyPack;
use changegate_domain::change::Command;
use changegate_domain::gate::SystemStatus;
use changegate_domain::ids::SubjectKind;
use changegate_domain::{ChangeKind, CrState};
use changegate_store::entity::{change_request as cr, cr_subject, system};
use changegate_store::sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use changegate_store::types::{JsonText, Text};
use chrono::{Duration, Utc};
use clap::Parser;
use sha2::{Digest, Sha256};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Seed a changegate database with many change requests for benchmarking.")]
struct Args {
    /// Database URL (`sqlite://PATH?mode=rwc` or `postgres://…`).
    #[arg(long)]
    database_url: String,
    /// How many change requests to bulk-insert.
    #[arg(long, default_value_t = 100_000)]
    change_requests: usize,
    /// How many systems (the first one is the hot one).
    #[arg(long, default_value_t = 20)]
    systems: usize,
    /// Share of the change requests that belong to the hot system, in percent.
    #[arg(long, default_value_t = 40)]
    hot_percent: u64,
    /// Rows per `insert_many` statement.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Statements per transaction.
    #[arg(long, default_value_t = 10)]
    batches_per_tx: usize,
    /// Systems to register directly for the review sweep (beyond `--systems`).
    #[arg(long, default_value_t = 0)]
    review_systems: usize,
    /// Share of those systems whose re-review is overdue (up to 60 days), in percent; the others
    /// fall due evenly over their level's interval (12 months for levels 3-4, 6 for level 5).
    #[arg(long, default_value_t = 5)]
    overdue_percent: u64,
    /// Register a webhook for every event (so that jobs render and queue their notifications).
    #[arg(long)]
    webhook: bool,
    /// Events to append to the audit log as a valid hash chain.
    #[arg(long, default_value_t = 0)]
    audit_events: usize,
}

/// The hot system: the one the benchmark asks the gate about.
const HOT: &str = "TTHC-TINH";

/// A tiny deterministic generator (xorshift64*): reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn oid(seed: &str) -> String {
    hex::encode(&Sha256::digest(seed.as_bytes())[..20])
}

fn digest(seed: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(seed.as_bytes())))
}

const VERBS: [&str; 8] = [
    "Nâng cấp",
    "Cập nhật bản vá bảo mật cho",
    "Thay đổi cấu hình",
    "Triển khai mới",
    "Tối ưu hiệu năng",
    "Sửa lỗi",
    "Bổ sung chức năng cho",
    "Chuyển đổi hạ tầng của",
];
const OBJECTS: [&str; 10] = [
    "mô-đun tra cứu thông tin công dân",
    "cổng dịch vụ công trực tuyến",
    "hệ quản trị cơ sở dữ liệu PostgreSQL",
    "máy chủ ứng dụng một cửa điện tử",
    "dịch vụ đồng bộ dữ liệu với Cơ sở dữ liệu quốc gia về dân cư",
    "tường lửa vùng DMZ",
    "mô-đun xác thực hai lớp cho cán bộ",
    "hệ thống sao lưu dữ liệu",
    "danh sách địa chỉ IP được phép truy cập",
    "dịch vụ ký số văn bản",
];
const REASONS: [&str; 6] = [
    "theo yêu cầu của Công an tỉnh (PA05) sau đợt kiểm tra định kỳ.",
    "để khắc phục lỗ hổng được cảnh báo trong bản tin an ninh mạng tháng này.",
    "nhằm đáp ứng yêu cầu bảo đảm an toàn hệ thống thông tin cấp độ 3.",
    "do máy chủ cũ hết thời hạn bảo hành.",
    "để chấm dứt việc tra cứu dữ liệu dân cư bằng tệp Excel và VBScript tự viết.",
    "theo kế hoạch chuyển đổi số của tỉnh năm nay.",
];
const KINDS: [ChangeKind; 5] = [
    ChangeKind::Software,
    ChangeKind::Software,
    ChangeKind::Configuration,
    ChangeKind::Hardware,
    ChangeKind::Network,
];

/// A state with its share in per mille (the rest of the thousand is `approved`).
const STATES: [(CrState, u64); 7] = [
    (CrState::Rejected, 200),
    (CrState::Withdrawn, 150),
    (CrState::Submitted, 200),
    (CrState::Expired, 80),
    (CrState::Revoked, 20),
    (CrState::Draft, 50),
    (CrState::Approved, 300),
];

fn state(r: &mut Rng) -> CrState {
    let mut x = r.below(1000);
    for (s, share) in STATES {
        if x < share {
            return s;
        }
        x -= share;
    }
    CrState::Approved
}

struct World {
    token: String,
    owner_token: String,
    reviewer_token: String,
    reviewer_totp_secret: String,
    commit: String,
    tree: String,
    deny_commit: String,
    owner_id: i64,
}

fn answers(pack: &PolicyPack) -> Vec<wire::ItemAnswer> {
    pack.checklist
        .iter()
        .map(|i| wire::ItemAnswer {
            item: i.id.clone(),
            result: if i.id == "hardware-security" {
                "na"
            } else {
                "pass"
            }
            .into(),
            note: String::new(),
        })
        .collect()
}

async fn principal(app: &App, username: &str) -> anyhow::Result<Principal> {
    let u = user_by_name(&app.db, username).await?;
    Ok(principal_of(&app.db, &u).await?)
}

/// Organisations, people, systems and the two known change requests, through the use cases.
async fn world(app: &App, systems: usize) -> anyhow::Result<World> {
    let op = Principal::operator();
    for (code, name, kind) in [
        ("STNMT", "Sở Tài nguyên và Môi trường", "owner"),
        ("PA05", "Công an tỉnh – Phòng PA05", "reviewer"),
        ("STTTT", "Sở Thông tin và Truyền thông", "inspector"),
    ] {
        app.create_organisation(
            &op,
            wire::NewOrganisation {
                code: code.into(),
                name: name.into(),
                kind: kind.into(),
            },
        )
        .await
        .with_context(|| format!("organisation {code}"))?;
    }
    for (username, display_name, org, role) in [
        ("nguyen.van.an", "Nguyễn Văn An", "STNMT", "owner"),
        ("tran.thi.hoa", "Trần Thị Hoa", "PA05", "reviewer"),
        (
            "ci.stnmt",
            "CI – Sở Tài nguyên và Môi trường",
            "STNMT",
            "ci",
        ),
    ] {
        app.create_user(
            &op,
            wire::NewUser {
                username: username.into(),
                display_name: display_name.into(),
                org: org.into(),
                role: role.into(),
            },
        )
        .await
        .with_context(|| format!("user {username}"))?;
    }
    let token_of = |user: &'static str| {
        app.create_token(
            &op,
            user,
            wire::NewToken {
                name: "bench".into(),
                expires_in_days: Some(30),
            },
        )
    };
    let token = token_of("ci.stnmt").await.context("token")?.token;
    let owner_token = token_of("nguyen.van.an").await.context("token")?.token;
    let reviewer_token = token_of("tran.thi.hoa").await.context("token")?.token;
    // The reviewer signs off through the API, which asks their second factor.
    let reviewer_totp_secret = app
        .enrol_second_factor_for_demo("tran.thi.hoa")
        .await
        .context("second factor")?;
    let last_review = Utc::now().date_naive() - Duration::days(100);
    for i in 0..systems {
        let code = if i == 0 {
            HOT.to_owned()
        } else {
            format!("HT-{i:02}")
        };
        app.create_system(
            &op,
            wire::NewSystem {
                code: code.clone(),
                name: if i == 0 {
                    "Hệ thống thông tin giải quyết thủ tục hành chính tỉnh".into()
                } else {
                    format!("Hệ thống thông tin chuyên ngành số {i}")
                },
                owner_org: "STNMT".into(),
                operating_unit: "Trung tâm Công nghệ thông tin – Sở Tài nguyên và Môi trường"
                    .into(),
                level: 3,
                population_db: true,
                environments: vec!["production".into(), "staging".into()],
                components: vec![wire::Component {
                    kind: "software".into(),
                    name: "PostgreSQL".into(),
                    version: "15.6".into(),
                }],
                last_review: Some(last_review),
            },
        )
        .await
        .with_context(|| format!("system {code}"))?;
    }
    let owner = principal(app, "nguyen.van.an").await?;
    let reviewer = principal(app, "tran.thi.hoa").await?;
    // Built from JSON, as an API client sends it: optional fields added later keep their defaults.
    let file = |title: &str, commit: &str, tree: &str| {
        serde_json::from_value::<wire::NewChangeRequest>(serde_json::json!({
            "system": HOT,
            "kind": "software",
            "title": title,
            "description": "Thay đổi dùng để đo hiệu năng của cổng kiểm soát triển khai.",
            "environments": ["production"],
            "subjects": [{ "type": "git_commit", "commit": commit, "tree": tree }],
        }))
    };
    let (commit, tree) = (oid("bench-approved-commit"), oid("bench-approved-tree"));
    let c = app
        .file_change(
            &owner,
            file(
                "Nâng cấp mô-đun tra cứu thông tin công dân lên phiên bản 2.3",
                &commit,
                &tree,
            )?,
        )
        .await
        .context("file the approved change")?;
    app.act_on_change(Some(&owner), c.id, Command::Submit)
        .await
        .context("submit the approved change")?;
    // Through the second factor, as a reviewer would: a code of the step before, so that the
    // codes of this step and the next stay usable by a benchmark signing off through the API.
    let key = changegate_app::totp::base32_decode(&reviewer_totp_secret).context("secret")?;
    let code = changegate_app::totp::code_at(&key, Utc::now().timestamp() - 30);
    app.sign_off_with_code(
        &reviewer,
        c.id,
        wire::NewSignOff {
            conclusion: "pass".into(),
            checklist: answers(&app.pack),
            findings: vec![],
            conditions: vec![],
            second_factor_code: Some(code),
        },
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    )
    .await
    .context("sign off the approved change")?;
    let deny_commit = oid("bench-pending-commit");
    let c = app
        .file_change(
            &owner,
            file(
                "Thay đổi cấu hình danh sách địa chỉ IP được phép truy cập",
                &deny_commit,
                &oid("bench-pending-tree"),
            )?,
        )
        .await
        .context("file the pending change")?;
    app.act_on_change(Some(&owner), c.id, Command::Submit)
        .await
        .context("submit the pending change")?;
    Ok(World {
        token,
        owner_token,
        reviewer_token,
        reviewer_totp_secret,
        commit,
        tree,
        deny_commit,
        owner_id: owner.user_id,
    })
}

/// A subject row before its change request has an id: kind, commit, tree, digest.
type SubjectCols = (SubjectKind, Option<String>, Option<String>, Option<String>);

struct Planned {
    row: cr::ActiveModel,
    subjects: Vec<SubjectCols>,
}

fn plan(r: &mut Rng, n: usize, system_id: i64, owner: i64) -> Planned {
    let now = Utc::now();
    let st = state(r);
    let created = now - Duration::minutes(r.below(60 * 24 * 700) as i64 + 60 * 24 * 31);
    let (approved_at, valid_until) = match st {
        // Approved within the last 22 days, so valid for 8 more at least: the steady state of a
        // server that runs expire-approvals every 10 minutes has sent the warnings of the last 7
        // days already, and the run that `serve` makes at start finds nothing to do. (A database
        // that never ran it sends a one-off burst of warnings, which is not what is measured.)
        CrState::Approved => {
            let at = now - Duration::minutes(r.below(60 * 24 * 22) as i64);
            (Some(at), Some(at + Duration::days(30)))
        }
        CrState::Expired | CrState::Revoked => {
            let at = created + Duration::days(2);
            (Some(at), Some(at + Duration::days(30)))
        }
        _ => (None, None),
    };
    let round = match st {
        CrState::Draft => 0,
        CrState::Submitted => 1,
        _ => 1 + (r.below(4) == 0) as i32,
    };
    let envs: &[&str] = r.pick::<&[&str]>(&[
        &["production"][..],
        &["production"][..],
        &["production", "staging"][..],
        &["staging"][..],
    ]);
    let object = *r.pick(&OBJECTS);
    let kind = *r.pick(&KINDS);
    let components = if kind == ChangeKind::Hardware {
        vec![wire::ComponentChange {
            name: "Máy chủ Dell PowerEdge R740".into(),
            before: "R740".into(),
            after: "R760".into(),
        }]
    } else {
        vec![]
    };
    let row = cr::ActiveModel {
        system_id: Set(system_id),
        kind: Set(kind.into()),
        title: Set(format!("{} {} (đợt {n})", r.pick(&VERBS), object)),
        description: Set(format!(
            "Thực hiện thay đổi đối với {object} {}",
            r.pick(&REASONS)
        )),
        state: Set(st.into()),
        environments: Set(JsonText(envs.iter().map(|e| (*e).to_owned()).collect())),
        components: Set(JsonText(components)),
        filed_by: Set(owner),
        editors: Set(JsonText(vec![owner])),
        round: Set(round),
        approved_at: Set(approved_at),
        valid_until: Set(valid_until),
        created_at: Set(created),
        updated_at: Set(approved_at.unwrap_or(created)),
        // Columns added later (nullable) are left to the database.
        ..Default::default()
    };
    let git = || {
        (
            SubjectKind::GitCommit,
            Some(oid(&format!("bench-commit-{n}"))),
            Some(oid(&format!("bench-tree-{n}"))),
            None,
        )
    };
    let art = || {
        (
            SubjectKind::Artifact,
            None,
            None,
            Some(digest(&format!("bench-artifact-{n}"))),
        )
    };
    let subjects = match r.below(20) {
        0 | 1 => vec![art()],
        2 => vec![git(), art()],
        _ => vec![git()],
    };
    Planned { row, subjects }
}

async fn bulk(app: &App, a: &Args, owner: i64) -> anyhow::Result<()> {
    let ids: Vec<i64> = system::Entity::find()
        .order_by_asc(system::Column::Id)
        .all(&app.db)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let hot = system::Entity::find()
        .filter(system::Column::Code.eq(HOT))
        .one(&app.db)
        .await?
        .context("the hot system is missing")?
        .id;
    let others: Vec<i64> = ids.into_iter().filter(|id| *id != hot).collect();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut done = 0;
    while done < a.change_requests {
        let txn = begin(app).await?;
        for _ in 0..a.batches_per_tx {
            let m = a.batch.min(a.change_requests - done);
            if m == 0 {
                break;
            }
            let planned: Vec<Planned> = (done..done + m)
                .map(|n| {
                    let sys = if others.is_empty() || r.below(100) < a.hot_percent {
                        hot
                    } else {
                        *r.pick(&others)
                    };
                    plan(&mut r, n, sys, owner)
                })
                .collect();
            let mut keys = cr::Entity::insert_many(planned.iter().map(|p| p.row.clone()))
                .exec_with_returning_keys(&txn)
                .await?;
            anyhow::ensure!(keys.len() == m, "{} ids for {m} rows", keys.len());
            // Ids are handed out in row order; RETURNING's order is not promised, so sort.
            keys.sort_unstable();
            let subjects: Vec<cr_subject::ActiveModel> = planned
                .iter()
                .zip(keys)
                .flat_map(|(p, id)| {
                    let system_id = p.row.system_id.clone();
                    p.subjects
                        .iter()
                        .map(move |(kind, commit, tree, dg)| cr_subject::ActiveModel {
                            change_request_id: Set(id),
                            system_id: system_id.clone(),
                            kind: Set(Text(*kind)),
                            commit_id: Set(commit.clone()),
                            tree_id: Set(tree.clone()),
                            digest: Set(dg.clone()),
                            ..Default::default()
                        })
                })
                .collect();
            // Subjects per CR are at most two: split so a statement stays under the variable limit.
            for chunk in subjects.chunks(a.batch) {
                cr_subject::Entity::insert_many(chunk.iter().cloned())
                    .exec_without_returning(&txn)
                    .await?;
            }
            done += m;
        }
        txn.commit().await?;
    }
    Ok(())
}

/// A transaction for bulk inserts. On SQLite its connection gets a large page cache (256 MiB):
/// the indexes on random commit ids would otherwise spill the pool's small cache to disk again
/// and again. Memory does not matter in the seeder.
async fn begin(app: &App) -> anyhow::Result<DatabaseTransaction> {
    let txn = app.db.begin().await?;
    if txn.get_database_backend() == DbBackend::Sqlite {
        txn.execute_unprepared("PRAGMA cache_size = -262144")
            .await?;
    }
    Ok(txn)
}

/// Registers `a.review_systems` systems directly (no audit events, like the bulk change
/// requests). Levels: 70% level 3, 25% level 4, 5% level 5. `a.overdue_percent` of them are
/// overdue by 1 to 60 days; the others fall due evenly over their level's re-review interval, as
/// when evaluations happened all through the year. Returns how many fall due within the first
/// reminder (the pack's largest offset) or are overdue: the systems a first sweep must act on.
async fn bulk_systems(app: &App, a: &Args) -> anyhow::Result<usize> {
    let org = changegate_store::entity::organisation::Entity::find()
        .filter(changegate_store::entity::organisation::Column::Code.eq("STNMT"))
        .one(&app.db)
        .await?
        .context("organisation STNMT is missing")?
        .id;
    let first_offset = i64::from(
        app.pack
            .reminders
            .days_before
            .iter()
            .copied()
            .max()
            .unwrap_or(0),
    );
    let now = Utc::now();
    let today = now.date_naive();
    let horizon = now + Duration::days(first_offset);
    let months_of = |level: i64| -> anyhow::Result<u32> {
        Ok(app
            .pack
            .level(changegate_domain::SecurityLevel::new(level)?)
            .re_review_months)
    };
    let months_by_level = [months_of(3)?, months_of(4)?, months_of(5)?];
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let mut due_soon = 0;
    let mut done = 0;
    while done < a.review_systems {
        let txn = begin(app).await?;
        for _ in 0..a.batches_per_tx {
            let m = a.batch.min(a.review_systems - done);
            if m == 0 {
                break;
            }
            let rows: Vec<system::ActiveModel> = (done..done + m)
                .map(|n| {
                    let level: i16 = match r.below(100) {
                        0..70 => 3,
                        70..95 => 4,
                        _ => 5,
                    };
                    let months = months_by_level[usize::from(level as u8 - 3)];
                    let due_day = if r.below(100) < a.overdue_percent {
                        today - Duration::days(1 + r.below(60) as i64)
                    } else {
                        today + Duration::days(1 + r.below(u64::from(months) * 30) as i64)
                    };
                    let last = due_day
                        .checked_sub_months(chrono::Months::new(months))
                        .unwrap_or(due_day);
                    let due = changegate_app::registry::review_due(months, last);
                    if due.is_some_and(|d| d <= horizon) {
                        due_soon += 1;
                    }
                    system::ActiveModel {
                        code: Set(format!("HT-{:06}", n + 1)),
                        name: Set(format!(
                            "Hệ thống thông tin {} số {}",
                            r.pick(&OBJECTS),
                            n + 1
                        )),
                        owner_org_id: Set(org),
                        operating_unit: Set("Trung tâm Công nghệ thông tin".into()),
                        level: Set(level),
                        population_db: Set(true),
                        environments: Set(JsonText(vec!["production".into(), "staging".into()])),
                        components: Set(JsonText(vec![])),
                        status: Set(SystemStatus::Active.into()),
                        last_evaluated_on: Set(Some(last)),
                        next_review_due: Set(due),
                        created_at: Set(now),
                        updated_at: Set(now),
                        ..Default::default()
                    }
                })
                .collect();
            system::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            done += m;
        }
        txn.commit().await?;
    }
    Ok(due_soon)
}

/// Appends `a.audit_events` events after the current head as a valid hash chain: what the
/// change requests' lives would have recorded (filed, submitted, signed off), hashed with the
/// domain's [`chain_hash`] and inserted in large transactions that hold the head row.
async fn bulk_audit(app: &App, a: &Args) -> anyhow::Result<i64> {
    use changegate_domain::audit::{AuditRecord, chain_hash};
    use changegate_store::entity::{audit_event, audit_head};
    use changegate_store::sea_orm::sea_query::Expr;
    let crs: Vec<(i64, i64, String)> = cr::Entity::find()
        .select_only()
        .columns([cr::Column::Id, cr::Column::SystemId, cr::Column::Title])
        .order_by_asc(cr::Column::Id)
        .limit(a.audit_events.div_ceil(3).max(1) as u64)
        .into_tuple()
        .all(&app.db)
        .await?;
    anyhow::ensure!(!crs.is_empty(), "--audit-events needs change requests");
    let codes: std::collections::HashMap<i64, String> = system::Entity::find()
        .select_only()
        .columns([system::Column::Id, system::Column::Code])
        .into_tuple::<(i64, String)>()
        .all(&app.db)
        .await?
        .into_iter()
        .collect();
    let checklist = serde_json::to_value(answers(&app.pack))?;
    let t0 = Utc::now() - Duration::days(365);
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut done = 0usize;
    let mut last = 0;
    while done < a.audit_events {
        let txn = begin(app).await?;
        changegate_store::audit::lock_head(&txn).await?;
        let (mut seq, mut prev) = changegate_store::audit::head(&txn).await?;
        for _ in 0..a.batches_per_tx {
            let m = a.batch.min(a.audit_events - done);
            if m == 0 {
                break;
            }
            let mut rows = Vec::with_capacity(m);
            for i in done..done + m {
                let (id, system_id, title) = &crs[(i / 3) % crs.len()];
                let code = codes.get(system_id).map_or("?", String::as_str);
                let (actor, actor_id, action, before, after) = match i % 3 {
                    0 => (
                        "nguyen.van.an",
                        2,
                        "change_request.file",
                        None,
                        serde_json::json!({
                            "system": code, "kind": "software", "title": title,
                            "description": format!("Thực hiện thay đổi {}", r.pick(&REASONS)),
                            "environments": ["production"],
                            "subjects": [{ "type": "git_commit", "commit": oid(&format!("ev-c-{id}")), "tree": oid(&format!("ev-t-{id}")) }],
                            "components": [], "state": "draft",
                        }),
                    ),
                    1 => (
                        "nguyen.van.an",
                        2,
                        "change_request.submit",
                        Some(r#"{"state":"draft"}"#.to_owned()),
                        serde_json::json!({ "state": "submitted", "round": 1, "valid_until": null }),
                    ),
                    _ => (
                        "tran.thi.hoa",
                        3,
                        "change_request.sign_off",
                        Some(r#"{"state":"submitted"}"#.to_owned()),
                        serde_json::json!({
                            "conclusion": "pass", "checklist": checklist, "findings": [], "conditions": [],
                            "round": 1, "state": "approved", "valid_until": t0 + Duration::days(30),
                        }),
                    ),
                };
                seq += 1;
                let at = (t0 + Duration::microseconds(i as i64 * 20_000))
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let after = after.to_string();
                let entity_id = id.to_string();
                let hash = chain_hash(
                    &prev,
                    &AuditRecord {
                        seq,
                        at: &at,
                        actor,
                        actor_id: Some(actor_id),
                        action,
                        entity: "change_request",
                        entity_id: &entity_id,
                        system_id: Some(*system_id),
                        before: before.as_deref(),
                        after: Some(&after),
                    },
                );
                prev.clone_from(&hash);
                rows.push(audit_event::ActiveModel {
                    seq: Set(seq),
                    at: Set(at),
                    actor: Set(actor.into()),
                    actor_id: Set(Some(actor_id)),
                    action: Set(action.into()),
                    entity: Set("change_request".into()),
                    entity_id: Set(entity_id),
                    system_id: Set(Some(*system_id)),
                    before: Set(before),
                    after: Set(Some(after)),
                    hash: Set(hash),
                });
            }
            audit_event::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            done += m;
        }
        audit_head::Entity::update_many()
            .col_expr(audit_head::Column::Seq, Expr::value(seq))
            .col_expr(audit_head::Column::Hash, Expr::value(prev))
            .filter(audit_head::Column::Id.eq(1))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        last = seq;
    }
    Ok(last)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.systems >= 1, "--systems must be at least 1");
    anyhow::ensure!(
        (1..=2000).contains(&a.batch),
        "--batch must be 1..=2000 (the SQLite variable limit)"
    );
    let started = Instant::now();
    let pack = PolicyPack::parse("population-db.toml", changegate_app::DEFAULT_PACK)?;
    let app = App::open(&a.database_url, pack)
        .await
        .context("cannot open the database")?;
    let w = world(&app, a.systems).await?;
    let world_s = started.elapsed().as_secs_f64();
    if a.webhook {
        app.create_webhook(
            &Principal::operator(),
            wire::NewWebhook {
                // Nothing listens there: `admin run-job` only queues, and no dispatcher runs.
                url: "http://127.0.0.1:9/changegate".into(),
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                events: vec!["*".into()],
            },
        )
        .await
        .context("webhook")?;
    }
    let t = Instant::now();
    bulk(&app, &a, w.owner_id).await?;
    let bulk_s = t.elapsed().as_secs_f64();
    eprintln!(
        "seeded {} systems and {} change requests: world {world_s:.2} s, bulk {bulk_s:.2} s ({:.0} rows/s)",
        a.systems,
        a.change_requests,
        a.change_requests as f64 / bulk_s.max(1e-9)
    );
    let t = Instant::now();
    let systems_due = bulk_systems(&app, &a).await?;
    if a.review_systems > 0 {
        eprintln!(
            "seeded {} systems for the review sweep ({systems_due} due within the first reminder or overdue) in {:.2} s",
            a.review_systems,
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    if a.audit_events > 0 {
        bulk_audit(&app, &a).await?;
        eprintln!(
            "appended {} audit events in {:.2} s",
            a.audit_events,
            t.elapsed().as_secs_f64()
        );
    }
    let (audit_head, _) = changegate_store::audit::head(&app.db).await?;
    println!("token={}", w.token);
    println!("owner_token={}", w.owner_token);
    println!("reviewer_token={}", w.reviewer_token);
    println!("reviewer_totp_secret={}", w.reviewer_totp_secret);
    println!("system={HOT}");
    println!("env=production");
    println!("commit={}", w.commit);
    println!("tree={}", w.tree);
    println!("deny_commit={}", w.deny_commit);
    println!("bulk_seconds={bulk_s:.2}");
    println!("systems_due={systems_due}");
    println!("audit_head={audit_head}");
    Ok(())
}
