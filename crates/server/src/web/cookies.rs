//! Reading and setting the web UI's cookies: one `Set-Cookie` shape for all of them, the lookup
//! of a cookie in a request, and the language cookie.

use super::i18n::Lang;
use axum::http::{HeaderMap, HeaderValue, header};

/// The language cookie.
pub const LANG_COOKIE: &str = "cg_lang";

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when `secure` (the server is
/// reached over TLS, directly or through a proxy); `max_age` 0 removes the cookie, `None` makes
/// it last for the browser session.
pub fn set(secure: bool, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// The value of a cookie.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The page language from the `cg_lang` cookie (Vietnamese by default).
pub fn lang_of(headers: &HeaderMap) -> Lang {
    get(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cg_lang=en; cg_session=tok"),
        );
        assert_eq!(get(&h, "cg_lang"), Some("en"));
        assert_eq!(get(&h, "cg_session"), Some("tok"));
        assert_eq!(get(&h, "missing"), None);
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(lang_of(&HeaderMap::new()), Lang::Vi);
    }

    #[test]
    fn session_cookies_are_http_only_and_strict() {
        let c = set(false, "cg_session", "x", None);
        let c = c.to_str().unwrap_or_default();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
            "{c}"
        );
    }
}
