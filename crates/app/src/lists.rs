//! What the filtered, paged lists share (change requests, incidents, accounts): a day of the
//! server's time zone as a bound, the words of a search normalised like the searched columns,
//! and the page and its size. Each pushes what is wrong onto the list of field errors, so that a
//! bad query is refused naming every bad field at once.

use changegate_domain::change::search_words;
use chrono::{DateTime, NaiveDate, Utc};

/// Field errors of a query: (field, message).
pub(crate) type Errors = Vec<(String, String)>;

/// The first instant of day `d` (`YYYY-MM-DD`) in `tz`; an error on `field` if it is not a date.
pub(crate) fn day(
    tz: chrono_tz::Tz,
    field: &str,
    d: &str,
    errors: &mut Errors,
) -> Option<DateTime<Utc>> {
    let start = NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(tz).earliest());
    if start.is_none() {
        errors.push((field.into(), format!("{d:?} is not a date (YYYY-MM-DD)")));
    }
    start.map(|t| t.with_timezone(&Utc))
}

/// The bounds of `from` and `to` (days, both included): from the start of `from` to the start of
/// the day after `to`.
pub(crate) fn day_range(
    tz: chrono_tz::Tz,
    from: Option<&str>,
    to: Option<&str>,
    errors: &mut Errors,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let from = from
        .filter(|s| !s.is_empty())
        .and_then(|d| day(tz, "from", d, errors));
    let to = to
        .filter(|s| !s.is_empty())
        .and_then(|d| day(tz, "to", d, errors));
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        errors.push(("to".into(), "is before from".into()));
    }
    (from, to.map(|b| b + chrono::Duration::days(1)))
}

/// The words of search `q`, normalised like the searched columns (without diacritics); an error
/// on `q` if it is longer than 200 characters.
pub(crate) fn search_terms(q: Option<&str>, errors: &mut Errors) -> Vec<String> {
    let Some(text) = q else { return vec![] };
    if text.chars().count() > 200 {
        errors.push(("q".into(), "at most 200 characters".into()));
    }
    search_words(text)
}

/// The page (from 1) and its size (1-500, `default` when not given).
pub(crate) fn paging(
    page: Option<u64>,
    limit: Option<u64>,
    default: u64,
    errors: &mut Errors,
) -> (u64, u64) {
    let per_page = limit.unwrap_or(default);
    if !(1..=500).contains(&per_page) {
        errors.push(("limit".into(), "must be from 1 to 500".into()));
    }
    let page = page.unwrap_or(1);
    if page == 0 || page > 100_000 {
        errors.push(("page".into(), "must be from 1 to 100000".into()));
    }
    (page, per_page)
}
