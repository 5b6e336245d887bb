//! Migrations, portable helpers only (same files for SQLite and PostgreSQL).

use sea_orm_migration::prelude::*;

mod m20261124_000001_core;
mod m20261124_000002_ci_gate;
mod m20261124_000003_notifications;
mod m20261124_000004_breach_clock;
mod m20261124_000005_remediation;
mod m20261124_000006_web;
mod m20261202_000010_enforcement;
mod m20261202_000011_token_digest;
mod m20261202_000012_audit_checkpoints;
mod m20261202_000013_remediations;
mod m20261202_000014_search;
mod m20261202_000015_incident_clocks;
mod m20261202_000016_people;
mod m20261202_000017_annual_report;
mod m20261202_000018_rules_2026;
mod m20261202_000019_web_forms;
mod m20261202_000020_live_gate;

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
            Box::new(m20261202_000010_enforcement::Migration),
            Box::new(m20261202_000011_token_digest::Migration),
            Box::new(m20261202_000012_audit_checkpoints::Migration),
            Box::new(m20261202_000013_remediations::Migration),
            Box::new(m20261202_000014_search::Migration),
            Box::new(m20261202_000015_incident_clocks::Migration),
            Box::new(m20261202_000016_people::Migration),
            Box::new(m20261202_000017_annual_report::Migration),
            Box::new(m20261202_000018_rules_2026::Migration),
            Box::new(m20261202_000019_web_forms::Migration),
            Box::new(m20261202_000020_live_gate::Migration),
        ]
    }
}
