//! The page templates (minijinja, embedded with `include_str!`, HTML autoescaping on every
//! `.html` template) and the functions and filters they use:
//!
//! - `t("key", name=value, …)`: the text of `key` in the page's language, with `{name}` replaced;
//! - `t_or("key", fallback)`: the same, or `fallback` when there is no such key;
//! - `dt` / `day` filters: a time or date in the server's time zone, in the page language's style;
//! - `urlencode` filter: a query-string component;
//! - `env_name` filter: an environment's display name (the configured one on Vietnamese pages,
//!   else the built-in name of a common id, else the id);
//! - `person(username)`: a person's full name from the page's `people`; `system` and the
//!   command line named in the page's language.
//!
//! Also the context every signed-in page's layout (`base.html`) needs ([`base_context`]).

use super::i18n::{self, Lang};
use changegate_app::Principal;
use changegate_app::sessions::WebSession;
use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, State, Value};
use std::sync::LazyLock;

/// Every template, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/web/base.html")),
    (
        "macros.html",
        include_str!("../../templates/web/macros.html"),
    ),
    ("error.html", include_str!("../../templates/web/error.html")),
    ("login.html", include_str!("../../templates/web/login.html")),
    (
        "login_password.html",
        include_str!("../../templates/web/login_password.html"),
    ),
    (
        "login_totp.html",
        include_str!("../../templates/web/login_totp.html"),
    ),
    (
        "login_otp.html",
        include_str!("../../templates/web/login_otp.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../templates/web/dashboard.html"),
    ),
    (
        "systems.html",
        include_str!("../../templates/web/systems.html"),
    ),
    (
        "system.html",
        include_str!("../../templates/web/system.html"),
    ),
    (
        "change_new.html",
        include_str!("../../templates/web/change_new.html"),
    ),
    (
        "change.html",
        include_str!("../../templates/web/change.html"),
    ),
    (
        "changes.html",
        include_str!("../../templates/web/changes.html"),
    ),
    (
        "evaluate.html",
        include_str!("../../templates/web/evaluate.html"),
    ),
    (
        "report.html",
        include_str!("../../templates/web/report.html"),
    ),
    (
        "about_rules.html",
        include_str!("../../templates/web/about_rules.html"),
    ),
    (
        "breach_notice.html",
        include_str!("../../templates/web/breach_notice.html"),
    ),
    (
        "incidents.html",
        include_str!("../../templates/web/incidents.html"),
    ),
    (
        "incident_new.html",
        include_str!("../../templates/web/incident_new.html"),
    ),
    ("audit.html", include_str!("../../templates/web/audit.html")),
    (
        "remediations.html",
        include_str!("../../templates/web/remediations.html"),
    ),
    (
        "remediation.html",
        include_str!("../../templates/web/remediation.html"),
    ),
    (
        "remediation_table.html",
        include_str!("../../templates/web/remediation_table.html"),
    ),
    (
        "tokens.html",
        include_str!("../../templates/web/tokens.html"),
    ),
    (
        "account.html",
        include_str!("../../templates/web/account.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../templates/web/admin_users.html"),
    ),
    (
        "admin_signals.html",
        include_str!("../../templates/web/admin_signals.html"),
    ),
    (
        "incident.html",
        include_str!("../../templates/web/incident.html"),
    ),
    (
        "confirm.html",
        include_str!("../../templates/web/confirm.html"),
    ),
    (
        "admin_user.html",
        include_str!("../../templates/web/admin_user.html"),
    ),
    ("pager.html", include_str!("../../templates/web/pager.html")),
    // --- annual-report ---
    (
        "annual_report.html",
        include_str!("../../templates/web/annual_report.html"),
    ),
    (
        "annual.html",
        include_str!("../../templates/web/annual.html"),
    ),
    (
        "level_record.html",
        include_str!("../../templates/web/level_record.html"),
    ),
    (
        "organisations.html",
        include_str!("../../templates/web/organisations.html"),
    ),
    (
        "organisation.html",
        include_str!("../../templates/web/organisation.html"),
    ),
];

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or_default()
}

fn t(state: &State, key: &str, kwargs: Kwargs) -> Result<String, Error> {
    let mut s = i18n::text(lang_of(state), key);
    for name in kwargs.args().map(str::to_owned).collect::<Vec<_>>() {
        let v: Value = kwargs.get(&name)?;
        s = s.replace(&format!("{{{name}}}"), &v.to_string());
    }
    kwargs.assert_all_used()?;
    Ok(s)
}

fn t_or(state: &State, key: &str, fallback: &str) -> String {
    i18n::get(lang_of(state), key)
        .unwrap_or(fallback)
        .to_owned()
}

fn tz_of(state: &State) -> chrono_tz::Tz {
    state
        .lookup("tz")
        .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh)
}

/// A time (RFC 3339) in the server's time zone: `24/11/2026 08:30` (vi), `2026-11-24 08:30` (en).
fn dt(state: &State, v: Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(d) => {
            let d = d.with_timezone(&tz_of(state));
            match lang_of(state) {
                Lang::Vi => d.format("%d/%m/%Y %H:%M").to_string(),
                Lang::En => d.format("%Y-%m-%d %H:%M").to_string(),
            }
        }
        Err(_) => s.to_owned(),
    }
}

/// A date (`YYYY-MM-DD` or RFC 3339) in the page language's style.
fn day(state: &State, v: Value) -> String {
    let Some(s) = v.as_str() else {
        return String::new();
    };
    let date = chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&tz_of(state)).date_naive())
        .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"));
    match (date, lang_of(state)) {
        (Ok(d), Lang::Vi) => d.format("%d/%m/%Y").to_string(),
        (Ok(d), Lang::En) => d.format("%Y-%m-%d").to_string(),
        (Err(_), _) => s.to_owned(),
    }
}

/// A time (RFC 3339) or date as day, month and year in the server's time zone, for the
/// "ngày … tháng … năm …" line of an official document: `["02", "12", "2026"]`.
fn ymd(state: &State, v: Value) -> Vec<String> {
    let Some(s) = v.as_str() else {
        return vec![];
    };
    let date = chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&tz_of(state)).date_naive())
        .or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"));
    date.map(|d| {
        vec![
            d.format("%d").to_string(),
            d.format("%m").to_string(),
            d.format("%Y").to_string(),
        ]
    })
    .unwrap_or_default()
}

/// The time left until `due` (RFC 3339), or how long it is overdue, in the page's language.
fn left(state: &State, due: Value) -> String {
    let Some(due) = due
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    else {
        return String::new();
    };
    let mins = (due.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    let (h, m) = (mins.abs() / 60, mins.abs() % 60);
    match (lang_of(state), mins >= 0) {
        (Lang::Vi, true) => format!("còn {h} giờ {m} phút"),
        (Lang::Vi, false) => format!("quá hạn {h} giờ {m} phút"),
        (Lang::En, true) => format!("{h} h {m} min left"),
        (Lang::En, false) => format!("{h} h {m} min overdue"),
    }
}

/// The number (from 1) of a checklist item in the change's checklist, or the id itself.
fn item_no(checklist: Value, id: &str) -> Value {
    let n = checklist.try_iter().ok().and_then(|it| {
        it.enumerate().find_map(|(i, c)| {
            c.get_attr("item")
                .ok()
                .filter(|v| v.as_str() == Some(id))
                .map(|_| i + 1)
        })
    });
    n.map_or_else(|| Value::from(id), Value::from)
}

fn env_name(state: &State, v: Value) -> String {
    let id = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let lang = lang_of(state);
    if lang == Lang::Vi
        && let Some(name) = state
            .lookup("env_names")
            .and_then(|m| m.get_attr(&id).ok())
            .and_then(|n| n.as_str().map(str::to_owned))
    {
        return name;
    }
    i18n::get(lang, &format!("env.{id}")).map_or(id, str::to_owned)
}

fn person(state: &State, username: Value) -> String {
    let name = username
        .as_str()
        .map_or_else(|| username.to_string(), str::to_owned);
    if let Some(full) = state
        .lookup("people")
        .and_then(|m| m.get_attr(&name).ok())
        .and_then(|n| n.as_str().map(str::to_owned))
    {
        return full;
    }
    let lang = lang_of(state);
    match name.split_once(':') {
        _ if name == "system" => i18n::text(lang, "actor.system"),
        Some(("cli", _)) => i18n::text(lang, "actor.cli"),
        Some(("ci", rest)) => i18n::text(lang, "actor.ci").replace("{name}", rest),
        _ => name,
    }
}

fn urlencode(v: Value) -> String {
    let s = v
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    for (name, src) in TEMPLATES {
        if let Err(e) = env.add_template(name, src) {
            // A broken template is a build defect (the tests render every one); the page that
            // uses it answers 500.
            tracing::error!(template = name, error = %e, "a web template does not compile");
        }
    }
    env.add_function("t", t);
    env.add_function("t_or", t_or);
    env.add_function("item_no", item_no);
    env.add_function("left", left);
    env.add_filter("dt", dt);
    env.add_filter("day", day);
    env.add_filter("ymd", ymd);
    env.add_filter("urlencode", urlencode);
    env.add_filter("env_name", env_name);
    env.add_function("person", person);
    env
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(environment);

/// Renders a template with a context.
pub fn render(name: &str, ctx: Value) -> Result<String, Error> {
    ENV.get_template(name)?.render(ctx)
}

/// What every signed-in page's layout needs.
pub fn base_context(s: &WebSession, lang: Lang, tz: &str, path: &str) -> Value {
    let p: &Principal = &s.principal;
    minijinja::context! {
        lang => lang.code(),
        tz => tz,
        csrf => s.csrf,
        form_id => super::csrf::random_token(),
        path => path,
        me => minijinja::context! {
            username => p.username,
            display_name => p.display_name,
            role => p.role.as_str(),
            org => p.org_code,
        },
    }
}

/// An error for a template that is not there.
pub fn missing(name: &str) -> Error {
    Error::new(ErrorKind::TemplateNotFound, name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `t("key"` and `t_or("key"` with a literal key in the templates.
    fn literal_keys() -> BTreeSet<(String, &'static str)> {
        let mut out = BTreeSet::new();
        for (name, src) in TEMPLATES {
            for pat in ["t(\"", "t_or(\""] {
                let mut rest = *src;
                while let Some(i) = rest.find(pat) {
                    // `t("` must not be the end of another name (`format("`).
                    let before = rest[..i].chars().last();
                    rest = &rest[i + pat.len()..];
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') && pat == "t(\"" {
                        continue;
                    }
                    if let Some(end) = rest.find('"') {
                        out.insert((rest[..end].to_owned(), *name));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(
                ENV.get_template(name).is_ok(),
                "{name}: {:?}",
                ENV.get_template(name).err()
            );
        }
    }

    #[test]
    fn every_key_a_template_uses_exists_in_both_languages() {
        let keys = literal_keys();
        assert!(keys.len() > 100, "found only {} keys", keys.len());
        let missing: Vec<_> = keys
            .iter()
            .filter(|(k, _)| {
                !k.ends_with('.')
                    && !k.ends_with('_')
                    && (i18n::get(Lang::Vi, k).is_none() || i18n::get(Lang::En, k).is_none())
            })
            .collect();
        assert!(
            missing.is_empty(),
            "keys used but not translated: {missing:?}"
        );
    }

    #[test]
    fn every_key_of_a_computed_family_exists() {
        use changegate_domain::{ChangeKind, CheckResult, CrState, Role, Severity};
        let mut keys: Vec<String> = vec![];
        keys.extend(CrState::ALL.iter().map(|s| format!("state.{}", s.as_str())));
        keys.extend(
            ChangeKind::ALL
                .iter()
                .map(|s| format!("kind.{}", s.as_str())),
        );
        keys.extend(
            CheckResult::ALL
                .iter()
                .map(|s| format!("result.{}", s.as_str())),
        );
        keys.extend(
            Severity::ALL
                .iter()
                .map(|s| format!("severity.{}", s.as_str())),
        );
        keys.extend(Role::ALL.iter().map(|r| format!("role.{}", r.as_str())));
        keys.extend(
            changegate_app::incidents::KINDS
                .iter()
                .map(|k| format!("incident_kind.{k}")),
        );
        keys.extend(
            changegate_api::ReasonCode::ALL
                .iter()
                .map(changegate_api::ReasonCode::as_str)
                .map(|c| format!("reason.{c}")),
        );
        keys.extend(
            changegate_domain::gate::SystemStatus::ALL
                .iter()
                .map(|c| format!("system_status.{}", c.as_str())),
        );
        keys.extend(
            changegate_domain::gate::IncidentStatus::ALL
                .iter()
                .map(|c| format!("incident_status.{}", c.as_str())),
        );
        keys.extend(
            ["pass", "fail", "changes_requested"]
                .iter()
                .map(|c| format!("conclusion.{c}")),
        );
        keys.extend(
            ["owner", "reviewer", "inspector"]
                .iter()
                .map(|c| format!("org_kind.{c}")),
        );
        keys.extend(
            changegate_domain::ComponentKind::ALL
                .iter()
                .map(|c| format!("component.{}", c.as_str())),
        );
        keys.extend(
            Role::ALL
                .iter()
                .map(|r| format!("dash.intro_{}", r.as_str())),
        );
        keys.extend(
            CrState::ALL
                .iter()
                .map(|s| s.as_str())
                .chain(["changes_requested"])
                .map(|s| format!("outcome.{s}")),
        );
        for e in [
            "not_found",
            "forbidden",
            "csrf",
            "conflict",
            "bad_request",
            "unavailable",
            "internal",
        ] {
            keys.push(format!("error.{e}"));
            keys.push(format!("error.{e}_title"));
        }
        keys.push("error.separation_of_duties".into());
        keys.extend(super::super::msg::ALL_KEYS.iter().cloned());
        let missing: Vec<_> = keys
            .iter()
            .filter(|k| i18n::get(Lang::Vi, k).is_none() || i18n::get(Lang::En, k).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "computed keys not translated: {missing:?}"
        );
    }

    #[test]
    fn text_is_escaped_and_translations_follow_the_page_language() {
        let ctx = minijinja::context! { lang => "en", status => 404, title_key => "error.not_found_title",
        message_key => "error.not_found", me => Value::UNDEFINED };
        let html = render("error.html", ctx).unwrap_or_default();
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(
            html.contains(&i18n::text(Lang::En, "error.not_found")),
            "{html}"
        );
        let vi = render(
            "error.html",
            minijinja::context! { lang => "vi", status => 404,
            title_key => "error.not_found_title", message_key => "error.not_found" },
        )
        .unwrap_or_default();
        assert!(vi.contains("<html lang=\"vi\">"), "{vi}");
        assert!(
            vi.contains(&i18n::text(Lang::Vi, "error.not_found")),
            "{vi}"
        );
    }

    #[test]
    fn times_show_in_the_server_time_zone() {
        let env = environment();
        let out = env
            .render_str(
                "{{ '2026-11-24T01:30:00Z'|dt }} {{ '2026-11-24'|day }}",
                minijinja::context! { lang => "vi", tz => "Asia/Ho_Chi_Minh" },
            )
            .unwrap_or_default();
        assert_eq!(out, "24/11/2026 08:30 24/11/2026");
        let out = env
            .render_str(
                "{{ '2026-11-24T01:30:00Z'|dt }}",
                minijinja::context! { lang => "en", tz => "Asia/Ho_Chi_Minh" },
            )
            .unwrap_or_default();
        assert_eq!(out, "2026-11-24 08:30");
    }
}
