//! The web UI's sign-in (issue 5): the second factor and lockout state of users, browser
//! sessions (only the SHA-256 of a session token is stored, never the token), and the security
//! signals shown to admins (an account used from two addresses at once).

use super::m20261124_000001_core::{fk, index};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns added to `users`, one statement each (SQLite adds one column per ALTER TABLE).
fn user_columns() -> Vec<ColumnDef> {
    vec![
        // The confirmed TOTP secret (base32), and one shown but not yet confirmed.
        text_null("totp_secret"),
        text_null("totp_pending"),
        timestamp_with_time_zone_null("totp_enrolled_at"),
        // The last 30-second step whose code was accepted: a code is accepted once.
        big_integer_null("totp_last_step"),
        integer("failed_logins").default(0).to_owned(),
        timestamp_with_time_zone_null("locked_until"),
    ]
}

const USER_COLUMNS: [&str; 6] = [
    "totp_secret",
    "totp_pending",
    "totp_enrolled_at",
    "totp_last_step",
    "failed_logins",
    "locked_until",
];

/// Until then, API sign-offs with this token need no fresh second-factor code: a code given
/// with the token opens this short step-up window.
const TOKEN_STEP_UP: &str = "step_up_until";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for mut c in user_columns() {
            m.alter_table(Table::alter().table("users").add_column(&mut c).to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("api_tokens")
                .add_column(timestamp_with_time_zone_null(TOKEN_STEP_UP))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("sessions")
                .col(big_pk_auto("id"))
                .col(string_len_uniq("token_hash", 64))
                .col(big_integer("user_id"))
                .col(string_len("stage", 24))
                .col(string_len("csrf", 64))
                .col(string_len("ip", 64))
                .col(text("user_agent"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("last_seen_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .foreign_key(&mut fk("sessions", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        index(m, "sessions", &["user_id", "expires_at"], false).await?;
        m.create_table(
            Table::create()
                .table("security_signals")
                .col(big_pk_auto("id"))
                .col(big_integer("user_id"))
                .col(string_len("kind", 32))
                .col(string_len("detail", 200))
                .col(string_len("day", 10))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(&mut fk("security_signals", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "security_signals",
            &["user_id", "kind", "detail", "day"],
            true,
        )
        .await?;
        index(m, "security_signals", &["created_at"], false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("security_signals").to_owned())
            .await?;
        m.drop_table(Table::drop().table("sessions").to_owned())
            .await?;
        for c in USER_COLUMNS {
            m.alter_table(Table::alter().table("users").drop_column(c).to_owned())
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table("api_tokens")
                .drop_column(TOKEN_STEP_UP)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
