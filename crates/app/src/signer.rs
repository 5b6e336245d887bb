//! The server's ed25519 key that signs gate decisions.
//!
//! Generated at first start into a file of mode 0600 (or supplied by configuration); never a
//! built-in key. A file readable by others is refused. Every public key in use is published in
//! the database (`signing_keys`), so `GET /api/v1/keys` on any replica lists the keys of all.

use crate::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::attestation::{self, Envelope, PublicKey, Statement};
use ed25519_dalek::SigningKey;
use std::io::Write;
use std::path::Path;

/// A signing key and its id.
pub struct Signer {
    key: SigningKey,
    /// Key id.
    pub keyid: String,
}

impl Signer {
    /// A key that lives only in memory (tests, one-off tools).
    pub fn ephemeral() -> Self {
        Self::from_key(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    fn from_key(key: SigningKey) -> Self {
        let keyid = attestation::keyid(&key.verifying_key());
        Self { key, keyid }
    }

    /// Loads the key from `path`, creating it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> AppResult<Self> {
        let shown = path.display();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_mode(path)?;
                let seed: [u8; 32] = B64
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| {
                        AppError::Internal(format!(
                            "signing key file {shown} does not hold a base64 ed25519 seed"
                        ))
                    })?;
                Ok(Self::from_key(SigningKey::from_bytes(&seed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        AppError::Internal(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let seed: [u8; 32] = rand::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(|e| {
                    AppError::Internal(format!("cannot create the signing key file {shown}: {e}"))
                })?;
                writeln!(f, "{}", B64.encode(seed))
                    .map_err(|e| AppError::Internal(format!("cannot write {shown}: {e}")))?;
                tracing::info!(path = %shown, "generated a new signing key");
                Ok(Self::from_key(SigningKey::from_bytes(&seed)))
            }
            Err(e) => Err(AppError::Internal(format!(
                "cannot read the signing key file {shown}: {e}"
            ))),
        }
    }

    /// The public key, as published.
    pub fn public(&self) -> PublicKey {
        attestation::public_key(&self.key.verifying_key())
    }

    /// Signs a statement.
    pub fn sign(&self, st: &Statement) -> Envelope {
        attestation::sign(st, &self.key)
    }
}

#[cfg(unix)]
fn check_mode(path: &Path) -> AppResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| AppError::Internal(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(AppError::Internal(format!(
            "the signing key file {} is readable by others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path) -> AppResult<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_with_mode_0600_and_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let a = Signer::load_or_create(&path).unwrap();
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.keyid, b.keyid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Signer::load_or_create(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn two_ephemeral_keys_differ() {
        assert_ne!(Signer::ephemeral().keyid, Signer::ephemeral().keyid);
    }
}
