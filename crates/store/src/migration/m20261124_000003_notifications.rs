//! Notifications and scheduled jobs: webhooks, the delivery outbox, job slots claimed once
//! across replicas, reminders sent once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("webhooks")
                .col(big_pk_auto("id"))
                .col(text("url"))
                .col(text("secret"))
                .col(text("events"))
                .col(boolean("active"))
                .col(big_integer("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("deliveries")
                .col(big_pk_auto("id"))
                .col(big_integer("webhook_id"))
                .col(string_len_uniq("msg_id", 64))
                .col(string_len("event", 64))
                .col(text("payload"))
                .col(string_len("status", 16))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone("next_attempt_at"))
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("delivered_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_deliveries_webhook_id")
                        .from("deliveries", "webhook_id")
                        .to("webhooks", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_deliveries_status_next")
                .table("deliveries")
                .col("status")
                .col("next_attempt_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("job_runs")
                .col(big_pk_auto("id"))
                .col(string_len("job", 64))
                .col(string_len("slot", 40))
                .col(text("runner"))
                .col(timestamp_with_time_zone("started_at"))
                .col(timestamp_with_time_zone_null("finished_at"))
                .col(text_null("outcome"))
                .to_owned(),
        )
        .await?;
        // One run per job slot, whatever the number of replicas.
        m.create_index(
            Index::create()
                .name("ix_job_runs_job_slot")
                .table("job_runs")
                .col("job")
                .col("slot")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("reminders")
                .col(big_pk_auto("id"))
                .col(string_len("kind", 32))
                .col(string_len("subject", 64))
                .col(string_len("due", 40))
                .col(integer("offset_days"))
                .col(timestamp_with_time_zone("sent_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_reminders_once")
                .table("reminders")
                .col("kind")
                .col("subject")
                .col("due")
                .col("offset_days")
                .unique()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["reminders", "job_runs", "deliveries", "webhooks"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
