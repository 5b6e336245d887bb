//! `changegate observe` (report the content running on a server) and `changegate digest --path
//! DIR` (print the reproducible digest of a deployed directory, to put in the change request
//! before deploying). `anyhow` is used here, at the edge.

use crate::client::Conn;
use anyhow::{Context, bail};
use changegate_api::{NewObservation, WireSubject};
use changegate_domain::ArtifactDigest;
use changegate_domain::enforce::{DirEntry, EntryKind, directory_digest};
use clap::Args;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The most entries a directory digest reads.
const MAX_ENTRIES: usize = 1_000_000;

#[derive(Args, Debug)]
pub struct DigestArgs {
    /// The deployed directory.
    #[arg(long)]
    path: PathBuf,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("content").required(true).args(["repo", "artifact", "path"])))]
pub struct ObserveArgs {
    #[command(flatten)]
    conn: Conn,
    /// System code.
    #[arg(long)]
    system: String,
    /// Environment.
    #[arg(long)]
    env: String,
    /// The content is HEAD of this git checkout (its commit and tree).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The content is this artifact (sha256:…).
    #[arg(long)]
    artifact: Option<String>,
    /// The content is this deployed directory, hashed as `changegate digest --path` does.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Who observes (default: this host's name).
    #[arg(long)]
    source: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

fn hash_file(p: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

#[cfg(unix)]
fn executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &std::fs::Metadata) -> bool {
    false
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<DirEntry>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = e.path();
        let m = std::fs::symlink_metadata(&p)
            .with_context(|| format!("cannot read {}", p.display()))?;
        let rel = p
            .strip_prefix(root)
            .with_context(|| format!("{} is outside {}", p.display(), root.display()))?;
        let Some(rel) = rel.to_str() else {
            bail!(
                "{} is not a UTF-8 path; the digest needs UTF-8 names",
                p.display()
            );
        };
        let rel = rel.replace(std::path::MAIN_SEPARATOR, "/");
        let ft = m.file_type();
        if ft.is_dir() {
            walk(root, &p, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&p)
                .with_context(|| format!("cannot read the link {}", p.display()))?;
            let Some(target) = target.to_str() else {
                bail!("the link {} has a target that is not UTF-8", p.display());
            };
            out.push(DirEntry {
                path: rel,
                kind: EntryKind::Symlink,
                sha256: Sha256::digest(target.as_bytes()).into(),
            });
        } else if ft.is_file() {
            out.push(DirEntry {
                path: rel,
                kind: EntryKind::File {
                    executable: executable(&m),
                },
                sha256: hash_file(&p)?,
            });
        } else {
            bail!(
                "{} is neither a file, a directory nor a symbolic link; it cannot be part of a digest",
                p.display()
            );
        }
        if out.len() > MAX_ENTRIES {
            bail!("{} holds more than {MAX_ENTRIES} files", root.display());
        }
    }
    Ok(())
}

/// The reproducible digest of a deployed directory (see
/// [`changegate_domain::enforce::directory_digest`] for the method).
pub fn digest_of(dir: &Path) -> anyhow::Result<ArtifactDigest> {
    let m = std::fs::metadata(dir)
        .with_context(|| format!("{} does not exist or cannot be read", dir.display()))?;
    if !m.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut entries = vec![];
    walk(dir, dir, &mut entries)?;
    Ok(directory_digest(&entries))
}

/// `changegate digest --path DIR`: the digest alone on stdout.
pub fn digest(a: DigestArgs) -> anyhow::Result<ExitCode> {
    println!("{}", digest_of(&a.path)?);
    Ok(ExitCode::SUCCESS)
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// `changegate observe`: exit 0 when the content is covered by a valid approval, 1 when it is not
/// (the server opened or matched an `unapproved_content` incident).
pub async fn observe(a: ObserveArgs) -> anyhow::Result<ExitCode> {
    let subject = if let Some(dir) = &a.repo {
        let repo = changegate_git::Repo::open(dir)?;
        let dirty = repo.uncommitted_changes()?;
        if !dirty.is_empty() {
            bail!(
                "{} has uncommitted changes, so what runs is not its HEAD; observe it with --path instead",
                dir.display()
            );
        }
        let head = repo.head()?;
        WireSubject::GitCommit {
            commit: head.commit,
            tree: head.tree,
        }
    } else if let Some(d) = &a.artifact {
        let d = ArtifactDigest::parse(d).map_err(|e| anyhow::anyhow!("--artifact: {e}"))?;
        WireSubject::Artifact {
            digest: d.to_string(),
        }
    } else if let Some(p) = &a.path {
        WireSubject::Artifact {
            digest: digest_of(p)?.to_string(),
        }
    } else {
        bail!("give --repo DIR, --artifact sha256:… or --path DIR");
    };
    let client = a.conn.client()?;
    let o = client
        .observe(&NewObservation {
            system: a.system.clone(),
            env: a.env.clone(),
            source: a.source.clone().unwrap_or_else(host_name),
            subjects: vec![subject],
            observed_at: None,
        })
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else if o.unapproved {
        let reasons: Vec<String> = o
            .subjects
            .iter()
            .flat_map(|s| s.reasons.iter().map(|r| r.message.clone()))
            .collect();
        println!(
            "unapproved content on {}/{}: {} (incident #{}{})",
            o.system,
            o.env,
            reasons.join("; "),
            o.incident.map(|i| i.to_string()).unwrap_or_default(),
            if o.incident_opened {
                ", opened now"
            } else {
                ""
            }
        );
    } else {
        println!(
            "content on {}/{} is covered by an approval (observation {})",
            o.system, o.env, o.id
        );
    }
    Ok(if o.unapproved {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
