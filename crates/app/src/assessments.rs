//! Decree 331/2026 on changes: whether a change is a major change of function, scope,
//! architecture or technology, the record of its external assessment (Art. 31.2.c), the pack a
//! decision was made under, and the numbering of evaluation records (biên bản), per year.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult, WriteTx, event};
use changegate_api as wire;
use changegate_domain::change::{check_external_assessment, check_text};
use changegate_domain::{MajorAspect, Role};
use changegate_store::entity::{
    change_request as cr, external_assessment as ea, record_counter, sign_off, user,
};
use changegate_store::sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait},
};
use chrono::Datelike;
use std::collections::BTreeSet;
use tracing::instrument;

/// Parses the aspects of a major change, naming a bad one; repeated aspects count once.
pub fn parse_major(v: &[String], errors: &mut Vec<(String, String)>) -> Vec<MajorAspect> {
    let mut out = BTreeSet::new();
    for (i, s) in v.iter().enumerate() {
        match MajorAspect::parse(s) {
            Ok(a) => {
                out.insert(a);
            }
            Err(e) => errors.push((format!("major_change[{i}]"), e.to_string())),
        }
    }
    out.into_iter().collect()
}

/// The external assessment recorded for a change request, if any.
pub async fn assessment_of(db: &impl ConnectionTrait, cr_id: i64) -> AppResult<Option<ea::Model>> {
    Ok(ea::Entity::find()
        .filter(ea::Column::ChangeRequestId.eq(cr_id))
        .one(db)
        .await?)
}

impl App {
    /// The pack every decision made now is made under.
    pub fn pack_ref(&self) -> wire::PackRef {
        wire::PackRef {
            id: self.pack.meta.id.clone(),
            version: self.pack.meta.version,
        }
    }

    /// The wire view of a change request's external assessment.
    pub(crate) async fn assessment_view(
        &self,
        db: &impl ConnectionTrait,
        cr_id: i64,
    ) -> AppResult<Option<wire::ExternalAssessment>> {
        let Some(a) = assessment_of(db, cr_id).await? else {
            return Ok(None);
        };
        let by = user::Entity::find_by_id(a.recorded_by)
            .one(db)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        Ok(Some(wire::ExternalAssessment {
            organisation: a.organisation,
            licence: a.licence,
            report_ref: a.report_ref,
            assessed_on: a.assessed_on,
            recorded_by: by,
            recorded_at: a.recorded_at,
        }))
    }

    /// Gives a concluded evaluation's record the next number of the year (in the configured
    /// time zone), in the sign-off's transaction. The counter is incremented in place, so two
    /// replicas on one PostgreSQL database never hand out the same number.
    pub(crate) async fn number_record(
        &self,
        tx: &WriteTx<'_>,
        row: cr::Model,
    ) -> AppResult<cr::Model> {
        if row.record_number.is_some() {
            return Ok(row);
        }
        let year = tx.at().with_timezone(&self.tz).year();
        let bumped = record_counter::Entity::update_many()
            .col_expr(
                record_counter::Column::LastNumber,
                Expr::col(record_counter::Column::LastNumber).add(1),
            )
            .filter(record_counter::Column::Year.eq(year))
            .exec(&tx.txn)
            .await?;
        if bumped.rows_affected == 0 {
            record_counter::ActiveModel {
                year: Set(year),
                last_number: Set(1),
            }
            .insert(&tx.txn)
            .await?;
        }
        let number = record_counter::Entity::find_by_id(year)
            .one(&tx.txn)
            .await?
            .map(|c| c.last_number)
            .ok_or_else(|| AppError::Internal("record counter lost".into()))?;
        let mut am: cr::ActiveModel = row.into();
        am.record_year = Set(Some(year));
        am.record_number = Set(Some(number));
        Ok(am.update(&tx.txn).await?)
    }

    /// Records the external assessment of a change (the owner of its system's organisation or a
    /// PA05 reviewer): organisation, licence or designation, report reference, day. Once per
    /// change; the day is not in the future and not after the change's latest sign-off.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn record_external_assessment(
        &self,
        who: &Principal,
        id: i64,
        n: wire::NewExternalAssessment,
    ) -> AppResult<wire::ChangeRequest> {
        who.require(
            &[Role::Owner, Role::Reviewer],
            "recording an external assessment",
        )?;
        let mut errors = vec![];
        for (f, v, max) in [
            ("organisation", &n.organisation, 300),
            ("licence", &n.licence, 300),
            ("report_ref", &n.report_ref, 200),
        ] {
            if let Err(e) = check_text(f, v, max, true) {
                errors.push((f.to_owned(), e.to_string()));
            }
        }
        let tx = self.begin().await?;
        let row = cr::Entity::find_by_id(id)
            .one(&tx.txn)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        let sys = changegate_store::entity::system::Entity::find_by_id(row.system_id)
            .one(&tx.txn)
            .await?
            .filter(|s| crate::registry::may_see_org(who, s.owner_org_id))
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        let last_sign_off = sign_off::Entity::find()
            .filter(sign_off::Column::ChangeRequestId.eq(id))
            .order_by_desc(sign_off::Column::Id)
            .one(&tx.txn)
            .await?
            .map(|s| s.created_at.with_timezone(&self.tz).date_naive());
        let today = tx.at().with_timezone(&self.tz).date_naive();
        if let Err(changegate_domain::Refusal::Invalid { field, message }) =
            check_external_assessment(n.assessed_on, today, last_sign_off)
        {
            errors.push((field, message));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        if assessment_of(&tx.txn, id).await?.is_some() {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyExists,
                format!("the external assessment of change request {id} is already recorded"),
            ));
        }
        ea::ActiveModel {
            change_request_id: Set(id),
            organisation: Set(n.organisation.clone()),
            licence: Set(n.licence.clone()),
            report_ref: Set(n.report_ref.clone()),
            assessed_on: Set(n.assessed_on),
            recorded_by: Set(who.user_id),
            recorded_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        tx.audit(event(
            Some(who),
            "change_request.external_assessment",
            "change_request",
            id,
            Some(sys.id),
            None,
            Some(serde_json::json!(n)),
        ))
        .await?;
        let view = self.change_view(&tx.txn, &row, &sys).await?;
        tx.commit().await?;
        Ok(view)
    }
}
