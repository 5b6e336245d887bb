//! Decree 331/2026 on changes: whether a change is a major change of function, scope,
//! architecture or technology, the record of its external assessment (Art. 31.2.c), the pack a
//! decision was made under, and the numbering of evaluation records (biên bản), per year.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult, WriteTx, event};
use changegate_api as wire;
use changegate_domain::change::{check_external_assessment, check_text};
use changegate_domain::{MajorAspect, Role};
use changegate_store::assessments::{self as store, NewAssessment};
use changegate_store::entity::change_request as cr;
use changegate_store::sea_orm::ConnectionTrait;
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
        let Some(a) = store::assessment_of(db, cr_id).await? else {
            return Ok(None);
        };
        let by = changegate_store::identity::user_by_id(db, a.recorded_by)
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
        let number = store::next_record_number(&tx.txn, year)
            .await?
            .ok_or_else(|| AppError::Internal("record counter lost".into()))?;
        Ok(store::set_record_number(&tx.txn, row, year, number).await?)
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
        let row = changegate_store::changes::by_id(&tx.txn, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        let sys = changegate_store::gate::system_by_id(&tx.txn, row.system_id)
            .await?
            .filter(|s| crate::registry::may_see_org(who, s.owner_org_id))
            .ok_or_else(|| AppError::NotFound(format!("change request {id}")))?;
        let last_sign_off = store::last_sign_off_at(&tx.txn, id)
            .await?
            .map(|at| at.with_timezone(&self.tz).date_naive());
        let today = tx.at().with_timezone(&self.tz).date_naive();
        if let Err(changegate_domain::Refusal::Invalid { field, message }) =
            check_external_assessment(n.assessed_on, today, last_sign_off)
        {
            errors.push((field, message));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        if store::assessment_of(&tx.txn, id).await?.is_some() {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyExists,
                format!("the external assessment of change request {id} is already recorded"),
            ));
        }
        store::insert(
            &tx.txn,
            NewAssessment {
                change_request_id: id,
                organisation: n.organisation.clone(),
                licence: n.licence.clone(),
                report_ref: n.report_ref.clone(),
                assessed_on: n.assessed_on,
                recorded_by: who.user_id,
                recorded_at: tx.at(),
            },
        )
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
