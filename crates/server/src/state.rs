//! What every handler shares.

use crate::metrics::Metrics;
use crate::throttle::{Throttle, ThrottlePolicy};
use printfleet_crypto::PasswordHasher;
use printfleet_domain::clock::Clock;
use printfleet_storage::sessions::SessionPolicy;
use printfleet_storage::Store;
use std::sync::Arc;

/// Settings the handlers need, taken from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub session: SessionPolicy,
    pub invitation_ttl_ms: i64,
    pub throttle_account: ThrottlePolicy,
    pub throttle_address: ThrottlePolicy,
    /// Cookies get `Secure` and the `__Host-` prefix under TLS.
    pub secure_cookies: bool,
    pub public_url: String,
    pub max_body_bytes: usize,
}

pub struct Inner {
    pub store: Store,
    pub hasher: PasswordHasher,
    pub throttle: Throttle,
    pub metrics: Metrics,
    pub settings: Settings,
    /// Derives each session's CSRF token from its secret (HMAC), so nothing extra is stored.
    pub csrf_key: printfleet_crypto::BlindIndexKey,
    pub clock: Arc<dyn Clock>,
    /// The sealed device channel (`/device/v1`): server key, replay guard, long-poll waiters.
    pub channel: crate::device_channel::DeviceChannel,
    /// The heartbeat service, once started (for printers' online status).
    pub doorbell: std::sync::OnceLock<printfleet_doorbell::Doorbell>,
    /// Keeps assessments current (hinted by check-ins, poked by policy changes).
    pub assessor: crate::assessor::Assessor,
}

pub type AppState = Arc<Inner>;

impl Inner {
    pub fn cookie_name(&self) -> &'static str {
        if self.settings.secure_cookies {
            "__Host-pf_session"
        } else {
            "pf_session"
        }
    }

    pub fn csrf_token(&self, session_secret: &str) -> String {
        format!(
            "{}{}",
            printfleet_crypto::token::CSRF_PREFIX,
            self.csrf_key.index("csrf", session_secret)
        )
    }
}
