//! `changegate request` and `changegate check`: clients of the HTTP API, configured by
//! `CHANGEGATE_URL` (default `http://127.0.0.1:8080`) and `CHANGEGATE_TOKEN`.

use anyhow::{Context, bail};
use changegate_api::{Client, GateParams, NewChangeRequest, WireSubject};
use changegate_domain::{ArtifactDigest, CommitId, TreeId};
use clap::Args;
use std::process::ExitCode;

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
    fn client(&self) -> anyhow::Result<Client> {
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
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Git commit id (with --tree).
    #[arg(long)]
    commit: Option<String>,
    /// Git tree id of that commit.
    #[arg(long)]
    tree: Option<String>,
    /// Artifact digest sha256:… (repeatable).
    #[arg(long = "artifact")]
    artifacts: Vec<String>,
    /// Environment (repeatable; default every environment of the system).
    #[arg(long = "env")]
    envs: Vec<String>,
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

pub async fn request(a: RequestArgs) -> anyhow::Result<()> {
    let mut subjects = vec![];
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
            git: None,
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
    /// Git commit id.
    #[arg(long)]
    commit: Option<String>,
    /// Git tree id (a commit with an approved tree is approved).
    #[arg(long)]
    tree: Option<String>,
    /// Artifact digest sha256:….
    #[arg(long)]
    artifact: Option<String>,
    /// Print the decision document as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0 allowed, 1 denied, 2 could not decide (bad input, no server, server error).
pub async fn check(a: CheckArgs) -> ExitCode {
    match check_inner(&a).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("changegate check: could not decide, failing closed: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn check_inner(a: &CheckArgs) -> anyhow::Result<bool> {
    for (flag, v, ok) in [
        (
            "--commit",
            &a.commit,
            a.commit.as_deref().map(|c| CommitId::parse(c).map(|_| ())),
        ),
        (
            "--tree",
            &a.tree,
            a.tree.as_deref().map(|c| TreeId::parse(c).map(|_| ())),
        ),
        (
            "--artifact",
            &a.artifact,
            a.artifact
                .as_deref()
                .map(|c| ArtifactDigest::parse(c).map(|_| ())),
        ),
    ] {
        if let (Some(_), Some(Err(e))) = (v, ok) {
            bail!("{flag}: {e}");
        }
    }
    if a.commit.is_none() && a.tree.is_none() && a.artifact.is_none() {
        bail!("give the content to judge: --commit (and --tree) or --artifact");
    }
    let d = a
        .conn
        .client()?
        .gate(&GateParams {
            wait: None,
            system: a.system.clone(),
            env: a.env.clone(),
            commit: a.commit.clone(),
            tree: a.tree.clone(),
            artifact: a.artifact.clone(),
        })
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else if d.allowed() {
        println!(
            "ALLOWED: {} may deploy to {} under change request {}{}",
            d.system,
            d.environment,
            d.change_request.map(|i| i.to_string()).unwrap_or_default(),
            d.valid_until
                .map(|v| format!(" (approval valid until {v})"))
                .unwrap_or_default()
        );
    } else {
        println!("DENIED: {} may not deploy to {}:", d.system, d.environment);
        for r in &d.reasons {
            println!("  - {}: {}", r.code, r.message);
        }
    }
    match d.decision.as_str() {
        "allow" => Ok(true),
        "deny" => Ok(false),
        other => bail!("the server answered an unknown decision {other:?}"),
    }
}
