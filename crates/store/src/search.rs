//! Searching a normalised text column by words: each word a `LIKE` on the column, its wildcards
//! escaped. Normalising the words and bounding the search is the caller's business.

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
