//! The 72-hour breach clock: when A05 was notified of a personal-data breach.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("incidents")
                .add_column(timestamp_with_time_zone_null("a05_notified_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("incidents")
                .drop_column("a05_notified_at")
                .to_owned(),
        )
        .await
    }
}
