//! Publishing the server's signing key and listing the keys that verify signed decisions; the
//! key itself is [`signer::Signer`].

use crate::{App, AppResult, event};
use changegate_api::attestation::{Keys, PublicKey};
use changegate_store::signing::{self as store, NewKey};

impl App {
    /// Publishes this server's public key in the database (once).
    pub async fn publish_signing_key(&self) -> AppResult<()> {
        let pk = self.signer.public();
        if store::is_published(&self.db, &pk.keyid).await? {
            return Ok(());
        }
        let tx = self.begin().await?;
        store::publish(
            &tx.txn,
            NewKey {
                keyid: pk.keyid.clone(),
                alg: pk.alg.clone(),
                public_key: pk.public_key.clone(),
                created_at: tx.at(),
            },
        )
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
        let rows = store::keys(&self.db).await?;
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
