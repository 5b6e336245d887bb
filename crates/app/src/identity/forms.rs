//! The web UI's forms (issue 17): one-time form ids and drafts kept through a sign-in.
//!
//! A form id is used once per session: the first submission claims it (a unique row), the page
//! records where it sent the browser, and a second submission with the same id (a double click,
//! a retry, a parallel request) is sent there too, never acting again. A submission that did not
//! act (a form shown again with its errors) gives its id back.
//!
//! A draft is what a form held when it was sent after its session had ended: its fields (never
//! a password, a code or the CSRF token) under a random id that only the browser's URL carries,
//! read once and only within [`DRAFT_LIFETIME`].

use crate::{App, AppResult};
use changegate_store::forms;
use sha2::{Digest, Sha256};

/// How long a draft waits for its author to sign in again.
pub const DRAFT_LIFETIME: chrono::Duration = chrono::Duration::hours(2);
/// How long a used form id is remembered.
const FORM_ID_LIFETIME: chrono::Duration = chrono::Duration::days(2);
/// Fields never kept in a draft.
const SECRET_FIELDS: [&str; 7] = [
    "csrf",
    "form_id",
    "password",
    "current_password",
    "new_password",
    "confirm_password",
    "code",
];

/// What a submission of a form id may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormClaim {
    /// The first submission: act, then [`App::finish_form`] or [`App::release_form`].
    First,
    /// Used before: the first submission sent the browser here.
    Done(String),
    /// The first submission is still running.
    Running,
}

fn form_key(session_token: &str, form_id: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{session_token}\n{form_id}").as_bytes(),
    ))
}

fn draft_hash(id: &str) -> String {
    hex::encode(Sha256::digest(format!("draft\n{id}").as_bytes()))
}

/// The fields of a URL-encoded form worth keeping in a draft (no secrets), re-encoded.
pub fn draft_fields(body: &[u8]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(body) {
        if !SECRET_FIELDS.contains(&k.as_ref()) {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

impl App {
    /// Claims `form_id` for the session of `session_token`.
    pub async fn claim_form(&self, session_token: &str, form_id: &str) -> AppResult<FormClaim> {
        let key = form_key(session_token, form_id);
        let now = crate::now();
        if forms::claim_use(&self.db, &key, now).await? {
            // Forget old uses now and then (they only guard against a resubmission).
            if rand::random::<u8>() < 8 {
                forms::forget_uses_before(&self.db, now - FORM_ID_LIFETIME).await?;
            }
            return Ok(FormClaim::First);
        }
        let row = forms::form_use(&self.db, &key).await?;
        Ok(match row {
            Some(r) if !r.outcome.is_empty() => FormClaim::Done(r.outcome),
            Some(_) => FormClaim::Running,
            // Given back between the two statements: this one may act.
            None => FormClaim::First,
        })
    }

    /// Records where the first submission of `form_id` sent the browser.
    pub async fn finish_form(
        &self,
        session_token: &str,
        form_id: &str,
        outcome: &str,
    ) -> AppResult<()> {
        forms::record_outcome(&self.db, &form_key(session_token, form_id), outcome).await?;
        Ok(())
    }

    /// Gives `form_id` back: its submission did not act (the form is shown again).
    pub async fn release_form(&self, session_token: &str, form_id: &str) -> AppResult<()> {
        forms::release_use(&self.db, &form_key(session_token, form_id)).await?;
        Ok(())
    }

    /// Keeps a form's fields (URL-encoded, see [`draft_fields`]) sent from `page`; answers the
    /// draft's random id.
    pub async fn save_draft(&self, page: &str, fields: &str) -> AppResult<String> {
        use base64::Engine;
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
        let now = crate::now();
        forms::forget_drafts_before(&self.db, now - DRAFT_LIFETIME).await?;
        forms::keep_draft(
            &self.db,
            forms::NewDraft {
                draft_hash: draft_hash(&id),
                page: page.chars().take(1000).collect(),
                fields: fields.chars().take(200_000).collect(),
                at: now,
            },
        )
        .await?;
        Ok(id)
    }

    /// The fields of draft `id` kept for the page at path `page` (its query aside), once: the
    /// draft is then gone. `None` when it is not there, expired or another page's.
    pub async fn take_draft(
        &self,
        id: &str,
        page: &str,
    ) -> AppResult<Option<Vec<(String, String)>>> {
        let Some(row) = forms::draft(&self.db, &draft_hash(id)).await? else {
            return Ok(None);
        };
        if row.page.split('?').next() != Some(page) {
            return Ok(None);
        }
        forms::forget_draft(&self.db, row.id).await?;
        if row.created_at < crate::now() - DRAFT_LIFETIME {
            return Ok(None);
        }
        Ok(Some(
            url::form_urlencoded::parse(row.fields.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_never_keep_secrets() {
        let kept = draft_fields(b"csrf=x&form_id=y&title=T%E1%BB%AB&password=p&code=123456&environments=a&environments=b");
        assert_eq!(kept, "title=T%E1%BB%AB&environments=a&environments=b");
    }
}
