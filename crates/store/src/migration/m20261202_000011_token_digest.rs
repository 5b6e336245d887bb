//! API tokens as a keyed SHA-256 (issue 16): `token_digest` is the HMAC-SHA-256 of the whole
//! token under the server's token key (a file beside the signing key), looked up by its unique
//! index; `digest_key` names that key. Rows of older databases have only their argon2id
//! `secret_hash`: verified that way once, they get their digest. `parent_token_id`: the token
//! that minted this one (its expiry bounds the child's; revoking it revokes the child).

use super::m20261124_000001_core::index;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 3] = ["token_digest", "digest_key", "parent_token_id"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut c in [
            string_len_null("token_digest", 64),
            string_len_null("digest_key", 16),
            big_integer_null("parent_token_id"),
        ] {
            m.alter_table(
                Table::alter()
                    .table("api_tokens")
                    .add_column(&mut c)
                    .to_owned(),
            )
            .await?;
        }
        index(m, "api_tokens", &["token_digest"], true).await?;
        index(m, "api_tokens", &["parent_token_id"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for ix in [
            "ix_api_tokens_token_digest",
            "ix_api_tokens_parent_token_id",
        ] {
            m.drop_index(Index::drop().name(ix).table("api_tokens").to_owned())
                .await?;
        }
        for c in COLUMNS {
            m.alter_table(Table::alter().table("api_tokens").drop_column(c).to_owned())
                .await?;
        }
        Ok(())
    }
}
