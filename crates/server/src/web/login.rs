//! Sign-in and its stages (forced password change, TOTP enrolment, second factor), sign-out and
//! the language switch.

use super::cookies::{self, LANG_COOKIE};
use super::csrf::{CSRF_COOKIE, random_token, same_secret};
use super::errors::WebError;
use super::extract::{Anyone, FormData, Staged};
use super::i18n::Lang;
use super::msg::{self, Errors};
use super::render;
use super::reply::{html, local_path, see_other};
use super::session::{NEXT_COOKIE, after_sign_in, stage_path};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use changegate_app::AppError;
use changegate_app::sessions::{self as acct, Stage};
use std::collections::HashMap;

fn login_page(
    a: &Anyone,
    csrf: &str,
    status: StatusCode,
    username: &str,
    errors: &Errors,
    (flash_error, flash_ok): (Option<String>, Option<String>),
    next: &str,
) -> Result<Response, WebError> {
    let next = Some(local_path(next)).filter(|n| n != "/");
    let ctx = minijinja::context! { lang => a.lang.code(), tz => a.tz, csrf => csrf, path => "/login",
    username => username, errors => errors, flash_error => flash_error, flash_ok => flash_ok,
    next => next };
    Ok(html(status, render::render("login.html", ctx)?))
}

/// `GET /login`: the form, with a fresh double-submit CSRF cookie when there is none.
pub async fn form(
    a: Anyone,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (csrf, fresh) = match &a.csrf_cookie {
        Some(c) => (c.clone(), false),
        None => (random_token(), true),
    };
    let next = q.get("next").map_or("", String::as_str);
    // Coming back to a form whose fields are kept: say so.
    let ok = q.get("ok").and_then(|k| msg::flash(a.lang, k)).or_else(|| {
        next.contains("draft=")
            .then(|| super::i18n::text(a.lang, "ui.draft_kept"))
    });
    let mut res = login_page(
        &a,
        &csrf,
        StatusCode::OK,
        "",
        &Errors::new(),
        (None, ok),
        next,
    )?;
    if fresh {
        res.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(a.secure, CSRF_COOKIE, &csrf, None),
        );
    }
    Ok(res)
}

/// `POST /login`: username and password; on success the session cookie and the next stage.
pub async fn submit(
    State(app): State<AppState>,
    a: Anyone,
    f: FormData,
) -> Result<Response, WebError> {
    let csrf = a.csrf_cookie.clone().unwrap_or_default();
    if !same_secret(f.get("csrf"), &csrf) {
        return Err(WebError::Csrf);
    }
    let (username, password) = (f.get("username").trim(), f.get("password"));
    let next = local_path(f.get("next"));
    let mut errors = Errors::new();
    if username.is_empty() {
        msg::add(&mut errors, a.lang, "username");
    }
    if password.is_empty() {
        msg::add(&mut errors, a.lang, "password");
    }
    if !errors.is_empty() {
        let s = StatusCode::UNPROCESSABLE_ENTITY;
        return login_page(&a, &csrf, s, username, &errors, (None, None), &next);
    }
    match app.sign_in(username, password, a.ip, &a.user_agent).await {
        Ok(signed) => {
            let mut res = if signed.session.stage == Stage::Active {
                after_sign_in(a.secure, Some(&next))
            } else {
                let mut res = see_other(stage_path(signed.session.stage));
                if next != "/" {
                    let enc: String =
                        url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                    res.headers_mut().append(
                        header::SET_COOKIE,
                        cookies::set(a.secure, NEXT_COOKIE, &enc, Some(3600)),
                    );
                }
                res
            };
            res.headers_mut().append(
                header::SET_COOKIE,
                cookies::set(a.secure, acct::SESSION_COOKIE, &signed.token, None),
            );
            Ok(res)
        }
        Err(AppError::Unauthorized(_) | AppError::Conflict(..) | AppError::Invalid(_)) => {
            let m = super::i18n::text(a.lang, "err.login_failed");
            let s = StatusCode::UNAUTHORIZED;
            login_page(&a, &csrf, s, username, &errors, (Some(m), None), &next)
        }
        Err(AppError::Throttled(until)) => {
            let m = super::i18n::text(a.lang, "err.login_throttled")
                .replace("{until}", &until_text(a.lang, &a.tz, until));
            let s = StatusCode::TOO_MANY_REQUESTS;
            login_page(&a, &csrf, s, username, &errors, (Some(m), None), &next)
        }
        Err(AppError::Locked(until)) => {
            let m = super::i18n::text(a.lang, "err.account_locked")
                .replace("{until}", &until_text(a.lang, &a.tz, until));
            let s = StatusCode::FORBIDDEN;
            login_page(&a, &csrf, s, username, &errors, (Some(m), None), &next)
        }
        Err(AppError::Forbidden(_)) => {
            let m = super::i18n::text(a.lang, "err.login_refused");
            let s = StatusCode::FORBIDDEN;
            login_page(&a, &csrf, s, username, &errors, (Some(m), None), &next)
        }
        Err(e) => Err(e.into()),
    }
}

/// When a throttle or lock lifts, in the server's time zone: `24/11/2026 08:30` (vi),
/// `2026-11-24 08:30` (en).
pub(crate) fn until_text(lang: Lang, tz: &str, until: chrono::DateTime<chrono::Utc>) -> String {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    let local = until.with_timezone(&tz);
    match lang {
        Lang::Vi => local.format("%H:%M %d/%m/%Y").to_string(),
        _ => local.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// Sends a session that is not at `stage` to the page of its own stage.
fn at_stage(s: &Staged, stage: Stage) -> Result<(), WebError> {
    match s.s.stage {
        st if st == stage => Ok(()),
        Stage::Active if stage == Stage::ChangePassword => {
            Err(WebError::Redirect("/account".into()))
        }
        st => Err(WebError::Redirect(stage_path(st).into())),
    }
}

/// `GET /login/password`: the forced change of a one-time password.
pub async fn password_form(s: Staged) -> Result<Response, WebError> {
    at_stage(&s, Stage::ChangePassword)?;
    s.page(
        StatusCode::OK,
        "login_password.html",
        minijinja::context! { errors => Errors::new() },
    )
}

/// The message naming the rule of the password policy `new` breaks for `username`, if any
/// (the domain's own check, so the page names the rule the server applies).
fn password_rule(lang: Lang, username: &str, new: &str) -> Option<String> {
    use changegate_domain::password::{MIN_CHARS, PasswordProblem, check};
    let key = match check(username, new).err()? {
        PasswordProblem::TooShort => "ui.password_too_short",
        PasswordProblem::TooLong => "ui.password_too_long",
        PasswordProblem::ContainsUsername => "ui.password_contains_username",
        PasswordProblem::Common => "ui.password_too_common",
    };
    Some(super::i18n::text(lang, key).replace("{n}", &MIN_CHARS.to_string()))
}

/// Maps refusals of a password change of `username` to `new` to the form's fields, naming the
/// rule that failed.
pub(crate) fn password_errors(
    lang: Lang,
    e: AppError,
    username: &str,
    new: &str,
) -> Result<Errors, WebError> {
    let mut errors = Errors::new();
    match e {
        AppError::Invalid(errs) => {
            for (field, _) in errs {
                if field == "current_password" {
                    msg::add(&mut errors, lang, "current_password");
                } else {
                    // Not a rule of the policy: the same password as now.
                    let m = password_rule(lang, username, new)
                        .unwrap_or_else(|| super::i18n::text(lang, "ui.password_reused"));
                    errors.insert("new_password".into(), m);
                }
            }
        }
        AppError::Unauthorized(_) => msg::add(&mut errors, lang, "current_password"),
        other => return Err(other.into()),
    }
    Ok(errors)
}

/// Checks the new password is given, meets the policy (the rule it breaks is named) and is
/// typed twice the same: every problem at once.
pub(crate) fn check_new_password(lang: Lang, username: &str, f: &FormData) -> Errors {
    let mut errors = Errors::new();
    let new = f.get("new_password");
    if new.is_empty() {
        msg::add(&mut errors, lang, "new_password");
    } else if let Some(m) = password_rule(lang, username, new) {
        errors.insert("new_password".into(), m);
    }
    if !new.is_empty() && new != f.get("confirm_password") {
        msg::add_key(
            &mut errors,
            lang,
            "confirm_password",
            "err.passwords_differ",
        );
    }
    errors
}

/// `POST /login/password`.
pub async fn password_submit(
    State(app): State<AppState>,
    s: Staged,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    at_stage(&s, Stage::ChangePassword)?;
    let unprocessable = |errors: Errors| {
        s.page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "login_password.html",
            minijinja::context! { errors => errors },
        )
    };
    let username = s.s.principal.username.clone();
    let errors = check_new_password(s.lang, &username, &f);
    if !errors.is_empty() {
        return unprocessable(errors);
    }
    match app.change_password(&s.s, None, f.get("new_password")).await {
        Ok(next) => Ok(s.onwards(next.stage)),
        Err(e) => unprocessable(password_errors(
            s.lang,
            e,
            &username,
            f.get("new_password"),
        )?),
    }
}

async fn totp_page(
    app: &AppState,
    s: &Staged,
    status: StatusCode,
    errors: Errors,
) -> Result<Response, WebError> {
    let e = app.totp_enrolment(&s.s).await?;
    let qr = qr_svg(&e.otpauth_uri);
    s.page(
        status,
        "login_totp.html",
        minijinja::context! { errors => errors, qr_svg => qr,
        secret => e.secret_base32, otpauth_uri => e.otpauth_uri },
    )
}

/// The QR code of `text` as an inline SVG element (drawn here: no image service sees the
/// secret), or `None` when it does not fit a QR code.
pub(crate) fn qr_svg(text: &str) -> Option<minijinja::Value> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    // Inline in the page: the element itself, without the XML declaration.
    let start = svg.find("<svg")?;
    Some(minijinja::Value::from_safe_string(svg[start..].to_owned()))
}

/// `GET /login/totp`: enrolment of the second factor (the secret and its otpauth URI).
pub async fn totp_form(State(app): State<AppState>, s: Staged) -> Result<Response, WebError> {
    at_stage(&s, Stage::EnrolSecondFactor)?;
    totp_page(&app, &s, StatusCode::OK, Errors::new()).await
}

fn code_error(lang: Lang) -> Errors {
    let mut errors = Errors::new();
    msg::add_key(&mut errors, lang, "code", "err.code_wrong");
    errors
}

/// Whether a refusal means "wrong code" (shown next to the field).
pub(crate) fn is_wrong_code(e: &AppError) -> bool {
    matches!(e, AppError::Unauthorized(_))
        || matches!(e, AppError::Invalid(errs) if errs.iter().any(|(f, _)| f == "code"))
}

/// `POST /login/totp`: the first code confirms the enrolment.
pub async fn totp_submit(
    State(app): State<AppState>,
    s: Staged,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    at_stage(&s, Stage::EnrolSecondFactor)?;
    match app.confirm_totp(&s.s, f.get("code").trim()).await {
        Ok(next) => Ok(s.onwards(next.stage)),
        Err(e) if is_wrong_code(&e) => {
            totp_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                code_error(s.lang),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /login/otp`: the second factor at sign-in.
pub async fn otp_form(s: Staged) -> Result<Response, WebError> {
    at_stage(&s, Stage::SecondFactor)?;
    s.page(
        StatusCode::OK,
        "login_otp.html",
        minijinja::context! { errors => Errors::new() },
    )
}

/// `POST /login/otp`.
pub async fn otp_submit(
    State(app): State<AppState>,
    s: Staged,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    at_stage(&s, Stage::SecondFactor)?;
    match app.check_second_factor(&s.s, f.get("code").trim()).await {
        Ok(next) => Ok(s.onwards(next.stage)),
        Err(e) if is_wrong_code(&e) => s.page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "login_otp.html",
            minijinja::context! { errors => code_error(s.lang) },
        ),
        Err(e) => Err(e.into()),
    }
}

/// `POST /logout` (`everywhere=1`: every session of the person).
pub async fn logout(
    State(app): State<AppState>,
    s: Staged,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    app.sign_out(&s.s, f.get("everywhere") == "1").await?;
    let mut res = see_other("/login?ok=signed_out");
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(s.secure, acct::SESSION_COOKIE, "", Some(0)),
    );
    Ok(res)
}

/// `POST /lang`: sets the language cookie and goes back. The CSRF token is the session's, or
/// before sign-in the double-submit cookie's.
pub async fn set_lang(
    State(app): State<AppState>,
    a: Anyone,
    headers: HeaderMap,
    f: FormData,
) -> Result<Response, WebError> {
    let given = f.get("csrf");
    let mut ok = a
        .csrf_cookie
        .as_deref()
        .is_some_and(|c| same_secret(given, c));
    if let (false, Some(token)) = (
        ok,
        cookies::get(&headers, acct::SESSION_COOKIE).filter(|t| !t.is_empty()),
    ) {
        ok = app
            .web_session(token, a.ip)
            .await
            .is_ok_and(|s| same_secret(given, &s.csrf));
    }
    if !ok {
        return Err(WebError::Csrf);
    }
    let lang = Lang::parse(f.get("lang")).unwrap_or_default();
    let mut res = see_other(&local_path(f.get("back")));
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(a.secure, LANG_COOKIE, lang.code(), Some(365 * 24 * 3600)),
    );
    Ok(res)
}
