//! The REST API under `/api/v1`, one module per resource. Handlers are thin: authentication is
//! an extractor, and tenant, scope and permission are enforced by the storage layer.

pub mod audit;
pub mod auth;
pub mod break_glass;
pub mod compliance;
pub mod device_api;
pub mod device_state;
pub mod device_work;
pub mod devices;
pub mod dry_run;
pub mod groups;
pub mod invitations;
pub mod me;
pub mod members;
pub mod ops;
pub mod policies;
pub mod roles;
pub mod rollouts;
pub mod tenant;
pub mod tokens;

use crate::state::AppState;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Printfleet API", description = "Printer fleet management: tenants, people, roles, audit."),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("__Host-pf_session"))),
        );
        c.add_security_scheme(
            "api_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every API route, with the OpenAPI document built from the same declarations.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::sign_in))
        .routes(routes!(auth::sign_out))
        .routes(routes!(auth::current_session))
        .routes(routes!(me::me))
        .routes(routes!(me::my_sessions))
        .routes(routes!(me::revoke_session))
        .routes(routes!(invitations::accept))
        .routes(routes!(tenant::get_tenant, tenant::patch_tenant))
        .routes(routes!(members::list_members))
        .routes(routes!(
            members::get_member,
            members::patch_member,
            members::delete_member
        ))
        .routes(routes!(invitations::list, invitations::create))
        .routes(routes!(invitations::revoke))
        .routes(routes!(roles::list, roles::create))
        .routes(routes!(roles::get, roles::patch, roles::delete))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::get, groups::delete))
        .routes(routes!(devices::list_tokens, devices::create_token))
        .routes(routes!(devices::revoke_token))
        .routes(routes!(devices::list))
        .routes(routes!(devices::get, devices::remove))
        .routes(routes!(devices::add_to_group))
        .routes(routes!(device_state::get))
        .routes(routes!(device_state::history))
        .routes(routes!(device_work::list, device_work::create))
        .routes(routes!(device_work::create_for_group))
        .routes(routes!(device_work::revoke_key))
        .routes(routes!(device_work::approve_reenrolment))
        .routes(routes!(device_api::enrol))
        .routes(routes!(device_api::check_in))
        .routes(routes!(device_api::fetch))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(policies::get, policies::update, policies::delete))
        .routes(routes!(policies::compare))
        .routes(routes!(policies::export))
        .routes(routes!(policies::assignments))
        .routes(routes!(policies::assign))
        .routes(routes!(policies::unassign))
        .routes(routes!(rollouts::list, rollouts::start))
        .routes(routes!(rollouts::get))
        .routes(routes!(rollouts::resume))
        .routes(routes!(rollouts::cancel))
        .routes(routes!(rollouts::rollback))
        .routes(routes!(dry_run::policy))
        .routes(routes!(dry_run::assignment))
        .routes(routes!(compliance::device))
        .routes(routes!(compliance::history))
        .routes(routes!(compliance::effective))
        .routes(routes!(compliance::fleet))
        .routes(routes!(compliance::group))
        .routes(routes!(compliance::remediate_device))
        .routes(routes!(compliance::remediate_group))
        .routes(routes!(break_glass::reveal))
        .routes(routes!(break_glass::feed))
        .routes(routes!(compliance::set_rule))
        .routes(routes!(
            compliance::get_attributes,
            compliance::set_attributes
        ))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
}
