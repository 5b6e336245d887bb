//! The gate's index holds only live content (issue 15): what it still asks the database about a
//! system's change requests at load, the last approval and the emergency changes, answers from an
//! index rather than a scan of every change the system ever had.

use super::m20261124_000001_core::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        index(m, "change_requests", &["system_id", "approved_at"], false).await?;
        index(
            m,
            "change_requests",
            &["system_id", "emergency_until"],
            false,
        )
        .await?;
        Ok(())
    }
}
