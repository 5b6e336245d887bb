//! Findings and conditions tracked to closure (issue 10): one row per item, from the sign-off or
//! the request for changes that raised it to PA05's verification. Its history is the audit log
//! (entity `remediation`).

use super::m20261124_000001_core::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("remediations")
                .col(big_pk_auto("id"))
                // `finding` or `condition`.
                .col(string_len("kind", 16))
                .col(big_integer("system_id"))
                .col(big_integer("owner_org_id"))
                .col(big_integer("change_request_id"))
                .col(integer("round"))
                .col(string_len("severity", 16))
                .col(text("text"))
                // The checklist item a finding concerns.
                .col(string_len_null("item", 64))
                .col(date("due"))
                // `open`, `fulfilled`, `verified` or `reopened`.
                .col(string_len("state", 16))
                .col(big_integer("raised_by"))
                .col(timestamp_with_time_zone("raised_at"))
                .col(text_null("evidence"))
                .col(big_integer_null("fulfilled_by"))
                .col(timestamp_with_time_zone_null("fulfilled_at"))
                .col(big_integer_null("verified_by"))
                .col(timestamp_with_time_zone_null("verified_at"))
                // The reviewer's note of the last verification (why it was reopened).
                .col(text_null("verify_note"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(&mut fk("remediations", "system_id", "systems"))
                .foreign_key(&mut fk("remediations", "owner_org_id", "organisations"))
                .foreign_key(&mut fk(
                    "remediations",
                    "change_request_id",
                    "change_requests",
                ))
                .foreign_key(&mut fk("remediations", "raised_by", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "remediations", &["system_id", "state"], false).await?;
        index(m, "remediations", &["owner_org_id", "state"], false).await?;
        index(m, "remediations", &["change_request_id"], false).await?;
        index(m, "remediations", &["state", "due"], false).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("remediations").to_owned())
            .await
    }
}
