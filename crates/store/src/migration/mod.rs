//! Migrations, portable helpers only (same files for SQLite and PostgreSQL).

use sea_orm_migration::prelude::*;

mod m20261124_000001_core;
mod m20261124_000002_ci_gate;
mod m20261124_000003_notifications;
mod m20261124_000004_breach_clock;
mod m20261124_000005_remediation;
mod m20261124_000006_web;

/// The project's migrator.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_core::Migration),
            Box::new(m20261124_000002_ci_gate::Migration),
            Box::new(m20261124_000003_notifications::Migration),
            Box::new(m20261124_000004_breach_clock::Migration),
            Box::new(m20261124_000005_remediation::Migration),
            Box::new(m20261124_000006_web::Migration),
        ]
    }
}
