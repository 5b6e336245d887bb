//! Loading a change request aggregate: its row with its system, and the sign-offs of its current
//! round as the domain's rules see them. Who may see it is the app's question, not this module's.

use crate::StoreError;
use crate::entity::{change_request as cr, sign_off, system};
use crate::types::Text;
use changegate_domain::change::{CrState, SignOffRecord};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// The change request `id`, if it exists.
pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<cr::Model>, StoreError> {
    Ok(cr::Entity::find_by_id(id).one(db).await?)
}

/// The change request `id` with its system, if the change request exists. A change request
/// whose system is missing is corrupt.
pub async fn with_system(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(cr::Model, system::Model)>, StoreError> {
    let Some(row) = cr::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let sys = system::Entity::find_by_id(row.system_id)
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "change request",
            detail: format!("{id} has no system"),
        })?;
    Ok(Some((row, sys)))
}

/// The sign-offs of round `round` of change request `cr_id`, in the order they were made.
pub async fn round_sign_offs(
    db: &impl ConnectionTrait,
    cr_id: i64,
    round: i32,
) -> Result<Vec<SignOffRecord>, StoreError> {
    let rows = sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(cr_id))
        .filter(sign_off::Column::Round.eq(round))
        .order_by_asc(sign_off::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| SignOffRecord {
            reviewer: s.reviewer_id,
            conclusion: *s.conclusion,
            at: s.created_at,
        })
        .collect())
}

/// The change requests of system `system_id` in one of `states`, by id.
pub async fn of_system_in_states(
    db: &impl ConnectionTrait,
    system_id: i64,
    states: &[CrState],
) -> Result<Vec<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::State.is_in(states.iter().copied().map(Text)))
        .order_by_asc(cr::Column::Id)
        .all(db)
        .await?)
}
