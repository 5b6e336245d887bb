//! The query string of a filtered, paged list page (`?state=open&q=nang+cap&page=2`): its values
//! trimmed, an empty one meaning no filter, and its page number (not a number: a bad request).

use super::errors::WebError;
use std::collections::HashMap;

/// A list page's query string.
pub struct ListQuery<'a>(pub &'a HashMap<String, String>);

impl ListQuery<'_> {
    /// The value of `k`, trimmed; None when absent or empty.
    pub fn get(&self, k: &str) -> Option<String> {
        self.0
            .get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The page asked for, if any.
    pub fn page(&self) -> Result<Option<u64>, WebError> {
        self.get("page")
            .map(|p| p.parse::<u64>().map_err(|_| WebError::BadRequest))
            .transpose()
    }
}
