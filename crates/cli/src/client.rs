//! `changegate request` and `changegate check`: clients of the HTTP API, configured by
//! `CHANGEGATE_URL` (default `http://127.0.0.1:8080`) and `CHANGEGATE_TOKEN`.

use anyhow::{Context, bail};
use changegate_api::attestation::{Keys, PublicKey, mismatches, parse_keys, verify};
use changegate_api::{
    Decision, GateDecision, GateParams, GitCommit, GitFacts, GitFile, NewChangeRequest,
    NewDeployment, WireSubject,
};
use changegate_client::Client;
use changegate_domain::{ArtifactDigest, CommitId, TreeId};
use changegate_git::Repo;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The longest `check --wait` accepts.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// What the server holds one request at most (it refuses more).
const SERVER_WAIT: u64 = 60;
/// How long after `--wait` is up the last answer may still take to arrive.
const LAST_ANSWER: Duration = Duration::from_secs(3);
/// How old (or how far ahead of this machine's clock) a signed answer may be.
const MAX_AGE_SECONDS: i64 = 60;

#[derive(Args, Debug)]
pub struct Conn {
    /// Server URL.
    #[arg(long, env = "CHANGEGATE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API token.
    #[arg(long, env = "CHANGEGATE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Conn {
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let Some(token) = self.token.clone().filter(|t| !t.is_empty()) else {
            bail!("no token: set CHANGEGATE_TOKEN (or --token)");
        };
        Ok(Client::new(&self.url, Some(token))?)
    }
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    #[command(flatten)]
    conn: Conn,
    /// System code.
    #[arg(long)]
    system: String,
    /// hardware, software, configuration, network or emergency.
    #[arg(long)]
    kind: String,
    /// Title.
    #[arg(long)]
    title: String,
    /// Description (for an emergency change: the justification).
    #[arg(long, default_value = "")]
    description: String,
    /// A git repository: the change covers the head of --range, and its commits and changed
    /// files are attached for the reviewer.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Range A..B of the change (default: the upstream branch to HEAD).
    #[arg(long, requires = "repo")]
    range: Option<String>,
    /// Git commit id (with --tree), without a repository at hand.
    #[arg(long, conflicts_with = "repo")]
    commit: Option<String>,
    /// Git tree id of that commit.
    #[arg(long, conflicts_with = "repo")]
    tree: Option<String>,
    /// Artifact digest sha256:… (repeatable).
    #[arg(long = "artifact")]
    artifacts: Vec<String>,
    /// Environment (repeatable; default every environment of the system).
    #[arg(long = "env")]
    envs: Vec<String>,
    /// For an emergency change: the open incident it remediates (it may then deploy while that
    /// incident is open).
    #[arg(long)]
    remediates_incident: Option<i64>,
    /// Submit for evaluation at once.
    #[arg(long)]
    submit: bool,
}

fn git_subject(
    commit: Option<&str>,
    tree: Option<&str>,
) -> anyhow::Result<Option<(String, String)>> {
    match (commit, tree) {
        (None, None) => Ok(None),
        (Some(c), Some(t)) => Ok(Some((
            CommitId::parse(c)
                .map_err(|e| anyhow::anyhow!("--commit: {e}"))?
                .to_string(),
            TreeId::parse(t)
                .map_err(|e| anyhow::anyhow!("--tree: {e}"))?
                .to_string(),
        ))),
        (Some(_), None) => {
            bail!("--commit needs --tree (the approval binds the content, i.e. the commit's tree)")
        }
        (None, Some(_)) => bail!("--tree needs --commit"),
    }
}

fn git_facts(dir: &Path, range: Option<&str>) -> anyhow::Result<GitFacts> {
    let repo = Repo::open(dir)?;
    let r = repo.range(range)?;
    Ok(GitFacts {
        range: r.range,
        base: r.base,
        head: r.head,
        head_tree: r.head_tree,
        commits: r
            .commits
            .into_iter()
            .map(|c| GitCommit {
                id: c.id,
                summary: c.summary,
                author: c.author,
                time: c.time,
            })
            .collect(),
        truncated: r.truncated,
        files: r
            .files
            .into_iter()
            .map(|f| GitFile {
                path: f.path,
                added: f.added,
                removed: f.removed,
                binary: f.binary,
            })
            .collect(),
        files_changed: r.files_changed,
        insertions: r.insertions,
        deletions: r.deletions,
    })
}

pub async fn request(a: RequestArgs) -> anyhow::Result<()> {
    let mut subjects = vec![];
    let git = match &a.repo {
        Some(dir) => {
            let facts = git_facts(dir, a.range.as_deref())?;
            subjects.push(WireSubject::GitCommit {
                commit: facts.head.clone(),
                tree: facts.head_tree.clone(),
            });
            eprintln!(
                "{}: {} commit(s), {} file(s) changed, +{} -{}",
                facts.range,
                facts.commits.len(),
                facts.files_changed,
                facts.insertions,
                facts.deletions
            );
            Some(facts)
        }
        None => None,
    };
    if let Some((commit, tree)) = git_subject(a.commit.as_deref(), a.tree.as_deref())? {
        subjects.push(WireSubject::GitCommit { commit, tree });
    }
    for d in &a.artifacts {
        let digest = ArtifactDigest::parse(d).map_err(|e| anyhow::anyhow!("--artifact: {e}"))?;
        subjects.push(WireSubject::Artifact {
            digest: digest.to_string(),
        });
    }
    let client = a.conn.client()?;
    let cr = client
        .file_change(&NewChangeRequest {
            system: a.system,
            kind: a.kind,
            title: a.title,
            description: a.description,
            environments: a.envs,
            subjects,
            components: vec![],
            git,
            remediates_incident: a.remediates_incident,
            major_change: vec![],
        })
        .await
        .context("filing the change request")?;
    let cr = if a.submit {
        client
            .submit(cr.id)
            .await
            .context("submitting the change request")?
    } else {
        cr
    };
    eprintln!("change request {} for {} is {}", cr.id, cr.system, cr.state);
    if let Some(until) = cr.emergency_until {
        eprintln!(
            "break-glass: it may deploy until {until}; PA05 must evaluate it before then or the system is suspended"
        );
    }
    println!("{}", cr.id);
    Ok(())
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    conn: Conn,
    /// System code.
    #[arg(long)]
    system: String,
    /// Environment.
    #[arg(long)]
    env: String,
    /// Judge HEAD of this git repository (its commit and tree); refused if it has uncommitted
    /// changes.
    #[arg(long, conflicts_with_all = ["commit", "tree"])]
    repo: Option<PathBuf>,
    /// Git commit id.
    #[arg(long)]
    commit: Option<String>,
    /// Git tree id (a commit with an approved tree is approved).
    #[arg(long)]
    tree: Option<String>,
    /// Artifact digest sha256:….
    #[arg(long)]
    artifact: Option<String>,
    /// Keep asking until allowed or this much time is up (e.g. 30m); the server answers as soon
    /// as the decision changes.
    #[arg(long)]
    wait: Option<String>,
    /// The server's public keys, pinned: a file with the JSON of `GET /api/v1/keys` (or base64
    /// ed25519 public keys, one per line). The answer must be signed by one of them and be about
    /// exactly this question, or `check` exits 2.
    #[arg(
        long = "public-key",
        env = "CHANGEGATE_PUBLIC_KEYS",
        value_name = "FILE",
        alias = "public-keys"
    )]
    public_key: Option<PathBuf>,
    /// Trust on first use, when no keys are pinned: if FILE does not exist, fetch the keys from
    /// the server being asked, save them in FILE and trust them (said on stderr); later runs
    /// verify with FILE as pinned keys.
    #[arg(long, env = "CHANGEGATE_TRUST_ON_FIRST_USE", value_name = "FILE")]
    trust_on_first_use: Option<PathBuf>,
    /// Record the deployment after an allow.
    #[arg(long)]
    record: bool,
    /// Print the decision document as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0 allowed, 1 denied, 2 could not decide (bad input, no server, server error, a
/// signature that does not verify).
pub async fn check(a: CheckArgs) -> ExitCode {
    match check_inner(a).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("changegate check: could not decide, failing closed: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn params(a: &CheckArgs) -> anyhow::Result<GateParams> {
    let (commit, tree) = match &a.repo {
        Some(dir) => {
            let repo = Repo::open(dir)?;
            let dirty = repo.uncommitted_changes()?;
            if !dirty.is_empty() {
                let shown: Vec<&str> = dirty.iter().take(10).map(String::as_str).collect();
                bail!(
                    "{} has uncommitted changes ({}{}); the gate judges committed content: commit or stash them first",
                    dir.display(),
                    shown.join(", "),
                    if dirty.len() > 10 { ", …" } else { "" }
                );
            }
            let head = repo.head()?;
            (Some(head.commit), Some(head.tree))
        }
        None => (a.commit.clone(), a.tree.clone()),
    };
    for (flag, v) in [("--commit", &commit), ("--tree", &tree)] {
        if let Some(v) = v {
            CommitId::parse(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
    }
    if let Some(d) = &a.artifact {
        ArtifactDigest::parse(d).map_err(|e| anyhow::anyhow!("--artifact: {e}"))?;
    }
    if commit.is_none() && tree.is_none() && a.artifact.is_none() {
        bail!("give the content to judge: --repo, --commit (and --tree) or --artifact");
    }
    Ok(GateParams {
        system: a.system.clone(),
        env: a.env.clone(),
        commit,
        tree,
        artifact: a.artifact.clone(),
        wait: None,
        nonce: None,
    })
}

/// The trusted keys: pinned (`--public-key`, `CHANGEGATE_PUBLIC_KEYS`), or trusted on first
/// use (`--trust-on-first-use FILE`: fetched from the server asked when FILE does not exist yet,
/// then saved there). Without either, nothing can be trusted.
async fn trusted_keys(a: &CheckArgs, client: &Client) -> anyhow::Result<Vec<PublicKey>> {
    let given = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    let read = |file: &Path| -> anyhow::Result<Vec<PublicKey>> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the public key file {}", file.display()))?;
        let keys = parse_keys(&text).with_context(|| format!("{}", file.display()))?;
        if keys.is_empty() {
            bail!("the public key file {} holds no key", file.display());
        }
        Ok(keys)
    };
    if let Some(file) = given(&a.public_key) {
        return read(&file);
    }
    let Some(file) = given(&a.trust_on_first_use) else {
        bail!(
            "no trusted keys to verify the answer with: pin the server's keys with \
             CHANGEGATE_PUBLIC_KEYS=FILE or --public-key FILE (curl $CHANGEGATE_URL/api/v1/keys > FILE, \
             checked with the server's operator), or accept them on first use with \
             --trust-on-first-use FILE"
        );
    };
    if file.exists() {
        return read(&file);
    }
    let keys = client
        .keys()
        .await
        .context("fetching the server's keys for trust on first use")?
        .keys;
    if keys.is_empty() {
        bail!("the server published no keys");
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    std::io::Write::write_all(
        &mut f,
        serde_json::to_string_pretty(&Keys { keys: keys.clone() })?.as_bytes(),
    )
    .with_context(|| format!("cannot write {}", file.display()))?;
    let ids: Vec<&str> = keys.iter().map(|k| k.keyid.as_str()).collect();
    eprintln!(
        "trust on first use: {} held no keys, so the keys of the server being asked ({}) are \
         trusted and saved there for later runs; compare them with the key ids the server's \
         operator publishes: {}",
        file.display(),
        client.base(),
        ids.join(", ")
    );
    Ok(keys)
}

/// Checks that the answer is signed by a trusted key, that the signed statement is about this
/// question (system, environment, content) and that the answer shown repeats it. Any doubt is an
/// error naming what did not match.
fn check_signature(keys: &[PublicKey], p: &GateParams, d: &GateDecision) -> anyhow::Result<()> {
    let env = d
        .attestation
        .as_ref()
        .context("the answer carries no signature (no attestation): it cannot be trusted")?;
    let st = verify(env, keys).context("the answer's signature does not verify")?;
    let mut wrong = mismatches(&st, p);
    let pr = &st.predicate;
    let codes =
        |r: &[changegate_api::GateReason]| r.iter().map(|r| r.code.clone()).collect::<Vec<_>>();
    for (what, same) in [
        ("system shown", pr.system == d.system),
        ("environment shown", pr.environment == d.environment),
        ("decision", pr.decision == d.decision),
        ("reasons", codes(&pr.reasons) == codes(&d.reasons)),
        ("change request", pr.change_request == d.change_request),
    ] {
        if !same {
            wrong.push(format!(
                "{what} (the answer differs from its signed statement)"
            ));
        }
    }
    if !wrong.is_empty() {
        bail!(
            "the signed answer does not answer the question asked: {}",
            wrong.join("; ")
        );
    }
    if pr.nonce.is_none() {
        bail!(
            "the signed answer does not carry the nonce of this request: it may be a replayed one"
        );
    }
    let age = chrono::Utc::now().signed_duration_since(pr.issued_at);
    if age.num_seconds().abs() > MAX_AGE_SECONDS {
        bail!(
            "the signed answer was issued at {}, more than a minute from now (a replayed answer, or \
             this machine's clock is off)",
            pr.issued_at
        );
    }
    eprintln!("signature verified (key {})", pr.keyid);
    Ok(())
}

async fn check_inner(a: CheckArgs) -> anyhow::Result<bool> {
    let wait = match &a.wait {
        None => Duration::ZERO,
        Some(w) => {
            let d = humantime::parse_duration(w)
                .with_context(|| format!("--wait {w:?} is not a duration such as 90s or 30m"))?;
            if d > MAX_WAIT {
                bail!("--wait {w:?} is longer than the 24h this command waits at most");
            }
            d
        }
    };
    let mut p = params(&a)?;
    let client = a.conn.client()?;
    let keys = trusted_keys(&a, &client).await?;
    let deadline = tokio::time::Instant::now() + wait;
    if !wait.is_zero() {
        eprintln!(
            "waiting up to {} for the gate to allow {} in {} …",
            humantime::format_duration(wait),
            a.system,
            a.env
        );
    }
    let d = loop {
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs();
        p.wait = (left > 0).then_some(left.min(SERVER_WAIT) as u32);
        // A fresh nonce per request: the signed answer must repeat it.
        p.nonce = Some(hex::encode(rand::random::<[u8; 16]>()));
        // A server that holds the request and never answers does not keep the pipeline past
        // its --wait (and a little for the last answer to travel).
        let d = if wait.is_zero() {
            client.gate(&p).await?
        } else {
            let budget =
                deadline.saturating_duration_since(tokio::time::Instant::now()) + LAST_ANSWER;
            tokio::time::timeout(budget, client.gate(&p))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "the server did not answer within --wait {}",
                        humantime::format_duration(wait)
                    )
                })??
        };
        if d.allowed() || left == 0 {
            break d;
        }
    };
    check_signature(&keys, &p, &d)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else if d.allowed() {
        println!(
            "ALLOWED: {} may deploy to {} under change request {}{}",
            d.system,
            d.environment,
            d.change_request.map(|i| i.to_string()).unwrap_or_default(),
            d.valid_until
                .map(|v| format!(" (valid until {v})"))
                .unwrap_or_default()
        );
    } else {
        println!("DENIED: {} may not deploy to {}:", d.system, d.environment);
        for r in &d.reasons {
            println!("  - {}: {}", r.code, r.message);
        }
    }
    match &d.decision {
        Decision::Allow => {
            if a.record {
                let rec = client
                    .record_deployment(&NewDeployment {
                        system: p.system,
                        environment: p.env,
                        commit: p.commit,
                        tree: p.tree,
                        artifact: p.artifact,
                        deployed_at: None,
                    })
                    .await
                    .context("allowed, but the deployment could not be recorded")?;
                eprintln!("deployment {} recorded", rec.id);
            }
            Ok(true)
        }
        Decision::Deny => Ok(false),
        Decision::Other(other) => bail!("the server answered an unknown decision {other:?}"),
    }
}
