//! Searching a normalised text column by words: each word a `LIKE` on the column, its wildcards
//! escaped ([`like_escape`]). Normalising the words and bounding the search is the caller's
//! business.

use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef, LikeExpr, SimpleExpr};

/// One condition per word of `words`: every word must occur in `col`.
pub fn contains_all(
    col: impl IntoColumnRef + Clone,
    words: impl IntoIterator<Item = impl AsRef<str>>,
) -> Vec<SimpleExpr> {
    words
        .into_iter()
        .map(|w| {
            let escaped = w
                .as_ref()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            Expr::col(col.clone()).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
        })
        .collect()
}

/// Escapes `%`, `_` and the escape character `\` itself for a LIKE pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("change_request"), "change\\_request");
        assert_eq!(like_escape("100%"), "100\\%");
    }
}
