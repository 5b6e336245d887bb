//! Reading and setting the web UI's cookies with axum-extra's `Cookie`: one `Set-Cookie` shape
//! for all of them, the lookup of a cookie in a request, and the language cookie.

use super::i18n::Lang;
use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, SameSite};

/// The language cookie.
pub const LANG_COOKIE: &str = "cg_lang";

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when `secure` (the server is
/// reached over TLS, directly or through a proxy); `max_age` 0 removes the cookie, `None` makes
/// it last for the browser session. The value is sent as given (not percent-encoded).
pub fn set(secure: bool, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict);
    if secure {
        c = c.secure(true);
    }
    if let Some(age) = max_age {
        c = c.max_age(time::Duration::seconds(age));
    }
    HeaderValue::from_str(&c.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// The value of a cookie, as the browser sent it: not percent-decoded, and of two cookies with
/// one name the first (the browser sends the one of the longer path first). axum-extra's
/// `CookieJar` would decode values (`cg_next` is URL-encoded and decoded once, by its reader)
/// and keep the last of a name, so the header is read with `Cookie::split_parse`.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
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

    fn cookies(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookies_are_found_among_several() {
        let h = cookies(&["a=1; cg_lang=en; cg_session=tok"]);
        assert_eq!(get(&h, "cg_lang"), Some("en"));
        assert_eq!(get(&h, "cg_session"), Some("tok"));
        assert_eq!(get(&h, "missing"), None);
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(lang_of(&HeaderMap::new()), Lang::Vi);
    }

    #[test]
    fn a_cookie_is_read_as_sent_and_the_first_of_a_name_wins() {
        let h = cookies(&[
            "cg_next=%2Faudit%3Fq%3Da%2Bb; broken; =x; ;",
            "cg_next=second; cg_empty=; cg_csrf=tok ",
        ]);
        assert_eq!(get(&h, "cg_next"), Some("%2Faudit%3Fq%3Da%2Bb"));
        assert_eq!(get(&h, "cg_empty"), Some(""));
        assert_eq!(get(&h, "cg_csrf"), Some("tok"));
        assert_eq!(get(&h, "broken"), None);
    }

    #[test]
    fn session_cookies_are_http_only_and_strict() {
        let c = set(false, "cg_session", "x", None);
        let c = c.to_str().unwrap_or_default();
        assert_eq!(c, "cg_session=x; HttpOnly; SameSite=Strict; Path=/", "{c}");
    }

    #[test]
    fn behind_tls_cookies_are_secure_and_max_age_is_kept() {
        let c = set(true, "cg_lang", "en", Some(365 * 24 * 3600));
        assert_eq!(
            c.to_str().unwrap_or_default(),
            "cg_lang=en; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=31536000"
        );
        let gone = set(false, "cg_next", "", Some(0));
        assert_eq!(
            gone.to_str().unwrap_or_default(),
            "cg_next=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
        let next = set(false, "cg_next", "%2Fchanges%2F8", Some(3600));
        assert!(
            next.to_str()
                .unwrap_or_default()
                .starts_with("cg_next=%2Fchanges%2F8; "),
            "the value is sent as given: {next:?}"
        );
    }
}
