//! Webhook secrets given by an admin (`whsec_` and base64, Standard Webhooks), read by
//! `changegate_app::notify::decode_secret`, and the signature made with them.
//!
//! First byte `b'r'`: the rest is raw key bytes, written as a secret and read back. Otherwise the
//! whole input is the secret's text.
//!
//! Checked: a secret is accepted exactly when it is `whsec_` and base64 of 24 to 64 bytes; the
//! bytes returned are the ones encoded; the canonical text of those bytes is accepted and gives
//! the same bytes; a signature made with the key is `v1,` and the base64 of 32 bytes.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_app::notify::{decode_secret, signature};
use libfuzzer_sys::fuzz_target;

fn text(s: &str) {
    let decoded = s.strip_prefix("whsec_").map(|b| B64.decode(b));
    let documented = matches!(&decoded, Some(Ok(raw)) if (24..=64).contains(&raw.len()));
    match decode_secret(s) {
        Ok(raw) => {
            assert!(documented, "{s:?} accepted");
            assert_eq!(decoded.and_then(Result::ok).as_ref(), Some(&raw));
            let canonical = format!("whsec_{}", B64.encode(&raw));
            assert_eq!(decode_secret(&canonical).as_ref(), Ok(&raw));
            let sig = signature(&raw, "msg_1", 1_700_000_000, "{}");
            let mac = sig.strip_prefix("v1,").map(|m| B64.decode(m));
            assert!(matches!(mac, Some(Ok(m)) if m.len() == 32), "{sig}");
        }
        Err(e) => {
            assert!(!documented, "{s:?} refused: {e}");
            assert!(!e.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((b'r', raw)) = data.split_first() {
        let s = format!("whsec_{}", B64.encode(raw));
        assert_eq!(decode_secret(&s).is_ok(), (24..=64).contains(&raw.len()));
        if let Ok(back) = decode_secret(&s) {
            assert_eq!(back, raw);
        }
        text(&s);
    }
    text(&String::from_utf8_lossy(data));
});
