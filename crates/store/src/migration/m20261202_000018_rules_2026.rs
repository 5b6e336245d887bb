//! The 2026 rules (issue 12): the policy pack each sign-off was made under (rows written before
//! carry version 1 of `population-db`), whether a change is a major change (Decree 331/2026
//! Art. 31.2.c) and its external assessment, the fields of a personal-data breach notice
//! (Decree 356/2025), and the numbering of the evaluation records (biên bản), per year.

use super::m20261124_000001_core::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn add(m: &SchemaManager<'_>, table: &str, col: ColumnDef) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(table.to_owned())
            .add_column(col)
            .to_owned(),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Every sign-off before this release was made under version 1 of the default pack.
        add(
            m,
            "sign_offs",
            string_len("pack_id", 64)
                .default("population-db")
                .to_owned(),
        )
        .await?;
        add(
            m,
            "sign_offs",
            integer("pack_version").default(1).to_owned(),
        )
        .await?;
        // JSON array of the aspects of a major change (`function`, `scope`, `architecture`,
        // `technology`); empty: not a major change.
        add(
            m,
            "change_requests",
            string("major_change").default("[]").to_owned(),
        )
        .await?;
        // The evaluation record's number, assigned when the evaluation concludes.
        add(m, "change_requests", integer_null("record_year")).await?;
        add(m, "change_requests", integer_null("record_number")).await?;
        index(
            m,
            "change_requests",
            &["record_year", "record_number"],
            true,
        )
        .await?;
        m.create_table(
            Table::create()
                .table("record_counters")
                .col(integer("year").primary_key())
                .col(integer("last_number"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("external_assessments")
                .col(big_pk_auto("id"))
                .col(big_integer("change_request_id"))
                .col(string_len("organisation", 300))
                .col(string_len("licence", 300))
                .col(string_len("report_ref", 200))
                .col(date("assessed_on"))
                .col(big_integer("recorded_by"))
                .col(timestamp_with_time_zone("recorded_at"))
                .foreign_key(&mut fk(
                    "external_assessments",
                    "change_request_id",
                    "change_requests",
                ))
                .foreign_key(&mut fk("external_assessments", "recorded_by", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "external_assessments", &["change_request_id"], true).await?;
        for c in [
            "breach_description",
            "breach_data_categories",
            "breach_consequences",
            "breach_measures",
        ] {
            add(m, "incidents", text_null(c)).await?;
        }
        add(m, "incidents", big_integer_null("breach_subjects")).await?;
        add(
            m,
            "incidents",
            string_len_null("breach_confirmation_ref", 200),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("external_assessments").to_owned())
            .await?;
        m.drop_table(Table::drop().table("record_counters").to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("ix_change_requests_record_year_record_number")
                .table("change_requests")
                .to_owned(),
        )
        .await?;
        for (t, c) in [
            ("incidents", "breach_confirmation_ref"),
            ("incidents", "breach_subjects"),
            ("incidents", "breach_measures"),
            ("incidents", "breach_consequences"),
            ("incidents", "breach_data_categories"),
            ("incidents", "breach_description"),
            ("change_requests", "record_number"),
            ("change_requests", "record_year"),
            ("change_requests", "major_change"),
            ("sign_offs", "pack_version"),
            ("sign_offs", "pack_id"),
        ] {
            m.alter_table(
                Table::alter()
                    .table(t.to_owned())
                    .drop_column(c.to_owned())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
