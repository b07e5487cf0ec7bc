//! Printer policies on the printer side (docs/protocol.md §7.8): opening the secrets sealed in
//! an `apply_settings` work item, and reporting secrets with a verifier that proves which value
//! is in place without revealing it.

use printfleet_protocol::messages::{ApplySecrets, ApplySettings, ReportedValue, SETTINGS_PURPOSE};
use printfleet_protocol::verifier::secret_verifier_hex;
use printfleet_protocol::{MessageType, OpenLimits, ReplayCache, SealedToDevice};

use crate::client::DeviceClient;
use crate::enrol::{AgentError, Enrolment};

/// Opens the secrets of an `apply_settings` item (`None` when it carries none): a sealed body of
/// type `sealed_to_device` from the pinned server key to this printer's key, fresh at `now_ms`,
/// purpose `settings`. The item is de-duplicated by its id (§7.4), so a fresh replay guard per
/// item suffices. Errors carry only codes, never content.
pub fn open_apply_secrets(
    enrolment: &Enrolment,
    apply: &ApplySettings,
    now_ms: u64,
) -> Result<Option<ApplySecrets>, AgentError> {
    let Some(sealed) = &apply.sealed else {
        return Ok(None);
    };
    let bad = |what: &str| AgentError::BadAnswer(format!("sealed secrets: {what}"));
    let body = hex::decode(sealed).map_err(|_| bad("not hex"))?;
    let (header, plain) = printfleet_protocol::open(
        &enrolment.key.private,
        &enrolment.server_key,
        &body,
        &OpenLimits::new(now_ms),
        &mut ReplayCache::new(1),
    )
    .map_err(|e| bad(e.code()))?;
    if header.message_type != MessageType::SealedToDevice {
        return Err(bad("not a sealed_to_device body"));
    }
    let payload = SealedToDevice::decode(&plain).map_err(|e| bad(e.code()))?;
    if payload.purpose != SETTINGS_PURPOSE {
        return Err(bad("not a settings payload"));
    }
    ApplySecrets::decode(&payload.content)
        .map(Some)
        .map_err(|e| bad(&format!("{} at {}", e.code, e.field)))
}

impl Enrolment {
    /// How a secret the printer holds is reported: set, with the verifier of `value` under this
    /// enrolment's verifier key (§7.3).
    pub fn reported_secret(&self, setting_id: &str, value: &str) -> ReportedValue {
        ReportedValue::Secret {
            set: true,
            verifier: Some(secret_verifier_hex(&self.verifier_key, setting_id, value)),
        }
    }
}

impl DeviceClient {
    /// [`open_apply_secrets`] with this client's enrolment.
    pub fn open_apply_secrets(
        &self,
        apply: &ApplySettings,
        now_ms: u64,
    ) -> Result<Option<ApplySecrets>, AgentError> {
        open_apply_secrets(self.enrolment(), apply, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printfleet_protocol::verifier::secret_verifier;
    use printfleet_protocol::{Header, KeyPair, PublicKey};
    use std::collections::BTreeMap;

    const NOW: u64 = 1_767_225_600_000;

    fn enrolment(server: &PublicKey) -> Enrolment {
        let key = KeyPair::derive(&[0x20; 32]);
        Enrolment {
            printer_id: uuid::Uuid::nil(),
            heartbeat_keys: printfleet_protocol::heartbeat::derive_heartbeat_key(
                &[1; 32], &[2; 16],
            )
            .keys(),
            key,
            server_key: server.clone(),
            verifier_key: [9; 32],
            parameters: printfleet_wire::DeviceParameters {
                heartbeat_port: 9930,
                heartbeat_interval_s: 60,
                keepalive_interval_s: 25,
                https_ports: vec![443],
            },
        }
    }

    fn sealed(server: &KeyPair, to: &PublicKey, purpose: &str, content: &[u8]) -> String {
        let mut rng = printfleet_protocol::system_rng();
        let header = Header::new(
            MessageType::SealedToDevice,
            &server.public,
            to,
            NOW,
            &mut rng,
        );
        let payload = SealedToDevice {
            purpose: purpose.into(),
            content: content.to_vec(),
        };
        let body = printfleet_protocol::seal(
            to,
            &server.private,
            &server.public,
            &header,
            &payload.encode().unwrap(),
            &mut rng,
        )
        .unwrap();
        hex::encode(body.as_bytes())
    }

    fn apply(sealed: Option<String>) -> ApplySettings {
        ApplySettings {
            policy: "p".into(),
            version: 1,
            settings: BTreeMap::new(),
            sealed,
        }
    }

    #[test]
    fn opens_the_sealed_secrets_and_reports_verifiers() {
        let server = KeyPair::derive(&[0; 32]);
        let e = enrolment(&server.public);
        assert!(open_apply_secrets(&e, &apply(None), NOW).unwrap().is_none());
        let content = br#"{"security.ews.admin_password":"Hunter2!"}"#;
        let a = apply(Some(sealed(&server, &e.key.public, "settings", content)));
        let secrets = open_apply_secrets(&e, &a, NOW).unwrap().unwrap();
        let (id, value) = secrets.iter().next().unwrap();
        assert_eq!((id, value), ("security.ews.admin_password", "Hunter2!"));
        let want = hex::encode(secret_verifier(&[9; 32], id, value));
        assert_eq!(
            e.reported_secret(id, value),
            ReportedValue::Secret {
                set: true,
                verifier: Some(want)
            }
        );
    }

    #[test]
    fn refuses_what_is_not_this_printer_s_settings_payload() {
        let server = KeyPair::derive(&[0; 32]);
        let e = enrolment(&server.public);
        let content = br#"{"a":"Hunter2!"}"#;
        let other = KeyPair::derive(&[0x77; 32]);
        let cases = [
            sealed(&server, &e.key.public, "wifi.psk", content),
            sealed(&other, &e.key.public, "settings", content),
            sealed(&server, &e.key.public, "settings", b"[1]"),
            "zz".into(),
        ];
        for s in cases {
            let err = open_apply_secrets(&e, &apply(Some(s)), NOW).unwrap_err();
            assert!(!err.to_string().contains("Hunter2"), "{err}");
        }
        let stale = sealed(&server, &e.key.public, "settings", content);
        assert!(open_apply_secrets(&e, &apply(Some(stale)), NOW + 3_600_000).is_err());
    }
}
