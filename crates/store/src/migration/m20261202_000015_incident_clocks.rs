//! Incident clocks (Decree 331/2026 Art. 31.2.d, Decree 356/2025): when an incident was detected,
//! whether it touches national security or public order, and every notice sent about it.

use super::m20261124_000001_core::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Null for incidents reported before: their clocks count from the report.
        m.alter_table(
            Table::alter()
                .table("incidents")
                .add_column(timestamp_with_time_zone_null("detected_at"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("incidents")
                .add_column(boolean("national_security").default(false))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("incident_notices")
                .col(big_pk_auto("id"))
                .col(big_integer("incident_id"))
                // `initial`, `report`, `interim`, `final` or `a05`.
                .col(string_len("kind", 16))
                .col(timestamp_with_time_zone("sent_at"))
                .col(string_len("recipient", 300))
                .col(string_len("channel", 100))
                .col(string_len_null("document_number", 100))
                .col(big_integer("recorded_by"))
                .col(timestamp_with_time_zone("recorded_at"))
                .foreign_key(&mut fk("incident_notices", "incident_id", "incidents"))
                .foreign_key(&mut fk("incident_notices", "recorded_by", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "incident_notices", &["incident_id", "kind"], false).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("incident_notices").to_owned())
            .await?;
        for c in ["national_security", "detected_at"] {
            m.alter_table(Table::alter().table("incidents").drop_column(c).to_owned())
                .await?;
        }
        Ok(())
    }
}
