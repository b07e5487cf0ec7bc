//! Policies: what an admin states the fleet must look like, and the pure rules that turn a
//! printer's reported state into an item-by-item assessment against it.
//!
//! - [`code`]: a policy as a TOML file (secrets and certificates only referenced) and how
//!   applying such a file plans the next version.
//! - [`document`]: a policy version's items (values, secrets as "set on … by …", certificates by
//!   fingerprint) and how admin input becomes them, checked against the catalogue.
//! - [`diff`]: what changed between two versions (secrets only as "changed").
//! - [`rule`]: dynamic device groups (conditions on model, site, tag, firmware).
//! - [`effective`]: which value applies to a printer when several policies reach it.
//! - [`generate`]: unique per-printer secrets: which settings may be generated, generating a
//!   value, when it is due for rotation.
//! - [`assess`]: compliant / non-compliant / unsupported / unknown, per item.

pub mod assess;
pub mod code;
pub mod diff;
pub mod document;
pub mod effective;
pub mod generate;
pub mod rollout;
pub mod rule;

pub use assess::{assess, model_family, AssessInput, ItemAssessment, ItemStatus, StatusTally};
pub use diff::{diff, ItemChange};
pub use document::{
    build_version, parse_item, CertificateMeta, CertificateUpload, ItemInput, PolicyItem,
    PolicyItems, PolicyMode, PolicySecrets, ResolvedItem,
};
pub use effective::{effective, Assignment, EffectiveItem, EffectivePolicy, Origin};
pub use generate::GenerateRule;
pub use rule::{DeviceAttributes, GroupRule};

/// A certificate expiring within this many milliseconds is flagged by the assessment.
pub const EXPIRY_WARNING_MS: i64 = 30 * 24 * 3_600_000;
