//! Native TLS for `changegate serve` (rustls with the ring provider): the certificate chain and
//! private key are PEM files, read at start-up (a bad pair stops the server) and read again when
//! either file changes, so a renewed certificate is served without a restart (a pair that does
//! not load is logged and the previous one kept). Kubernetes' API server calls the admission
//! webhook over HTTPS only; this is what lets it call changegate directly.

use anyhow::Context;
use axum::Router;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// `[tls]`: serve HTTPS with this certificate and key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), readable by the server's account only.
    pub key_file: PathBuf,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Loads the pair, checking that the key matches the certificate.
pub fn load(cfg: &TlsConfig) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .with_context(|| format!("tls.cert_file: cannot read {}", cfg.cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "tls.cert_file: {} is not PEM certificates",
                cfg.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "tls.cert_file: {} holds no certificate",
            cfg.cert_file.display()
        );
    }
    crate::enforce::read_secret_file("tls.key_file", &cfg.key_file)?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file).with_context(|| {
        format!(
            "tls.key_file: {} is not a PEM private key",
            cfg.key_file.display()
        )
    })?;
    let provider = default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).with_context(
        || "tls: the key does not match the certificate, or is of an unsupported kind",
    )?;
    Ok(Arc::new(ck))
}

/// The certificate in use, replaced when the files change.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn watch(cfg: TlsConfig, r: Arc<Reloading>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = (modified(&cfg.cert_file), modified(&cfg.key_file));
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        loop {
            tick.tick().await;
            let now = (modified(&cfg.cert_file), modified(&cfg.key_file));
            if now == seen {
                continue;
            }
            match load(&cfg) {
                Ok(ck) => {
                    if let Ok(mut c) = r.current.write() {
                        *c = ck;
                    }
                    seen = now;
                    tracing::info!(cert = %cfg.cert_file.display(), "TLS certificate reloaded");
                }
                // Half-written files: try again at the next check; keep serving the old pair.
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use")
                }
            }
        }
    })
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, within the bounds of
/// `limits` (see [`crate::conn`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cfg: TlsConfig,
    limits: crate::conn::ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let first = load(&cfg).map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let resolver = Arc::new(Reloading {
        current: RwLock::new(first),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let watcher = watch(cfg, resolver);
    let result = crate::conn::serve(listener, router, Some(acceptor), limits, shutdown).await;
    watcher.abort();
    result
}
