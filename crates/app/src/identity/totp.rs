//! TOTP second factor (RFC 6238 over RFC 4226), base32 secrets and otpauth URIs.
//!
//! HMAC-SHA1, 30-second steps, 6 digits, the codes of the step before and after are accepted
//! too (clock drift), and the caller stores the step of each accepted code so that a code is
//! accepted once.

use data_encoding::{BASE32_NOPAD, BASE32_NOPAD_NOCASE, Encoding};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::sync::LazyLock;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// Base32 (RFC 4648) without padding, as authenticator apps expect.
pub fn base32_encode(data: &[u8]) -> String {
    BASE32_NOPAD.encode(data)
}

/// Base32 for reading: either case, and the bits left over after the last whole byte dropped
/// whatever they are. `None` if the specification were refused, which a test rules out.
static LENIENT_BASE32: LazyLock<Option<Encoding>> = LazyLock::new(|| {
    let mut spec = BASE32_NOPAD_NOCASE.specification();
    spec.check_trailing_bits = false;
    spec.encoding().ok()
});

/// Decodes base32, ignoring case, spaces, dashes and `=` padding; `None` on any other character.
/// Bits that do not make a whole byte are dropped, as is a last symbol that holds nothing but
/// such bits (1, 3 or 6 symbols past a multiple of 8): it must still be a base32 symbol.
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let b32 = LENIENT_BASE32.as_ref()?;
    let mut symbols: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'-' | b'='))
        .collect();
    if matches!(symbols.len() % 8, 1 | 3 | 6) {
        let last = symbols.pop()?;
        b32.decode(&[last, b'A']).ok()?;
    }
    b32.decode(&symbols).ok()
}

/// HMAC-SHA1 (RFC 2104).
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(msg);
    let mut out = [0u8; 20];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// HOTP (RFC 4226): the code of `counter`, with `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let mac = hmac_sha1(key, &counter.to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let bin = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The step of a Unix time.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP)
}

/// The 6-digit code of a step, zero-padded.
pub fn code_at_step(key: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(key, u64::try_from(step).unwrap_or(0), DIGITS),
        width = DIGITS as usize
    )
}

/// The code an authenticator app shows at `unix_seconds`.
pub fn code_at(key: &[u8], unix_seconds: i64) -> String {
    code_at_step(key, step_at(unix_seconds))
}

/// Checks `code` at `unix_seconds` within one step either way; returns the step it belongs to,
/// which must be later than `last_used` (a code is accepted once). Spaces in the code are
/// ignored.
pub fn verify(key: &[u8], code: &str, unix_seconds: i64, last_used: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    // Compare every candidate so that the time taken does not depend on which one matches.
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let ok = constant_time_eq(code_at_step(key, step).as_bytes(), code.as_bytes());
        if ok && last_used.is_none_or(|l| step > l) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Compares two byte strings in time that depends only on their lengths (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A new random secret, base32.
pub fn new_secret() -> String {
    base32_encode(&rand::random::<[u8; SECRET_BYTES]>())
}

/// The `otpauth://` URI that authenticator apps read from a QR code.
pub fn otpauth_uri(username: &str, secret_base32: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/changegate:{}?secret={secret_base32}&issuer=changegate&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(username).replace('+', "%20")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_follows_rfc_4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(raw.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb-oi======").unwrap(), b"foobar");
        assert!(base32_decode("MZ1W").is_none());
        assert!(LENIENT_BASE32.is_some());
        // As the hand-written decoder read them: leftover bits dropped, whatever they are, and
        // a last symbol holding only such bits too (but it must be a symbol).
        assert_eq!(base32_decode("MZ").unwrap(), b"f");
        assert_eq!(base32_decode("M").unwrap(), b"");
        assert_eq!(base32_decode("MZXW6YT").unwrap(), b"foob");
        assert_eq!(base32_decode("MZx").unwrap(), b"f");
        assert!(base32_decode("MZ1").is_none());
        assert!(base32_decode("MZXW6YTBOI\n").is_none());
        assert!(base32_decode("MZXW6YTBOÉ").is_none());
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(base32_decode(&s).unwrap().len(), 20);
        assert_ne!(s, new_secret());
    }

    #[test]
    fn hmac_sha1_matches_rfc_4226_appendix_d() {
        let key = b"12345678901234567890";
        assert_eq!(
            hex::encode(hmac_sha1(key, &0u64.to_be_bytes())),
            "cc93cf18508d94934c64b65d8ba7667fb7cde4b0"
        );
        // RFC 2202 test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn hotp_matches_rfc_4226_test_vectors() {
        let key = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp(key, counter as u64, 6), want, "counter {counter}");
        }
    }

    #[test]
    fn totp_matches_rfc_6238_sha1_test_vectors() {
        let key = b"12345678901234567890";
        for (t, want) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            let got = format!("{:08}", hotp(key, step_at(t) as u64, 8));
            assert_eq!(got, want, "T = {t}");
            // The 6-digit code is the last six digits of the 8-digit one.
            assert_eq!(code_at(key, t), want[2..], "T = {t}");
        }
    }

    #[test]
    fn codes_of_the_next_and_previous_step_are_accepted_and_none_further() {
        let key = b"12345678901234567890";
        let t = 1_234_567_890;
        let now = step_at(t);
        assert_eq!(verify(key, &code_at(key, t), t, None), Some(now));
        assert_eq!(verify(key, &code_at(key, t - 30), t, None), Some(now - 1));
        assert_eq!(verify(key, &code_at(key, t + 30), t, None), Some(now + 1));
        assert_eq!(verify(key, &code_at(key, t - 60), t, None), None);
        assert_eq!(verify(key, &code_at(key, t + 60), t, None), None);
        let spaced = format!("{} {}", &code_at(key, t)[..3], &code_at(key, t)[3..]);
        assert_eq!(verify(key, &spaced, t, None), Some(now));
        assert_eq!(verify(key, "12345", t, None), None);
        assert_eq!(verify(key, "abcdef", t, None), None);
    }

    #[test]
    fn a_code_is_accepted_once() {
        let key = b"12345678901234567890";
        let t = 1_234_567_890;
        let code = code_at(key, t);
        let used = verify(key, &code, t, None);
        assert!(used.is_some());
        assert_eq!(verify(key, &code, t, used), None);
        assert_eq!(verify(key, &code, t + 10, used), None);
        // The next step's code is still good.
        assert!(verify(key, &code_at(key, t + 30), t + 30, used).is_some());
    }

    #[test]
    fn constant_time_eq_compares_length_and_every_byte() {
        assert!(constant_time_eq(b"123456", b"123456"));
        assert!(!constant_time_eq(b"123456", b"123457"));
        assert!(!constant_time_eq(b"123456", b"12345"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_account() {
        assert_eq!(
            otpauth_uri("tran.thi.hoa", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/changegate:tran.thi.hoa?secret=JBSWY3DPEHPK3PXP&issuer=changegate&algorithm=SHA1&digits=6&period=30"
        );
    }
}
