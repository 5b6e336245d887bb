//! Signed audit checkpoints (issue 16): the server's ed25519 key, which lives outside the
//! database, signs the chain's head every N events and at every job slot, so that whoever can
//! write the database cannot rewrite or shorten the log unseen.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("audit_checkpoints")
                .col(big_pk_auto("id"))
                // The event signed for and its chain hash.
                .col(big_integer_uniq("seq"))
                .col(string_len("hash", 64))
                // When it was signed, RFC 3339 with microseconds, UTC (part of what is signed).
                .col(string_len("signed_at", 40))
                .col(string_len("keyid", 64))
                // Base64 of the ed25519 signature.
                .col(string_len("sig", 100))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("audit_checkpoints").to_owned())
            .await
    }
}
