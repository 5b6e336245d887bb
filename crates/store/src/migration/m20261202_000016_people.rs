//! People and incident lists (issue 11): who deactivated an account, when and why (the account
//! stays, so its history stays attributable; no foreign key on `deactivated_by`, as SQLite cannot
//! add one to an existing table); and `search_text` of incidents, their summary in
//! lower case without Vietnamese diacritics (as `change_requests.search_text`, migration 000014),
//! filled here for the rows that exist; the entity keeps it on every save.

use super::m20261124_000001_core::index;
use sea_orm_migration::sea_orm::{ConnectionTrait, TryGetable};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            timestamp_with_time_zone_null("deactivated_at"),
            big_integer_null("deactivated_by"),
            string_len_null("deactivation_reason", 1000),
        ] {
            m.alter_table(
                Table::alter()
                    .table("users")
                    .add_column(col.to_owned())
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table("incidents")
                .add_column(text("search_text").default(""))
                .to_owned(),
        )
        .await?;
        index(m, "incidents", &["reported_at"], false).await?;
        let db = m.get_connection();
        let backend = m.get_database_backend();
        let select = Query::select()
            .columns(["id", "summary"])
            .from("incidents")
            .to_owned();
        for row in db.query_all_raw(backend.build(&select)).await? {
            let id = i64::try_get(&row, "", "id").map_err(DbErr::from)?;
            let summary = String::try_get(&row, "", "summary").map_err(DbErr::from)?;
            m.exec_stmt(
                Query::update()
                    .table("incidents")
                    .value(
                        "search_text",
                        changegate_domain::incident::search_text(&summary),
                    )
                    .and_where(Expr::col("id").eq(id))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("incidents")
                .drop_column("search_text")
                .to_owned(),
        )
        .await?;
        for c in ["deactivation_reason", "deactivated_by", "deactivated_at"] {
            m.alter_table(Table::alter().table("users").drop_column(c).to_owned())
                .await?;
        }
        Ok(())
    }
}
