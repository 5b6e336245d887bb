//! The CI gate: published signing keys, freeze windows, deployment records; git facts and the
//! break-glass deadline of a change request.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("signing_keys")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("keyid", 64))
                .col(string_len("alg", 16))
                .col(text("public_key"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("freeze_windows")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len_null("environment", 32))
                .col(timestamp_with_time_zone_null("starts_at"))
                .col(timestamp_with_time_zone_null("ends_at"))
                .col(string_len_null("cron", 120))
                .col(integer_null("duration_minutes"))
                .col(text("reason"))
                .col(big_integer("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(boolean("active"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_freeze_windows_system_id")
                        .from("freeze_windows", "system_id")
                        .to("systems", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_freeze_windows_system_id")
                .table("freeze_windows")
                .col("system_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("deployments")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("environment", 32))
                .col(string_len_null("commit_id", 40))
                .col(string_len_null("tree_id", 40))
                .col(string_len_null("digest", 71))
                .col(string_len("decision", 8))
                .col(text("reasons"))
                .col(big_integer_null("change_request_id"))
                .col(boolean("flagged"))
                .col(big_integer("recorded_by"))
                .col(timestamp_with_time_zone("deployed_at"))
                .col(timestamp_with_time_zone("recorded_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_deployments_system_id")
                        .from("deployments", "system_id")
                        .to("systems", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_deployments_system_id")
                .table("deployments")
                .col("system_id")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_deployments_flagged")
                .table("deployments")
                .col("flagged")
                .to_owned(),
        )
        .await?;
        // One column per statement: SQLite alters a table one column at a time.
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .add_column(text_null("git_facts"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .add_column(timestamp_with_time_zone_null("emergency_until"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .drop_column("emergency_until")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .drop_column("git_facts")
                .to_owned(),
        )
        .await?;
        for t in ["deployments", "freeze_windows", "signing_keys"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
