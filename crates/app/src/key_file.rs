//! 32-byte secrets kept in files beside the database (the signing key's seed, the API token
//! key): base64 on one line, mode 0600, created on first need, refused when others may read it.

use crate::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::io::Write;
use std::path::Path;

/// Reads the 32 bytes at `path` (`what` names the file in errors and logs), or creates the file
/// with fresh random bytes when there is none.
pub(crate) fn read_or_create(path: &Path, what: &str) -> AppResult<[u8; 32]> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_mode(path, what)?;
            B64.decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    AppError::Internal(format!(
                        "{what} file {shown} does not hold 32 bytes in base64"
                    ))
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    AppError::Internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let bytes: [u8; 32] = rand::random();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path).map_err(|e| {
                AppError::Internal(format!("cannot create the {what} file {shown}: {e}"))
            })?;
            writeln!(f, "{}", B64.encode(bytes))
                .map_err(|e| AppError::Internal(format!("cannot write {shown}: {e}")))?;
            tracing::info!(path = %shown, "generated a new {what}");
            Ok(bytes)
        }
        Err(e) => Err(AppError::Internal(format!(
            "cannot read the {what} file {shown}: {e}"
        ))),
    }
}

#[cfg(unix)]
fn check_mode(path: &Path, what: &str) -> AppResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| AppError::Internal(e.to_string()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(AppError::Internal(format!(
            "the {what} file {} is readable by others (mode {:o}); run: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path, _: &str) -> AppResult<()> {
    Ok(())
}
