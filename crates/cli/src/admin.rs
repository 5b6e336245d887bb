//! `changegate admin …` and `changegate audit …`: act directly on the server's database, as the
//! operator at the command line (recorded in the audit log as `cli:<os user>`).

use crate::DbOpts;
use crate::config;
use anyhow::{Context, bail};
use changegate_api as wire;
use changegate_app::audit::{Verified, event_view, verify_db, verify_events};
use changegate_app::{App, Principal};
use clap::Subcommand;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
#[allow(
    clippy::enum_variant_names,
    reason = "the contract names the commands create-org, create-user, …"
)]
pub enum AdminCmd {
    /// Creates an organisation.
    CreateOrg {
        /// Code (`PA05`).
        #[arg(long)]
        code: String,
        /// Name (`Công an tỉnh – Phòng PA05`).
        #[arg(long)]
        name: String,
        /// owner, reviewer or inspector.
        #[arg(long)]
        kind: String,
    },
    /// Creates a user and prints a one-time password that must be changed at first login.
    CreateUser {
        /// Username (one person).
        #[arg(long)]
        username: String,
        /// Organisation code.
        #[arg(long)]
        org: String,
        /// owner, reviewer, auditor, admin or ci.
        #[arg(long)]
        role: String,
        /// Full name (default: the username).
        #[arg(long)]
        name: Option<String>,
    },
    /// Issues an API token; the token alone is on the last line of stdout.
    CreateToken {
        /// Whose.
        #[arg(long)]
        username: String,
        /// What for.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 90d (1d-366d).
        #[arg(long, default_value = "90d")]
        expires_in: String,
    },
    /// Runs one scheduled job now: review-sweep, expire-approvals or dispatch-notifications.
    RunJob {
        /// The job.
        name: String,
    },
    /// Registers a system.
    CreateSystem {
        /// Code.
        #[arg(long)]
        code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Owner organisation code.
        #[arg(long)]
        owner_org: String,
        /// Security level 1-5.
        #[arg(long)]
        level: String,
        /// Connected to the National Population Database.
        #[arg(long)]
        population_db: bool,
        /// Environments (repeat; default production).
        #[arg(long = "env")]
        envs: Vec<String>,
        /// Operating unit.
        #[arg(long, default_value = "")]
        operating_unit: String,
        /// Date of the last evaluation (YYYY-MM-DD) of a system taken on.
        #[arg(long)]
        last_review: Option<String>,
    },
    /// Sets the IP addresses an organisation's users may sign in to the web UI from (CIDRs
    /// or single addresses); none: any address.
    SetAllowedIps {
        /// Organisation code.
        #[arg(long)]
        org: String,
        /// Allowed ranges (`10.20.0.0/16`, `203.0.113.7`, `2001:db8::/32`).
        cidrs: Vec<String>,
    },
    /// Unlocks an account locked after failed sign-ins.
    UnlockUser {
        /// Username.
        username: String,
    },
    /// Gives an account a new one-time password (a forgotten password), to be changed at the
    /// next sign-in; unlocks it and signs out its sessions. The password is on the last line.
    ResetPassword {
        /// Username.
        username: String,
    },
    /// Removes an account's second factor (a lost phone): its sessions are signed out, and a
    /// reviewer or admin enrols again at the next sign-in.
    ResetSecondFactor {
        /// Username.
        username: String,
    },
    /// Deactivates an account (someone who left): its sessions and API tokens end at once, it
    /// cannot sign in; its history stays attributed to it.
    DeactivateUser {
        /// Username.
        username: String,
        /// Why (kept with the account and in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Reactivates a deactivated account; its old sessions and tokens stay ended.
    ReactivateUser {
        /// Username.
        username: String,
    },
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verifies the hash chain and the signed checkpoints, and reports the last event they
    /// vouch for; exit 0 intact, 1 tampered.
    Verify {
        /// An export file instead of the database.
        #[arg(long)]
        file: Option<PathBuf>,
        /// More keys whose checkpoints are trusted (the JSON of /api/v1/keys, or base64 keys one
        /// per line), besides this server's signing key (read from its key file, never from the
        /// database).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Writes the log to a file (JSON lines: a head line, then one event per line).
    Export {
        /// Where.
        #[arg(long)]
        file: PathBuf,
    },
}

/// `audit verify` on the database: the hash chain, then every checkpoint signed by a trusted
/// key (this server's, from its key file, and `--public-key`), including the latest one kept in
/// `<data_dir>/audit-checkpoint.json`.
async fn verify_with_checkpoints(
    db: &DbOpts,
    public_key: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use changegate_app::audit::checkpoints::{read_anchor, verify_checkpoints, vouched_before};
    use changegate_domain::audit::ChainBreak;
    let cfg = config::load(db)?;
    let app = open(db).await?;
    let mut keys = vec![];
    if let Some(s) = changegate_app::signer::Signer::load_existing(&cfg.signing_key_path())? {
        keys.push(s.public());
    }
    if let Some(f) = public_key {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the public key file {}", f.display()))?;
        keys.extend(
            changegate_api::attestation::parse_keys(&text)
                .with_context(|| format!("{}", f.display()))?,
        );
    }
    let anchor = read_anchor(&cfg.audit_anchor_path())?;
    let tampered = |b: &ChainBreak, vouched: Option<i64>| {
        println!("audit log TAMPERED: {b}");
        match vouched {
            Some(s) => println!("the last event a signed checkpoint still vouches for: {s}"),
            None => println!("no signed checkpoint vouches for any event"),
        }
        ExitCode::FAILURE
    };
    let n = match verify_db(&app.db).await? {
        Verified::Intact(n) => n,
        Verified::Broken(b) => {
            let at = match &b {
                ChainBreak::Gap { expected, .. } => *expected,
                ChainBreak::HashMismatch { seq } => *seq,
                ChainBreak::Truncated { last, .. } => *last + 1,
                _ => i64::MAX,
            };
            return Ok(tampered(&b, vouched_before(&app.db, &keys, at).await?));
        }
    };
    match verify_checkpoints(&app.db, &keys, anchor).await? {
        Err(b) => {
            let at = match &b {
                ChainBreak::SignedMismatch { seq, .. } | ChainBreak::ForgedCheckpoint { seq } => {
                    *seq
                }
                ChainBreak::SignedBeyondEnd { last, .. } => *last + 1,
                _ => n + 1,
            };
            Ok(tampered(&b, vouched_before(&app.db, &keys, at).await?))
        }
        Ok(v) => {
            println!("audit log intact: {n} events, hash chain verified");
            match v.last {
                Some((seq, at)) => println!(
                    "signed checkpoints vouch for events 1 to {seq} (the last signed at {at}); {} event(s) after it are vouched for by the hash chain only",
                    n - seq
                ),
                None => println!(
                    "no signed checkpoint vouches for it: whoever can write the database could have rewritten it"
                ),
            }
            if v.untrusted > 0 {
                println!(
                    "{} checkpoint(s) signed by keys not trusted here were not counted (pass other replicas' keys with --public-key)",
                    v.untrusted
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open(db: &DbOpts) -> anyhow::Result<App> {
    let cfg = config::load(db)?;
    config::init_logging(&config::Config {
        log_level: "warn".into(),
        ..cfg.clone()
    });
    let mut app = App::open(&cfg.database_url()?, cfg.pack()?).await?;
    // `run-job backup` copies what the server's job would (on PostgreSQL it says to use pg_dump).
    app.backup = changegate_app::backup::Settings {
        source: cfg.sqlite_file(),
        dir: cfg.backup.dir.clone(),
        keep: cfg.backup.keep.max(1),
    };
    // Tokens issued here get the server's digest when its key is readable; otherwise the
    // server gives them one at their first use.
    let key = cfg.token_key_path();
    if key.exists() {
        app.auth.key = changegate_app::auth::TokenKey::load_or_create(&key).ok();
    }
    Ok(app)
}

fn days(s: &str) -> anyhow::Result<u32> {
    let d = humantime::parse_duration(s)
        .with_context(|| format!("--expires-in {s:?} is not a duration such as 90d"))?;
    let days = d.as_secs() / 86_400;
    if d.as_secs() % 86_400 != 0 || !(1..=366).contains(&days) {
        bail!("--expires-in {s:?} must be a whole number of days from 1d to 366d");
    }
    Ok(days as u32)
}

pub async fn run(db: DbOpts, cmd: AdminCmd) -> anyhow::Result<()> {
    let app = open(&db).await?;
    let op = Principal::operator();
    match cmd {
        AdminCmd::RunJob { name } => {
            let job =
                changegate_app::jobs::Job::parse(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let app = std::sync::Arc::new(app);
            let slot = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
            match changegate_server::scheduler::run_job(
                &app,
                job,
                slot,
                &format!("cli:{}", changegate_server::scheduler::runner_name()),
            )
            .await?
            {
                changegate_app::jobs::JobOutcome::Ran(summary) => println!("{job}: {summary}"),
                changegate_app::jobs::JobOutcome::AlreadyRun => {
                    println!("{job}: this slot already ran")
                }
            }
            return Ok(());
        }
        AdminCmd::CreateOrg { code, name, kind } => {
            let o = app
                .create_organisation(&op, wire::NewOrganisation { code, name, kind })
                .await?;
            println!("organisation {} created: {} ({})", o.code, o.name, o.kind);
        }
        AdminCmd::CreateUser {
            username,
            org,
            role,
            name,
        } => {
            let display_name = name.unwrap_or_else(|| username.clone());
            let u = app
                .create_user(
                    &op,
                    wire::NewUser {
                        username,
                        display_name,
                        org,
                        role,
                    },
                )
                .await?;
            println!(
                "user {} ({}, {}) created; one-time password, to be changed at first login:",
                u.user.username, u.user.role, u.user.org
            );
            println!("{}", u.one_time_password);
        }
        AdminCmd::CreateToken {
            username,
            name,
            expires_in,
        } => {
            let t = app
                .create_token(
                    &op,
                    &username,
                    wire::NewToken {
                        name,
                        expires_in_days: Some(days(&expires_in)?),
                    },
                )
                .await?;
            println!(
                "token {} for {} expires at {}; it is shown only now:",
                t.info.id, t.info.username, t.info.expires_at
            );
            println!("{}", t.token);
        }
        AdminCmd::CreateSystem {
            code,
            name,
            owner_org,
            level,
            population_db,
            envs,
            operating_unit,
            last_review,
        } => {
            let level: i64 = level
                .trim()
                .parse()
                .with_context(|| format!("--level {level:?} is not a whole number from 1 to 5"))?;
            let last_review = last_review
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .with_context(|| format!("--last-review {d:?} is not a date YYYY-MM-DD"))
                })
                .transpose()?;
            let s = app
                .create_system(
                    &op,
                    wire::NewSystem {
                        code,
                        name,
                        owner_org,
                        operating_unit,
                        level,
                        population_db,
                        environments: envs,
                        components: vec![],
                        last_review,
                    },
                )
                .await?;
            for w in &s.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "system {} registered: level {}, environments {}",
                s.code,
                s.level,
                s.environments.join(", ")
            );
        }
        AdminCmd::SetAllowedIps { org, cidrs } => {
            app.set_allowed_ips(&op, &org, &cidrs).await?;
            if cidrs.iter().all(|c| c.trim().is_empty()) {
                println!("organisation {org}: users may sign in from any IP address");
            } else {
                println!(
                    "organisation {org}: users may sign in only from {}",
                    cidrs.join(", ")
                );
            }
        }
        AdminCmd::UnlockUser { username } => {
            app.unlock_user(&op, &username).await?;
            println!("user {username} unlocked");
        }
        AdminCmd::ResetPassword { username } => {
            let otp = app.reset_password(&op, &username).await?;
            println!(
                "user {username}: every session signed out; one-time password, to be changed at the next sign-in:"
            );
            println!("{otp}");
        }
        AdminCmd::ResetSecondFactor { username } => {
            app.reset_second_factor(&op, &username).await?;
            println!(
                "user {username}: second factor removed and every session signed out; a reviewer or admin enrols again at the next sign-in"
            );
        }
        AdminCmd::DeactivateUser { username, reason } => {
            app.deactivate_user(&op, &username, &reason).await?;
            println!("user {username} deactivated: every session and API token ended");
        }
        AdminCmd::ReactivateUser { username } => {
            app.reactivate_user(&op, &username).await?;
            println!("user {username} reactivated");
        }
    }
    Ok(())
}

pub async fn audit(db: DbOpts, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    let verified = match cmd {
        AuditCmd::Export { file } => {
            let app = open(&db).await?;
            let (seq, hash) = changegate_store::audit::head(&app.db).await?;
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&file)
                    .with_context(|| format!("cannot create {}", file.display()))?,
            );
            writeln!(
                out,
                "{}",
                serde_json::json!({ "changegate_audit_export": 1, "head_seq": seq, "head_hash": hash })
            )?;
            let mut after = 0;
            loop {
                let page = changegate_store::audit::page(&app.db, after, 5000).await?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                for e in page {
                    writeln!(out, "{}", serde_json::to_string(&event_view(e))?)?;
                }
                after = last;
            }
            out.flush()?;
            println!("{seq} events written to {}", file.display());
            return Ok(ExitCode::SUCCESS);
        }
        AuditCmd::Verify {
            file: Some(file), ..
        } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut lines = std::io::BufReader::new(f).lines();
            let head: serde_json::Value = serde_json::from_str(
                &lines.next().transpose()?.unwrap_or_default(),
            )
            .with_context(|| {
                format!(
                    "{} does not start with a changegate audit export head line",
                    file.display()
                )
            })?;
            let (Some(seq), Some(hash)) = (head["head_seq"].as_i64(), head["head_hash"].as_str())
            else {
                bail!(
                    "{}: the head line lacks head_seq and head_hash",
                    file.display()
                );
            };
            let mut events = vec![];
            for (i, l) in lines.enumerate() {
                let l = l?;
                events.push(
                    serde_json::from_str::<wire::AuditEvent>(&l).with_context(|| {
                        format!("{}: line {} is not an audit event", file.display(), i + 2)
                    })?,
                );
            }
            verify_events(events, (seq, hash))
        }
        AuditCmd::Verify {
            file: None,
            public_key,
        } => return verify_with_checkpoints(&db, public_key.as_deref()).await,
    };
    Ok(match verified {
        Verified::Intact(n) => {
            println!("audit log intact: {n} events, hash chain verified");
            ExitCode::SUCCESS
        }
        Verified::Broken(b) => {
            println!("audit log TAMPERED: {b}");
            ExitCode::FAILURE
        }
    })
}
