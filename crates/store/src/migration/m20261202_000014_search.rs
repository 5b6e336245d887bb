//! Search of change requests (issue 11): `search_text`, the title and description in lower case
//! without Vietnamese diacritics, so that "nang cap" finds "Nâng cấp" on SQLite and PostgreSQL
//! alike (`LIKE` on a normalised column). Filled here for the rows that exist; the entity keeps it
//! on every save.
//!
//! No index on it: a substring search cannot use a b-tree, and a b-tree entry of a 20,000-
//! character description would exceed PostgreSQL's limit.

use sea_orm_migration::sea_orm::{ConnectionTrait, TryGetable};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("change_requests")
                .add_column(text("search_text").default(""))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        let backend = m.get_database_backend();
        let select = Query::select()
            .columns(["id", "title", "description"])
            .from("change_requests")
            .to_owned();
        for row in db.query_all_raw(backend.build(&select)).await? {
            let id = i64::try_get(&row, "", "id").map_err(DbErr::from)?;
            let title = String::try_get(&row, "", "title").map_err(DbErr::from)?;
            let description = String::try_get(&row, "", "description").map_err(DbErr::from)?;
            let text = changegate_domain::change::search_text(&title, &description);
            m.exec_stmt(
                Query::update()
                    .table("change_requests")
                    .value("search_text", text)
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
                .table("change_requests")
                .drop_column("search_text")
                .to_owned(),
        )
        .await
    }
}
