//! The Printfleet domain: identifiers, tenants, people, memberships, roles, permissions,
//! the caller's context and the authorization decisions made on it.
//!
//! Nothing here performs I/O; clocks and randomness are passed in by the caller, so every rule is
//! tested fast and without sleeping.

pub mod audit;
pub mod catalogue;
pub mod clock;
pub mod context;
pub mod device;
pub mod email;
pub mod ids;
pub mod permission;
pub mod policy;
pub mod redact;
pub mod role;
pub mod scope;
pub mod telemetry;
pub mod tenant;
pub mod user;
pub mod validation;

pub use context::{Actor, Ctx};
pub use email::Email;
pub use ids::*;
pub use permission::Permission;
pub use redact::Redacted;
pub use role::{BuiltInRole, Role, RoleRef};
pub use scope::Scope;
pub use validation::ValidationError;
