//! The web UI's forms (issue 17): one-time form ids, so a form sent twice (a double click, two
//! tabs, a retry) acts once and the second answer is the first's result; and drafts, the fields
//! of a form sent after its session ended, kept for a short while through the sign-in.

use super::m20261124_000001_core::index;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("web_form_uses")
                .col(big_pk_auto("id"))
                // SHA-256 (hex) of the session token and the form id together.
                .col(string_len_uniq("form_key", 64))
                // Where the first submission sent the browser; empty while it runs.
                .col(string_len("outcome", 1000))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        index(m, "web_form_uses", &["created_at"], false).await?;
        m.create_table(
            Table::create()
                .table("web_drafts")
                .col(big_pk_auto("id"))
                // SHA-256 (hex) of the draft's random id (the id itself is only in the URL).
                .col(string_len_uniq("draft_hash", 64))
                // The page the form was on.
                .col(string_len("page", 1000))
                // The fields, URL-encoded (never passwords, codes or the CSRF token).
                .col(text("fields"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        index(m, "web_drafts", &["created_at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["web_drafts", "web_form_uses"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
