//! The JSON shapes of Printfleet's REST API (`/api/v1`), shared by the server, the command line,
//! and later the printer agent and the proxy. Plain data: validation happens when the server turns
//! these into domain values.

pub mod auth;
pub mod tenant;

pub use auth::*;
pub use tenant::*;
