//! `changegate serve`.

use crate::DbOpts;
use crate::config::{self, Config};
use anyhow::Context;
use clap::Args;
use std::time::Instant;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    db: DbOpts,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Seed demo data and print its one-time credentials.
    #[arg(long)]
    demo: bool,
}

/// glibc's `malloc` serves a large block (argon2id's 12 MiB for a password) with `mmap` and
/// returns it on `free`, but then raises its threshold so that the next such blocks come from
/// the heaps of the threads, which keep them resident: after a morning of sign-ins the server
/// sat at several times its size. A fixed threshold (the tunable also turns off the sliding)
/// keeps every block over 1 MiB in its own mapping, returned when freed. The tunable is read
/// when the process starts, so `serve` starts itself again once with it set (the same process
/// id; `CHANGEGATE_MALLOC_TUNING=off` leaves malloc as it is). It also bounds malloc's arenas to
/// the number of cores (at least 2; glibc's default is eight per core): each thread that
/// allocated in its own arena kept what it freed there, and the load of a large system's index
/// on one worker left a second copy's worth resident (`scripts/bench`: the large server's peak
/// 67 → 57 MiB, at the same gate req/s; one arena cost a quarter of them).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    const TUNABLE: &str = "glibc.malloc.mmap_threshold";
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains(TUNABLE)
        || std::env::var("CHANGEGATE_MALLOC_TUNING").is_ok_and(|v| v == "off")
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let setting = if current.contains("glibc.malloc.arena_max") {
        format!("{TUNABLE}=1048576")
    } else {
        format!("{TUNABLE}=1048576:glibc.malloc.arena_max={arenas}")
    };
    let value = if current.is_empty() {
        setting
    } else {
        format!("{current}:{setting}")
    };
    // Returns only if the new image could not start; the server then runs as it is.
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", value)
        .exec();
    eprintln!("changegate: could not restart with a fixed malloc threshold ({e}); continuing");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_threshold() {}

pub async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    fix_malloc_threshold();
    let started = Instant::now();
    let mut cfg: Config = config::load(&a.db)?;
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    config::init_logging(&cfg);
    let server = changegate_server::build(&cfg).await?;
    let app = server.app.clone();
    if a.demo {
        print_demo(&app.seed_demo().await?, &cfg.listen);
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = changegate_store::backend_name(&app.db), ready_ms = started.elapsed().as_millis() as u64, "changegate ready");
    println!(
        "changegate listening on http://{addr} ({} database, ready in {} ms)",
        changegate_store::backend_name(&app.db),
        started.elapsed().as_millis()
    );
    if let Some((addr, _)) = changegate_server::metrics::spawn(&cfg.metrics, app.clone()).await? {
        println!("metrics on http://{addr}/metrics");
    }
    // Missed slots run in the background so that start-up stays fast.
    let jobs = server.spawn_jobs();
    let grace = std::time::Duration::from_secs(cfg.server.shutdown_timeout_secs);
    server.serve(listener, shutdown()).await?;
    // The scheduler gets the same deadline as the connections.
    let _ = tokio::time::timeout(grace, async {
        if let Ok(Ok(mut sched)) = jobs.await {
            let _ = sched.shutdown().await;
        }
    })
    .await;
    tracing::info!("changegate stopped");
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn print_demo(d: &changegate_app::demo::Demo, listen: &str) {
    let base = format!("http://{listen}");
    println!();
    if d.created {
        println!(
            "Demo data created. One-time credentials (shown once; passwords must be changed at first login):"
        );
    } else {
        println!("Demo data already present. Fresh one-time credentials for the demo users:");
    }
    println!();
    println!(
        "  {:<9} {:<14} {:<34} {:<17} API token",
        "role", "username", "name", "password"
    );
    for u in &d.accounts {
        println!(
            "  {:<9} {:<14} {:<34} {:<17} {}",
            u.role, u.username, u.display_name, u.one_time_password, u.token
        );
    }
    let with_factor: Vec<_> = d
        .accounts
        .iter()
        .filter_map(|a| Some((a, a.second_factor_secret.as_ref()?)))
        .collect();
    if !with_factor.is_empty() {
        println!();
        println!(
            "Second factor of the PA05 reviewers, enrolled for the demo (signing off asks a code: add the secret to an authenticator app, or run `oathtool --totp -b SECRET`):"
        );
        for (a, secret) in with_factor {
            println!("  second-factor {:<14} {secret}", a.username);
        }
    }
    let token = |role: &str| {
        d.accounts
            .iter()
            .find(|a| a.role == role)
            .map(|a| a.token.clone())
            .unwrap_or_default()
    };
    println!();
    println!("Try the gate as the CI pipeline of Sở Tài nguyên và Môi trường:");
    println!(
        "  export CHANGEGATE_URL={base} CHANGEGATE_TOKEN={}",
        token("ci")
    );
    println!(
        "  curl -s {base}/api/v1/keys > keys.json; export CHANGEGATE_PUBLIC_KEYS=$PWD/keys.json    # the keys check trusts"
    );
    println!(
        "  changegate check --system {} --env production --commit {} --tree {}    # approved: exit 0",
        d.system, d.approved_commit, d.approved_tree
    );
    println!(
        "  changegate check --system {} --env production --commit {}    # awaiting PA05: exit 1",
        d.system, d.pending_commit
    );
    println!(
        "  curl -H \"Authorization: Bearer $CHANGEGATE_TOKEN\" '{base}/api/v1/gate?system={}&env=production&commit={}'",
        d.system, d.approved_commit
    );
    println!();
}
