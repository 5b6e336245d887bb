//! The annual report (Decree 331/2026, Form 08): a system's level record (columns 5–11) and an
//! organisation's details for section 2, each kept as JSON text.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("systems")
                .add_column(text_null("level_record"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("organisations")
                .add_column(text_null("details"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("organisations")
                .drop_column("details")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("systems")
                .drop_column("level_record")
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
