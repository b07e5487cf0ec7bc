//! Conversions from storage records to the API's JSON shapes.

use printfleet_storage::groups::Group;
use printfleet_storage::invitations::Invitation;
use printfleet_storage::memberships::{Member, MyMembership};
use printfleet_storage::tokens::ApiToken;
use printfleet_wire as wire;

pub fn membership(m: MyMembership) -> wire::MembershipView {
    wire::MembershipView {
        tenant_id: m.tenant,
        tenant_name: m.tenant_name,
        membership_id: m.membership,
        role: m.role,
        role_name: m.role_name,
        scope: m.scope,
    }
}

pub fn member(m: Member) -> wire::MemberView {
    wire::MemberView {
        id: m.id,
        user_id: m.user.id,
        email: m.user.profile.email.expose().to_string(),
        first_name: m.user.profile.first_name.into_inner(),
        last_name: m.user.profile.last_name.into_inner(),
        role: m.role,
        role_name: m.role_name,
        scope: m.scope,
        created_at_ms: m.created_at_ms,
    }
}

pub fn invitation(i: Invitation) -> wire::InvitationView {
    wire::InvitationView {
        id: i.id,
        email: i.email.expose().to_string(),
        role: i.role,
        scope: i.scope,
        state: serde_json::to_value(i.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        created_at_ms: i.created_at_ms,
        expires_at_ms: i.expires_at_ms,
    }
}

pub fn role(r: printfleet_domain::Role) -> wire::RoleView {
    wire::RoleView {
        id: r.reference,
        built_in: matches!(r.reference, printfleet_domain::RoleRef::BuiltIn(_)),
        name: r.name,
        permissions: r.permissions,
    }
}

pub fn token(t: ApiToken) -> wire::TokenView {
    wire::TokenView {
        id: t.id,
        name: t.name,
        membership_id: t.membership,
        user_id: t.user,
        created_at_ms: t.created_at_ms,
        expires_at_ms: t.expires_at_ms,
        last_used_at_ms: t.last_used_at_ms,
        revoked_at_ms: t.revoked_at_ms,
    }
}

pub fn group(g: Group) -> wire::GroupView {
    wire::GroupView {
        id: g.id,
        name: g.name,
        created_at_ms: g.created_at_ms,
        rule: g.rule,
    }
}

pub fn tenant(t: printfleet_domain::tenant::Tenant, with_contact: bool) -> wire::TenantView {
    let e = |v: Option<printfleet_domain::Redacted<String>>| v.map(|x| x.into_inner());
    wire::TenantView {
        id: t.id,
        name: t.name,
        region: t.region,
        contact: with_contact.then(|| wire::ContactView {
            name: e(t.contact.name),
            email: e(t.contact.email),
            phone: e(t.contact.phone),
            postal_address: e(t.contact.postal_address),
        }),
        created_at_ms: t.created_at_ms,
    }
}
