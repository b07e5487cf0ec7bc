//! Tenants. Creating one is a deployment operation (the admin command line); everything else is
//! done inside the tenant through a context.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::tenant_scope;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::tenant::{Contact, Tenant};
use printfleet_domain::{Actor, Ctx, Permission, Redacted, TenantId};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// The stored (encrypted) form of a tenant's contact data.
#[derive(Serialize, Deserialize, Default)]
struct ContactJson {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    postal_address: Option<String>,
}

impl From<&Contact> for ContactJson {
    fn from(c: &Contact) -> Self {
        let e = |v: &Option<Redacted<String>>| v.as_ref().map(|x| x.expose().clone());
        Self {
            name: e(&c.name),
            email: e(&c.email),
            phone: e(&c.phone),
            postal_address: e(&c.postal_address),
        }
    }
}

impl From<ContactJson> for Contact {
    fn from(c: ContactJson) -> Self {
        Self {
            name: c.name.map(Redacted::new),
            email: c.email.map(Redacted::new),
            phone: c.phone.map(Redacted::new),
            postal_address: c.postal_address.map(Redacted::new),
        }
    }
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub region: Option<String>,
    pub contact: Option<Contact>,
}

fn place(t: TenantId) -> String {
    format!("tenants.contact:{t}")
}

impl Store {
    /// Creates a tenant with its own data key. Deployment operation: no caller context exists yet.
    pub async fn create_tenant(
        &self,
        name: &str,
        region: &str,
        contact: &Contact,
        source: Option<String>,
    ) -> Result<TenantId, StoreError> {
        let name = printfleet_domain::tenant::validate_tenant_name(name)?;
        let region = printfleet_domain::tenant::validate_region(region)?;
        let id = TenantId::new_random();
        let scope = tenant_scope(id);
        let mut w = self.begin_write().await?;
        self.keys.insert_new_key(&mut w.tx, &scope, 1).await?;
        self.keys.set_active(&scope, 1);
        let (sealed, version) = self
            .seal_json(&scope, &place(id), &ContactJson::from(contact))
            .await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, region, contact, key_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(&name)
        .bind(&region)
        .bind(sealed)
        .bind(version)
        .bind(self.now_ms())
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent {
            actor: Actor::System,
            action: AuditAction::TenantCreated,
            target: format!("tenant:{id}"),
            source,
            detail: serde_json::json!({ "region": region }),
        };
        self.append_audit(&mut w, &tenant_chain(id), ev).await?;
        self.commit(w).await?;
        Ok(id)
    }

    /// The caller's tenant. Any member may read the name and region; contact data needs
    /// `tenant.settings`.
    pub async fn tenant_get(&self, ctx: &Ctx) -> Result<Tenant, StoreError> {
        let row =
            sqlx::query("SELECT name, region, contact, created_at FROM tenants WHERE id = $1")
                .bind(ctx.tenant.to_string())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        let contact = if ctx.can(Permission::TenantSettings) {
            let sealed: Option<Vec<u8>> = row.try_get(2)?;
            match sealed {
                Some(s) => self
                    .open_json::<ContactJson>(&tenant_scope(ctx.tenant), &place(ctx.tenant), &s)
                    .await?
                    .into(),
                None => Contact::default(),
            }
        } else {
            Contact::default()
        };
        Ok(Tenant {
            id: ctx.tenant,
            name: row.try_get(0)?,
            region: row.try_get(1)?,
            contact,
            created_at_ms: row.try_get(3)?,
        })
    }

    pub async fn tenant_update(&self, ctx: &Ctx, upd: TenantUpdate) -> Result<Tenant, StoreError> {
        ctx.require(Permission::TenantSettings)?;
        let current = self.tenant_get(ctx).await?;
        let name = match &upd.name {
            Some(n) => printfleet_domain::tenant::validate_tenant_name(n)?,
            None => current.name,
        };
        let region = match &upd.region {
            Some(r) => printfleet_domain::tenant::validate_region(r)?,
            None => current.region,
        };
        let contact = upd.contact.clone().unwrap_or(current.contact);
        let scope = tenant_scope(ctx.tenant);
        let (sealed, version) = self
            .seal_json(&scope, &place(ctx.tenant), &ContactJson::from(&contact))
            .await?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE tenants SET name = $1, region = $2, contact = $3, key_version = $4 WHERE id = $5")
            .bind(&name)
            .bind(&region)
            .bind(sealed)
            .bind(version)
            .bind(ctx.tenant.to_string())
            .execute(&mut *w.tx)
            .await?;
        let changed: Vec<&str> = [
            upd.name.as_ref().map(|_| "name"),
            upd.region.as_ref().map(|_| "region"),
            upd.contact.as_ref().map(|_| "contact"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let ev = AuditEvent::new(
            ctx,
            AuditAction::TenantUpdated,
            format!("tenant:{}", ctx.tenant),
        )
        .with_detail(serde_json::json!({ "changed": changed }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        self.tenant_get(ctx).await
    }
}
