//! The public keys that verify signed gate decisions (`signing_keys`): published once per key by
//! the server that holds it, listed for `GET /api/v1/keys` on every replica. The keys themselves
//! and what they sign are the app's.

use crate::StoreError;
use crate::entity::signing_key;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

/// Whether the key `keyid` is published.
pub async fn is_published(db: &impl ConnectionTrait, keyid: &str) -> Result<bool, StoreError> {
    Ok(signing_key::Entity::find()
        .filter(signing_key::Column::Keyid.eq(keyid))
        .one(db)
        .await?
        .is_some())
}

/// A public key to publish.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub keyid: String,
    pub alg: String,
    /// Base64 of the raw public key.
    pub public_key: String,
    pub created_at: DateTime<Utc>,
}

/// Publishes a key.
pub async fn publish(
    db: &impl ConnectionTrait,
    k: NewKey,
) -> Result<signing_key::Model, StoreError> {
    Ok(signing_key::ActiveModel {
        keyid: Set(k.keyid),
        alg: Set(k.alg),
        public_key: Set(k.public_key),
        created_at: Set(k.created_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Every published key, oldest first.
pub async fn keys(db: &impl ConnectionTrait) -> Result<Vec<signing_key::Model>, StoreError> {
    Ok(signing_key::Entity::find()
        .order_by_asc(signing_key::Column::Id)
        .all(db)
        .await?)
}
