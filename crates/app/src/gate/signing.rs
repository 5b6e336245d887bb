//! Publishing the server's signing key and listing the keys that verify signed decisions; the
//! key itself is [`signer::Signer`].

use crate::{App, AppResult, event};
use changegate_api::attestation::{Keys, PublicKey};
use changegate_store::entity::signing_key;
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

impl App {
    /// Publishes this server's public key in the database (once).
    pub async fn publish_signing_key(&self) -> AppResult<()> {
        let pk = self.signer.public();
        if signing_key::Entity::find()
            .filter(signing_key::Column::Keyid.eq(&pk.keyid))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let tx = self.begin().await?;
        signing_key::ActiveModel {
            keyid: Set(pk.keyid.clone()),
            alg: Set(pk.alg.clone()),
            public_key: Set(pk.public_key.clone()),
            created_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        tx.audit(event(
            None,
            "signing_key.publish",
            "signing_key",
            &pk.keyid,
            None,
            None,
            Some(serde_json::json!(pk)),
        ))
        .await?;
        tx.commit().await
    }

    /// The keys that verify gate decisions.
    pub async fn keys(&self) -> AppResult<Keys> {
        let rows = signing_key::Entity::find()
            .order_by_asc(signing_key::Column::Id)
            .all(&self.db)
            .await?;
        Ok(Keys {
            keys: rows
                .into_iter()
                .map(|k| PublicKey {
                    keyid: k.keyid,
                    alg: k.alg,
                    public_key: k.public_key,
                })
                .collect(),
        })
    }
}
