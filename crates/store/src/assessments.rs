//! The external assessment of a major change (Decree 331/2026 Art. 31.2.c), one per change
//! request, and the numbering of evaluation records per year. Whether an assessment may be
//! recorded, and when a record is numbered, are the app's and the domain's questions.

use crate::StoreError;
use crate::entity::{change_request as cr, external_assessment as ea, record_counter, sign_off};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

/// The external assessment recorded for change request `cr_id`, if any.
pub async fn assessment_of(
    db: &impl ConnectionTrait,
    cr_id: i64,
) -> Result<Option<ea::Model>, StoreError> {
    Ok(ea::Entity::find()
        .filter(ea::Column::ChangeRequestId.eq(cr_id))
        .one(db)
        .await?)
}

/// When the latest sign-off of change request `cr_id` was made, if it has one.
pub async fn last_sign_off_at(
    db: &impl ConnectionTrait,
    cr_id: i64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(cr_id))
        .order_by_desc(sign_off::Column::Id)
        .one(db)
        .await?
        .map(|s| s.created_at))
}

/// An external assessment to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssessment {
    /// The change request assessed.
    pub change_request_id: i64,
    /// The assessing organisation.
    pub organisation: String,
    /// Its licence or designation.
    pub licence: String,
    /// The report's reference.
    pub report_ref: String,
    /// The day of the assessment.
    pub assessed_on: NaiveDate,
    /// Who records it.
    pub recorded_by: i64,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

/// Inserts an external assessment.
pub async fn insert(db: &impl ConnectionTrait, n: NewAssessment) -> Result<ea::Model, StoreError> {
    Ok(ea::ActiveModel {
        change_request_id: Set(n.change_request_id),
        organisation: Set(n.organisation),
        licence: Set(n.licence),
        report_ref: Set(n.report_ref),
        assessed_on: Set(n.assessed_on),
        recorded_by: Set(n.recorded_by),
        recorded_at: Set(n.recorded_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Takes the next evaluation-record number of `year`: the year's counter is incremented in place
/// (created at 1 for the year's first record), so two replicas on one PostgreSQL database never
/// take the same number. `None` if the counter cannot be read back.
pub async fn next_record_number(
    db: &impl ConnectionTrait,
    year: i32,
) -> Result<Option<i32>, StoreError> {
    let bumped = record_counter::Entity::update_many()
        .col_expr(
            record_counter::Column::LastNumber,
            Expr::col(record_counter::Column::LastNumber).add(1),
        )
        .filter(record_counter::Column::Year.eq(year))
        .exec(db)
        .await?;
    if bumped.rows_affected == 0 {
        record_counter::ActiveModel {
            year: Set(year),
            last_number: Set(1),
        }
        .insert(db)
        .await?;
    }
    Ok(record_counter::Entity::find_by_id(year)
        .one(db)
        .await?
        .map(|c| c.last_number))
}

/// Gives change request `row` the record number `number` of `year`.
pub async fn set_record_number(
    db: &impl ConnectionTrait,
    row: cr::Model,
    year: i32,
    number: i32,
) -> Result<cr::Model, StoreError> {
    let mut am: cr::ActiveModel = row.into();
    am.record_year = Set(Some(year));
    am.record_number = Set(Some(number));
    Ok(am.update(db).await?)
}
