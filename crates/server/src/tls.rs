//! Native TLS for `changegate serve` (rustls with the ring provider): the certificate chain and
//! private key are PEM files, read at start-up (a bad pair stops the server) and read again when
//! either file changes, so a renewed certificate is served without a restart (a pair that does
//! not load is logged and the previous one kept). Kubernetes' API server calls the admission
//! webhook over HTTPS only; this is what lets it call changegate directly.
//!
//! With `client_ca_file`, clients may present a certificate signed by one of those CAs (one that
//! is not fails the handshake; no certificate at all is fine: browsers and pipelines connect as
//! before). The names of a verified certificate (subject CN, DNS SANs) go into every request of
//! its connection as a [`ClientCertificate`]; a name listed in `[[tls.admission_clients]]`
//! authenticates `POST /k8s/validate` as a caller of role `admission` in that entry's
//! organisation. The CA bundle is read again with the certificate and key.

use anyhow::{Context, bail};
use axum::Router;
use changegate_app::Principal;
use changegate_domain::Role;
use rustls::DistinguishedName;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// `[tls]`: serve HTTPS with this certificate and key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), readable by the server's account only.
    pub key_file: PathBuf,
    /// PEM bundle of the CAs whose client certificates are verified (Kubernetes' API server's
    /// client CA). Absent: no client certificate is asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// The client certificates that authenticate admission reviews (`POST /k8s/validate`).
    #[serde(default)]
    pub admission_clients: Vec<AdmissionClient>,
}

/// One `[[tls.admission_clients]]` entry: a certificate of this name, verified against
/// `client_ca_file`, answers admission reviews as a caller of role `admission` in
/// `organisation` (what a token of that role in that organisation would do).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdmissionClient {
    /// The certificate's subject common name (CN) or one of its DNS subject alternative names,
    /// compared without regard to ASCII case.
    pub name: String,
    /// Code of the organisation (of kind owner) whose systems this client admits.
    pub organisation: String,
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

/// Loads the client CA bundle into a verifier that accepts connections without a certificate and
/// refuses a certificate no listed CA signed. None without `client_ca_file`.
pub fn load_client_verifier(
    cfg: &TlsConfig,
) -> anyhow::Result<Option<Arc<dyn ClientCertVerifier>>> {
    let Some(path) = &cfg.client_ca_file else {
        if !cfg.admission_clients.is_empty() {
            bail!(
                "tls.admission_clients: client certificates are only verified with tls.client_ca_file; set it to the PEM bundle of the CA that signs them"
            );
        }
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("tls.client_ca_file: cannot read {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "tls.client_ca_file: {} is not PEM certificates",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "tls.client_ca_file: {} holds no certificate",
            path.display()
        );
    }
    let mut roots = RootCertStore::empty();
    for (i, c) in certs.into_iter().enumerate() {
        roots.add(c).map_err(|e| {
            anyhow::anyhow!(
                "tls.client_ca_file: certificate {} of {} is not a usable CA certificate: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    let v =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()))
            .allow_unauthenticated()
            .build()
            .map_err(|e| anyhow::anyhow!("tls.client_ca_file: {}: {e}", path.display()))?;
    Ok(Some(v))
}

/// The names of a verified client certificate: its subject CN first, then its DNS subject
/// alternative names. Put into the extensions of every request of its connection.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<Vec<String>>);

impl ClientCertificate {
    /// The verified client certificate of a finished handshake, if one was presented.
    pub fn of(conn: &rustls::ServerConnection) -> Option<Self> {
        let der = conn.peer_certificates()?.first()?;
        Some(Self(Arc::new(cert_names(der))))
    }

    /// How the certificate is shown in messages: `CN=…` or its first name.
    pub fn shown(&self) -> String {
        match self.0.first() {
            Some(n) => format!("{n:?}"),
            None => "(without a name)".into(),
        }
    }
}

/// Subject CN, then DNS SANs (each once).
fn cert_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok(ee) = webpki::EndEntityCert::try_from(der) else {
        return vec![];
    };
    let mut names: Vec<String> = common_name(ee.subject()).into_iter().collect();
    for n in ee.valid_dns_names() {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.to_owned());
        }
    }
    names
}

/// One DER tag-length-value: (tag, value, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The first common name (OID 2.5.4.3) of a DER Name's contents (the RDN sets, without the
/// outer SEQUENCE), if it is a UTF8String, PrintableString or IA5String.
fn common_name(mut subject: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while let Some((0x31, mut set, rest)) = der_tlv(subject) {
        subject = rest;
        while let Some((0x30, atv, more)) = der_tlv(set) {
            set = more;
            let Some((0x06, oid, value)) = der_tlv(atv) else {
                continue;
            };
            if oid != CN {
                continue;
            }
            if let Some((0x0c | 0x13 | 0x16, v, _)) = der_tlv(value) {
                return std::str::from_utf8(v).ok().map(str::to_owned);
            }
        }
    }
    None
}

/// The accepted admission clients, by lower-cased name: the caller each one acts as.
#[derive(Debug, Clone, Default)]
pub struct AdmissionClients(pub Arc<HashMap<String, Arc<Principal>>>);

impl AdmissionClients {
    /// The caller a verified certificate acts as: that of its first listed name.
    pub fn principal(&self, cert: &ClientCertificate) -> Option<Arc<Principal>> {
        cert.0
            .iter()
            .find_map(|n| self.0.get(&n.to_ascii_lowercase()).cloned())
    }
}

/// `[tls]`, checked and ready to serve: the certificate loads, the client CA bundle loads, and
/// every admission client names an organisation of kind owner.
#[derive(Debug, Clone)]
pub struct Tls {
    cfg: TlsConfig,
    clients: AdmissionClients,
}

/// Checks `[tls]` at start-up; every error names the field.
pub async fn prepare(cfg: &TlsConfig, db: &sea_orm::DatabaseConnection) -> anyhow::Result<Tls> {
    load(cfg)?;
    let verifier = load_client_verifier(cfg)?;
    if verifier.is_some() && cfg.admission_clients.is_empty() {
        tracing::warn!(
            "tls.client_ca_file is set but tls.admission_clients names no certificate: client certificates are verified and then not used"
        );
    }
    let mut clients = HashMap::new();
    for (i, c) in cfg.admission_clients.iter().enumerate() {
        let what = format!("tls.admission_clients[{i}]");
        let name = c.name.trim();
        if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
            bail!(
                "{what}.name: {:?} is not a certificate name (the subject CN or a DNS name)",
                c.name
            );
        }
        let org = match changegate_app::registry::org_by_code(db, c.organisation.trim()).await {
            Ok(o) => o,
            Err(changegate_app::AppError::NotFound(_)) => bail!(
                "{what}.organisation: there is no organisation {:?}",
                c.organisation
            ),
            Err(e) => bail!(
                "{what}.organisation: cannot look up {:?}: {e}",
                c.organisation
            ),
        };
        let kind = *org.kind;
        if !Role::Admission.fits_org(kind) {
            bail!(
                "{what}.organisation: {:?} is of kind {kind:?}; an admission client belongs to an organisation of kind owner",
                c.organisation
            );
        }
        let principal = Principal {
            user_id: 0,
            username: format!("cert:{name}"),
            display_name: format!("client certificate {name}"),
            org_id: org.id,
            org_code: org.code.clone(),
            org_kind: kind,
            role: Role::Admission,
            token_id: None,
        };
        if clients
            .insert(name.to_ascii_lowercase(), Arc::new(principal))
            .is_some()
        {
            bail!("{what}.name: {name:?} is listed twice");
        }
    }
    Ok(Tls {
        cfg: cfg.clone(),
        clients: AdmissionClients(Arc::new(clients)),
    })
}

/// The client CA verifier in use, replaced when the bundle changes. It sends no CA names in its
/// certificate request (clients then offer the certificate they have).
#[derive(Debug)]
struct ReloadingVerifier {
    current: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl ReloadingVerifier {
    fn get(&self) -> Arc<dyn ClientCertVerifier> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(e) => e.into_inner().clone(),
        }
    }
}

impl ClientCertVerifier for ReloadingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.get()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.get().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.get().supported_verify_schemes()
    }
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

fn watch(
    cfg: TlsConfig,
    r: Arc<Reloading>,
    v: Option<Arc<ReloadingVerifier>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stamp = |cfg: &TlsConfig| {
            (
                modified(&cfg.cert_file),
                modified(&cfg.key_file),
                cfg.client_ca_file.as_deref().and_then(modified),
            )
        };
        let mut seen = stamp(&cfg);
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        loop {
            tick.tick().await;
            let now = stamp(&cfg);
            if now == seen {
                continue;
            }
            // Both or neither: a half-renewed set keeps the previous one.
            let loaded = load(&cfg).and_then(|ck| Ok((ck, load_client_verifier(&cfg)?)));
            match loaded {
                Ok((ck, cv)) => {
                    if let Ok(mut c) = r.current.write() {
                        *c = ck;
                    }
                    if let (Some(v), Some(cv)) = (&v, cv)
                        && let Ok(mut c) = v.current.write()
                    {
                        *c = cv;
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
    tls: Tls,
    limits: crate::conn::ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cfg = tls.cfg;
    let first = load(&cfg).map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let resolver = Arc::new(Reloading {
        current: RwLock::new(first),
    });
    let verifier = load_client_verifier(&cfg)
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?
        .map(|v| {
            Arc::new(ReloadingVerifier {
                current: RwLock::new(v),
            })
        });
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?;
    let builder = match &verifier {
        Some(v) => builder.with_client_cert_verifier(v.clone()),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let router = router.layer(axum::Extension(tls.clients));
    let watcher = watch(cfg, resolver, verifier);
    let result = crate::conn::serve(listener, router, Some(acceptor), limits, shutdown).await;
    watcher.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_is_read_from_a_der_name() {
        // SET { SEQ { OID 2.5.4.10 (O), UTF8 "ACME" } }, SET { SEQ { OID 2.5.4.3 (CN), PrintableString "kube-apiserver" } }
        let mut name = vec![
            0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x04,
        ];
        name.extend_from_slice(b"ACME");
        name.extend_from_slice(&[
            0x31, 0x17, 0x30, 0x15, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x0e,
        ]);
        name.extend_from_slice(b"kube-apiserver");
        assert_eq!(common_name(&name).as_deref(), Some("kube-apiserver"));
        assert_eq!(common_name(&name[..15]), None, "only the organisation");
        // Truncated or garbage input: no name, no panic.
        for cut in 0..name.len() {
            let _ = common_name(&name[..cut]);
        }
        assert_eq!(common_name(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(&[0x31, 0x80]), None);
    }

    #[test]
    fn names_without_a_ca_bundle_are_refused_naming_the_field() {
        let cfg = TlsConfig {
            admission_clients: vec![AdmissionClient {
                name: "kube-apiserver".into(),
                organisation: "STNMT".into(),
            }],
            ..TlsConfig::default()
        };
        let err = load_client_verifier(&cfg).err().map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("tls.client_ca_file")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unreadable_or_empty_ca_bundle_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsConfig {
            client_ca_file: Some(dir.path().join("nope.pem")),
            ..TlsConfig::default()
        };
        let err = format!("{:#}", load_client_verifier(&missing).err().unwrap());
        assert!(
            err.contains("tls.client_ca_file") && err.contains("nope.pem"),
            "{err}"
        );
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        let empty = TlsConfig {
            client_ca_file: Some(dir.path().join("empty.pem")),
            ..TlsConfig::default()
        };
        let err = format!("{:#}", load_client_verifier(&empty).err().unwrap());
        assert!(
            err.contains("tls.client_ca_file") && err.contains("holds no certificate"),
            "{err}"
        );
    }
}
