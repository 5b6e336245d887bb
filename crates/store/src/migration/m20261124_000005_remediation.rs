//! An emergency change may name the incident it remediates (it may then deploy while that
//! incident is open).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .add_column(big_integer_null("remediates_incident"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .drop_column("remediates_incident")
                .to_owned(),
        )
        .await
    }
}
