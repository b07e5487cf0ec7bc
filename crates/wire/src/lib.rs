//! The JSON shapes of Printfleet's REST API (`/api/v1`), shared by the server, the command line,
//! and later the printer agent and the proxy. Plain data: validation happens when the server turns
//! these into domain values.

/// `Debug` that names the type but prints none of its content: these types carry personal data
/// or secrets.
#[macro_export]
macro_rules! redacted_debug {
    ($t:ty) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "([redacted])"))
            }
        }
    };
}

pub mod auth;
pub mod break_glass;
pub mod device;
pub mod dry_run;
pub mod policy;
pub mod rollout;
pub mod tenant;

pub use auth::*;
pub use break_glass::*;
pub use device::*;
pub use dry_run::*;
pub use policy::*;
pub use rollout::*;
pub use tenant::*;

#[cfg(test)]
mod tests {
    #[test]
    fn personal_data_is_not_in_debug() {
        let c = crate::ContactView {
            name: Some("Ann Secret".into()),
            ..Default::default()
        };
        assert_eq!(format!("{c:?}"), "ContactView([redacted])");
    }
}
