//! Translations: `templates/web/i18n/vi.toml` and `en.toml`, embedded in the binary and flattened
//! to dotted keys (`[nav] dashboard = "…"` is `nav.dashboard`). Vietnamese is the default; both
//! files hold exactly the same keys (a test checks it), so no page mixes languages.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Tiếng Việt (default).
    #[default]
    Vi,
    /// English.
    En,
}

impl Lang {
    /// The code used in `<html lang>` and the `cg_lang` cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    /// Parses a code; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

const VI: &str = include_str!("../../templates/web/i18n/vi.toml");
const EN: &str = include_str!("../../templates/web/i18n/en.toml");

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

/// Parses one translation file into dotted keys.
pub fn parse(text: &str) -> Result<HashMap<String, String>, toml::de::Error> {
    let table: toml::Table = toml::from_str(text)?;
    let mut out = HashMap::new();
    flatten("", &table, &mut out);
    Ok(out)
}

static TABLES: LazyLock<[HashMap<String, String>; 2]> = LazyLock::new(|| {
    // The files are part of the binary and checked by the tests; a broken one shows keys.
    [VI, EN].map(|text| {
        parse(text).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a translation file of the web UI does not parse");
            HashMap::new()
        })
    })
});

/// The text of `key` in `lang`, if there is one.
pub fn get(lang: Lang, key: &str) -> Option<&'static str> {
    let table = match lang {
        Lang::Vi => &TABLES[0],
        Lang::En => &TABLES[1],
    };
    table.get(key).map(String::as_str)
}

/// Every key under `prefix` (`action.`) with its text in `lang`, sorted by key.
pub fn under(lang: Lang, prefix: &str) -> Vec<(&'static str, &'static str)> {
    let table = match lang {
        Lang::Vi => &TABLES[0],
        Lang::En => &TABLES[1],
    };
    let mut out: Vec<_> = table
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    out.sort_unstable();
    out
}

/// The text of `key` in `lang`, or the key itself (visible, so a gap is noticed).
pub fn text(lang: Lang, key: &str) -> String {
    get(lang, key).unwrap_or(key).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn both_languages_have_exactly_the_same_keys() {
        let vi = parse(VI).unwrap_or_default();
        let en = parse(EN).unwrap_or_default();
        assert!(vi.len() > 100, "vi.toml has {} keys", vi.len());
        let vk: BTreeSet<_> = vi.keys().collect();
        let ek: BTreeSet<_> = en.keys().collect();
        let only_vi: Vec<_> = vk.difference(&ek).collect();
        let only_en: Vec<_> = ek.difference(&vk).collect();
        assert!(
            only_vi.is_empty() && only_en.is_empty(),
            "only in vi.toml: {only_vi:?}; only in en.toml: {only_en:?}"
        );
        for (k, v) in vi.iter().chain(en.iter()) {
            assert!(!v.trim().is_empty(), "{k} is empty");
        }
    }

    #[test]
    fn the_files_parse() {
        assert!(parse(VI).is_ok(), "{:?}", parse(VI).err());
        assert!(parse(EN).is_ok(), "{:?}", parse(EN).err());
    }

    #[test]
    fn vietnamese_is_the_default_and_the_texts_differ() {
        assert_eq!(Lang::default(), Lang::Vi);
        assert_ne!(
            text(Lang::Vi, "nav.dashboard"),
            text(Lang::En, "nav.dashboard")
        );
        assert_eq!(text(Lang::Vi, "no.such.key"), "no.such.key");
    }
}
