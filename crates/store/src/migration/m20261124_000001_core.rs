//! The core schema: registry, change requests, sign-offs, incidents, the audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A foreign key `fk_<from>_<col>` from `from.col` to `to.id` (also used by later migrations).
pub(super) fn fk(from: &str, col: &str, to: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{col}"))
        .from(from.to_owned(), col.to_owned())
        .to(to.to_owned(), "id")
        .to_owned()
}

fn ts(col: &str) -> ColumnDef {
    timestamp_with_time_zone(col.to_owned())
}

fn ts_null(col: &str) -> ColumnDef {
    timestamp_with_time_zone_null(col.to_owned())
}

/// An index `ix_<table>_<cols>` (also used by later migrations).
pub(super) async fn index(
    m: &SchemaManager<'_>,
    table: &str,
    cols: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create();
    i.name(format!("ix_{table}_{}", cols.join("_")))
        .table(table.to_owned());
    for c in cols {
        i.col(String::from(*c));
    }
    if unique {
        i.unique();
    }
    m.create_index(i.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("organisations")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("code", 64))
                .col(text("name"))
                .col(string_len("kind", 16))
                .col(text_null("allowed_ips"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("users")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("username", 64))
                .col(text("display_name"))
                .col(big_integer("org_id"))
                .col(string_len("role", 16))
                .col(text("password_hash"))
                .col(boolean("must_change_password"))
                .col(boolean("active"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("users", "org_id", "organisations"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("api_tokens")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("public_id", 32))
                .col(big_integer("user_id"))
                .col(text("name"))
                .col(text("secret_hash"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("revoked_at"))
                .foreign_key(&mut fk("api_tokens", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("systems")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("code", 64))
                .col(text("name"))
                .col(big_integer("owner_org_id"))
                .col(text("operating_unit"))
                .col(small_integer("level"))
                .col(boolean("population_db"))
                .col(text("environments"))
                .col(text("components"))
                .col(string_len("status", 16))
                .col(date_null("last_evaluated_on"))
                .col(ts_null("next_review_due"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("systems", "owner_org_id", "organisations"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("change_requests")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("kind", 16))
                .col(text("title"))
                .col(text("description"))
                .col(string_len("state", 16))
                .col(text("environments"))
                .col(text("components"))
                .col(big_integer("filed_by"))
                .col(text("editors"))
                .col(integer("round"))
                .col(ts_null("approved_at"))
                .col(ts_null("valid_until"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("change_requests", "system_id", "systems"))
                .foreign_key(&mut fk("change_requests", "filed_by", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "change_requests", &["system_id", "state"], false).await?;
        index(m, "change_requests", &["state", "created_at"], false).await?;
        m.create_table(
            Table::create()
                .table("cr_subjects")
                .col(big_pk_auto("id"))
                .col(big_integer("change_request_id"))
                .col(big_integer("system_id"))
                .col(string_len("kind", 16))
                .col(string_len_null("commit_id", 40))
                .col(string_len_null("tree_id", 40))
                .col(string_len_null("digest", 71))
                .foreign_key(&mut fk(
                    "cr_subjects",
                    "change_request_id",
                    "change_requests",
                ))
                .to_owned(),
        )
        .await?;
        index(m, "cr_subjects", &["change_request_id"], false).await?;
        index(m, "cr_subjects", &["system_id", "commit_id"], false).await?;
        index(m, "cr_subjects", &["system_id", "tree_id"], false).await?;
        index(m, "cr_subjects", &["system_id", "digest"], false).await?;
        m.create_table(
            Table::create()
                .table("sign_offs")
                .col(big_pk_auto("id"))
                .col(big_integer("change_request_id"))
                .col(integer("round"))
                .col(big_integer("reviewer_id"))
                .col(string_len("conclusion", 8))
                .col(text("checklist"))
                .col(text("findings"))
                .col(text("conditions"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("sign_offs", "change_request_id", "change_requests"))
                .foreign_key(&mut fk("sign_offs", "reviewer_id", "users"))
                .to_owned(),
        )
        .await?;
        // One person counts once per round, whatever races above this line.
        index(
            m,
            "sign_offs",
            &["change_request_id", "round", "reviewer_id"],
            true,
        )
        .await?;
        m.create_table(
            Table::create()
                .table("incidents")
                .col(big_pk_auto("id"))
                .col(big_integer("system_id"))
                .col(string_len("kind", 24))
                .col(string_len("severity", 16))
                .col(text("summary"))
                .col(string_len("status", 16))
                .col(big_integer("reported_by"))
                .col(ts("reported_at"))
                .col(big_integer_null("resolved_by"))
                .col(ts_null("resolved_at"))
                .foreign_key(&mut fk("incidents", "system_id", "systems"))
                .to_owned(),
        )
        .await?;
        index(m, "incidents", &["system_id", "status"], false).await?;
        m.create_table(
            Table::create()
                .table("audit_events")
                .col(big_integer("seq").primary_key())
                .col(string_len("at", 40))
                .col(text("actor"))
                .col(big_integer_null("actor_id"))
                .col(text("action"))
                .col(text("entity"))
                .col(text("entity_id"))
                .col(big_integer_null("system_id"))
                .col(text_null("before"))
                .col(text_null("after"))
                .col(string_len("hash", 64))
                .to_owned(),
        )
        .await?;
        index(m, "audit_events", &["entity", "entity_id"], false).await?;
        m.create_table(
            Table::create()
                .table("audit_head")
                .col(integer("id").primary_key())
                .col(big_integer("seq"))
                .col(string_len("hash", 64))
                .col(big_integer("touched"))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table("audit_head")
                .columns(["id", "seq", "hash", "touched"])
                .values_panic([
                    1.into(),
                    0i64.into(),
                    changegate_domain::audit::GENESIS.into(),
                    0i64.into(),
                ])
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "audit_head",
            "audit_events",
            "incidents",
            "sign_offs",
            "cr_subjects",
            "change_requests",
            "systems",
            "api_tokens",
            "users",
            "organisations",
        ] {
            m.drop_table(Table::drop().table(t.to_owned()).to_owned())
                .await?;
        }
        Ok(())
    }
}
