//! CSRF tokens: the double-submit cookie of the forms shown before sign-in, fresh random tokens,
//! and the comparison of a form's token with the one it must carry.

use super::errors::WebError;

/// The double-submit CSRF cookie of the forms shown before sign-in.
pub const CSRF_COOKIE: &str = "cg_csrf";

/// A random token for the double-submit cookie: 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time independent of where they differ (`subtle`); an empty secret
/// matches nothing.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses a form whose token (`given`, its `csrf` field) is not `expected` (nothing changes).
pub fn check(given: &str, expected: &str) -> Result<(), WebError> {
    if same_secret(given, expected) {
        Ok(())
    } else {
        Err(WebError::Csrf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", ""));
    }
}
