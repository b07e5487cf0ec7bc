//! The server's own X25519 key for the device protocol: made once per deployment, its private
//! half stored encrypted under the deployment data key.

use crate::keyring::DEPLOYMENT;
use crate::{Store, StoreError};
use printfleet_protocol::{KeyPair, PrivateKey};
use sqlx::Row;

const DEVICE_KEM: &str = "device-kem";

fn place() -> String {
    format!("server_keys.private_key:{DEVICE_KEM}")
}

impl Store {
    /// The server's device-protocol key pair, created on first use.
    pub async fn server_device_keypair(&self) -> Result<KeyPair, StoreError> {
        if let Some(k) = self.load_server_keypair().await? {
            return Ok(k);
        }
        let pair = KeyPair::generate(&mut printfleet_protocol::system_rng());
        let private_hex = hex::encode(pair.private.to_bytes().as_slice());
        let (sealed, _) = self.seal_json(DEPLOYMENT, &place(), &private_hex).await?;
        let mut w = self.begin_write().await?;
        // Two servers starting at once: the first insert wins, the other reads it back.
        let _ = sqlx::query(
            "INSERT INTO server_keys (id, private_key, public_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(DEVICE_KEM)
        .bind(sealed)
        .bind(pair.public.to_bytes().to_vec())
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await?;
        self.commit(w).await?;
        self.load_server_keypair()
            .await?
            .ok_or_else(|| StoreError::Corrupt("server key missing after insert".into()))
    }

    async fn load_server_keypair(&self) -> Result<Option<KeyPair>, StoreError> {
        let row = sqlx::query("SELECT private_key FROM server_keys WHERE id = $1")
            .bind(DEVICE_KEM)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let private_hex: String = self
            .open_json(DEPLOYMENT, &place(), &r.try_get::<Vec<u8>, _>(0)?)
            .await?;
        let bytes =
            hex::decode(private_hex).map_err(|_| StoreError::Corrupt("server key".into()))?;
        let private = PrivateKey::from_bytes(&bytes)
            .ok_or_else(|| StoreError::Corrupt("server key".into()))?;
        Ok(Some(KeyPair::from_private(private)))
    }
}
