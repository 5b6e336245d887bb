//! Enforcement beyond the pipeline file (issue 13): observed content and its sources, the
//! content already reported as unapproved (one incident per content), and the GitHub deployment
//! protection rule's delivery ids (replay protection) and pending callbacks.

use super::m20261124_000001_core::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("observations")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("environment", 64))
                .col(string_len("source", 200))
                // JSON list of the observed subjects with the gate's verdict on each.
                .col(text("subjects"))
                .col(boolean("unapproved"))
                .col(big_integer_null("incident_id"))
                .col(timestamp_with_time_zone("observed_at"))
                .col(big_integer("recorded_by"))
                .col(timestamp_with_time_zone("recorded_at"))
                .foreign_key(&mut fk("observations", "system_id", "systems"))
                .foreign_key(&mut fk("observations", "recorded_by", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "observations", &["system_id", "observed_at"], false).await?;
        m.create_table(
            Table::create()
                .table("observation_sources")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("environment", 64))
                .col(string_len("source", 200))
                .col(timestamp_with_time_zone("last_observed_at"))
                .col(big_integer("last_recorded_by"))
                // Set when the source's silence was signalled; cleared when it reports again.
                .col(timestamp_with_time_zone_null("silent_since"))
                .foreign_key(&mut fk("observation_sources", "system_id", "systems"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "observation_sources",
            &["system_id", "environment", "source"],
            true,
        )
        .await?;
        index(m, "observation_sources", &["last_observed_at"], false).await?;
        m.create_table(
            Table::create()
                .table("unapproved_contents")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("environment", 64))
                // `git:<commit>:<tree>` or `sha256:<hex>`.
                .col(string_len("subject", 200))
                .col(big_integer("incident_id"))
                .col(timestamp_with_time_zone("first_observed_at"))
                .foreign_key(&mut fk("unapproved_contents", "system_id", "systems"))
                .foreign_key(&mut fk("unapproved_contents", "incident_id", "incidents"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "unapproved_contents",
            &["system_id", "environment", "subject"],
            true,
        )
        .await?;
        m.create_table(
            Table::create()
                .table("github_deliveries")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("delivery_id", 100))
                .col(string_len("event", 64))
                .col(timestamp_with_time_zone("received_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("github_pending")
                .col(big_pk_auto("id"))
                .col(string_len("delivery_id", 100))
                .col(big_integer("installation_id"))
                .col(string_len("repository", 200))
                .col(string_len("environment_name", 255))
                // None when the repository and environment map to no registered system.
                .col(big_integer_null("system_id"))
                .col(string_len("environment", 64))
                .col(string_len("sha", 40))
                .col(string_len_null("tree_id", 40))
                .col(text("callback_url"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("answered_at"))
                .col(string_len_null("state", 16))
                .col(text_null("comment"))
                .foreign_key(&mut fk("github_pending", "system_id", "systems"))
                .to_owned(),
        )
        .await?;
        index(m, "github_pending", &["answered_at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "github_pending",
            "github_deliveries",
            "unapproved_contents",
            "observation_sources",
            "observations",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
