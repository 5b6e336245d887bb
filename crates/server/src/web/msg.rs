//! Messages the handlers choose (page-level flashes, field errors), as translation keys. The
//! app's own messages are English sentences for the API; a page shows the translated message of
//! the field instead, so no page mixes languages.

use super::i18n::{self, Lang};
use std::collections::BTreeMap;

/// Page-level messages that may be named in a redirect's query (`?ok=submitted`).
pub const FLASHES: &[&str] = &[
    "filed",
    "edited",
    "not_editable",
    "fulfilled",
    "verified",
    "reopened",
    "submitted",
    "withdrawn",
    "signed_off",
    "changes_requested",
    "submit_failed",
    "incident_reported",
    "notice_recorded",
    "notice_invalid",
    "incident_resolved",
    "token_revoked",
    "password_changed",
    "user_unlocked",
    "second_factor_reset",
    "signed_out",
    "system_edited",
    "system_retired",
    "people.deactivated",
    "people.reactivated",
    "people.edited",
    "assessment_recorded",
];

/// Fields with a translated message (`err.<field>`).
pub const FIELDS: &[&str] = &[
    "username",
    "password",
    "current_password",
    "new_password",
    "confirm_password",
    "code",
    "system",
    "kind",
    "title",
    "description",
    "environments",
    "commit",
    "tree",
    "artifact",
    "conclusion",
    "findings",
    "conditions",
    "checklist",
    "result",
    "note",
    "severity",
    "summary",
    "name",
    "expires_days",
    "display_name",
    "org",
    "role",
    "from",
    "to",
    "finding_text",
    "finding_item",
    "finding_sev",
    "cond_text",
    "cond_sev",
    "cond_due",
    "return_note",
    "evidence",
    "verify_note",
    "detected_at",
    "operating_unit",
    "reason",
    "population_db",
    "organisation",
    "licence",
    "report_ref",
    "assessed_on",
    "generic",
];

/// Other keys the handlers use.
pub const OTHER: &[&str] = &[
    "err.login_failed",
    "err.login_refused",
    "err.passwords_differ",
    "err.conclusion_fail_item",
    "err.already_exists",
    "err.assessment_exists",
    "err.note_required",
    "err.code_wrong",
    "err.env_in_use",
    "people.confirm_required",
    "people.refused.own_account",
    "people.refused.last_admin",
    "people.refused.already_inactive",
    "people.refused.already_active",
    "people.refused.account_inactive",
];

/// Every key chosen in Rust code (checked by a test to exist in both languages).
pub static ALL_KEYS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    FLASHES
        .iter()
        .map(|f| format!("flash.{f}"))
        .chain(FIELDS.iter().map(|f| format!("err.{f}")))
        .chain(OTHER.iter().map(|k| (*k).to_owned()))
        .collect()
});

/// The translated flash `name`, if it is one of [`FLASHES`] (nothing else from a URL is shown).
pub fn flash(lang: Lang, name: &str) -> Option<String> {
    FLASHES
        .contains(&name)
        .then(|| i18n::text(lang, &format!("flash.{name}")))
}

/// The translated message of a form field.
pub fn field(lang: Lang, field: &str) -> String {
    // A field of a repeated row (`note_3`, `cond_due_1`) has the message of its column.
    let base = field
        .rsplit_once('_')
        .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(field, |(b, _)| b);
    let key = if FIELDS.contains(&base) {
        format!("err.{base}")
    } else {
        "err.generic".to_owned()
    };
    i18n::text(lang, &key)
}

/// Field errors of a form: form field name → translated message.
pub type Errors = BTreeMap<String, String>;

/// Adds the translated message of `field`, unless it already has one.
pub fn add(errors: &mut Errors, lang: Lang, form_field: &str) {
    errors
        .entry(form_field.to_owned())
        .or_insert_with(|| field(lang, form_field));
}

/// Adds a specific message (a key of [`OTHER`]) for `field`, replacing any other.
pub fn add_key(errors: &mut Errors, lang: Lang, form_field: &str, key: &str) {
    errors.insert(form_field.to_owned(), i18n::text(lang, key));
}
