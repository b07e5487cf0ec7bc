//! Opaque identifiers. Every id is a random UUID wrapped in its own type so that a tenant id can
//! never be passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id. Callers pass in randomness through `Uuid::from_bytes` in tests.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A customer account.
    TenantId
);
id_type!(
    /// One person, across all tenants they belong to. Also the pseudonym used in the audit log.
    UserId
);
id_type!(
    /// A person's membership in one tenant (role and scope).
    MembershipId
);
id_type!(
    /// A tenant's custom role.
    RoleId
);
id_type!(
    /// A group of devices; memberships may be scoped to groups.
    GroupId
);
id_type!(
    /// An API token (the id is public; the secret part is not).
    TokenId
);
id_type!(
    /// A pending invitation.
    InvitationId
);
id_type!(
    /// A server-side session (the public id; the cookie value is a separate secret).
    SessionId
);
id_type!(
    /// A printer: opaque, never derived from its serial number.
    DeviceId
);
id_type!(
    /// An enrolment token (the id is public; the secret part is not).
    EnrolmentTokenId
);
id_type!(
    /// A policy (all its versions share the id).
    PolicyId
);
