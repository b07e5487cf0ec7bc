//! Devices (printers) of a tenant: listing, inspection, removal, group membership. A membership
//! scoped to groups sees only the printers in those groups.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::parse_id;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, Scope};
use sqlx::Row;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub serial: String,
    pub model: String,
    pub firmware: String,
    /// `direct`, or later `proxy:<id>`.
    pub connection: String,
    /// Version of the printer's own keys (re-enrolment bumps it).
    pub key_version: i64,
    pub enrolled_at_ms: i64,
    /// When an admin revoked its key (it must then re-enrol with an admin's approval).
    pub revoked_at_ms: Option<i64>,
    /// Until when an admin allowed re-enrolment without proof of the current key.
    pub reenrol_approved_until_ms: Option<i64>,
    pub groups: BTreeSet<GroupId>,
}

/// How long an admin's approval of a re-enrolment stays valid.
pub const REENROL_APPROVAL_MS: i64 = 24 * 3_600_000;

const COLUMNS: &str = "id, serial, model, firmware, connection, key_version, enrolled_at, revoked_at, reenrol_approved_until";

impl Store {
    async fn device_groups(
        &self,
        ctx: &Ctx,
        id: DeviceId,
    ) -> Result<BTreeSet<GroupId>, StoreError> {
        sqlx::query("SELECT group_id FROM group_devices WHERE tenant_id = $1 AND device_id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| parse_id("group_devices.group_id", &r.try_get::<String, _>(0)?))
            .collect()
    }

    async fn device_from_row(
        &self,
        ctx: &Ctx,
        r: &sqlx::any::AnyRow,
    ) -> Result<Device, StoreError> {
        let id: DeviceId = parse_id("devices.id", &r.try_get::<String, _>(0)?)?;
        Ok(Device {
            id,
            serial: r.try_get(1)?,
            model: r.try_get(2)?,
            firmware: r.try_get(3)?,
            connection: r.try_get(4)?,
            key_version: r.try_get(5)?,
            enrolled_at_ms: r.try_get(6)?,
            revoked_at_ms: r.try_get(7)?,
            reenrol_approved_until_ms: r.try_get(8)?,
            groups: self.device_groups(ctx, id).await?,
        })
    }

    fn visible(ctx: &Ctx, d: &Device) -> bool {
        match &ctx.scope {
            Scope::Tenant => true,
            Scope::Groups(g) => !g.is_disjoint(&d.groups),
        }
    }

    /// The printers the caller can see.
    pub async fn devices_list(&self, ctx: &Ctx) -> Result<Vec<Device>, StoreError> {
        ctx.require(Permission::DevicesRead)?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM devices WHERE tenant_id = $1 AND removed_at IS NULL ORDER BY serial"
        ))
        .bind(ctx.tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let d = self.device_from_row(ctx, r).await?;
            if Self::visible(ctx, &d) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// One printer; `NotFound` when removed, in another tenant, or outside the scope.
    pub async fn device_get(&self, ctx: &Ctx, id: DeviceId) -> Result<Device, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM devices WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL"
        ))
        .bind(ctx.tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let d = self.device_from_row(ctx, &r).await?;
        if !Self::visible(ctx, &d) {
            return Err(StoreError::NotFound);
        }
        ctx.require(Permission::DevicesRead)?;
        Ok(d)
    }

    /// Removes a printer. Its keys stop working at once: the resolver no longer finds it.
    pub async fn device_remove(&self, ctx: &Ctx, id: DeviceId) -> Result<(), StoreError> {
        self.device_get_visible(ctx, id).await?;
        ctx.require(Permission::DevicesManage)?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE devices SET removed_at = $1 WHERE tenant_id = $2 AND id = $3 AND removed_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM group_devices WHERE tenant_id = $1 AND device_id = $2")
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(ctx, AuditAction::DeviceRemoved, format!("device:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Revokes a printer's key: from now on its heartbeats are dropped, its sealed bodies
    /// refused and it is not rung, until it re-enrols with an admin's approval.
    pub async fn device_revoke_key(&self, ctx: &Ctx, id: DeviceId) -> Result<(), StoreError> {
        self.device_get_visible(ctx, id).await?;
        ctx.require(Permission::DevicesManage)?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE devices SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND removed_at IS NULL AND revoked_at IS NULL")
            .bind(self.now_ms())
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(ctx, AuditAction::DeviceKeyRevoked, format!("device:{id}"));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Allows the printer's serial to enrol again within 24 hours without proof of its current
    /// key (lost or revoked key, factory reset). The printer keeps its id and history.
    pub async fn device_approve_reenrolment(
        &self,
        ctx: &Ctx,
        id: DeviceId,
    ) -> Result<i64, StoreError> {
        self.device_get_visible(ctx, id).await?;
        ctx.require(Permission::DevicesManage)?;
        let until = self.now_ms() + REENROL_APPROVAL_MS;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE devices SET reenrol_approved_until = $1 WHERE tenant_id = $2 AND id = $3 AND removed_at IS NULL")
            .bind(until)
            .bind(ctx.tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *w.tx)
            .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::DeviceReenrolmentApproved,
            format!("device:{id}"),
        )
        .with_detail(serde_json::json!({ "until": until }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(until)
    }

    /// Puts a printer into a group (both must be visible to the caller).
    pub async fn group_add_device(
        &self,
        ctx: &Ctx,
        group: GroupId,
        device: DeviceId,
    ) -> Result<(), StoreError> {
        let g = self.group_get_visible(ctx, group).await?;
        self.device_get_visible(ctx, device).await?;
        ctx.require(Permission::DevicesManage)?;
        if g.rule.is_some() {
            return Err(StoreError::conflict(
                "group_is_dynamic",
                "this group's members follow its rule; change the rule or the printer's site and tags",
            ));
        }
        let mut w = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT 1 FROM group_devices WHERE tenant_id = $1 AND group_id = $2 AND device_id = $3",
        )
        .bind(ctx.tenant.to_string())
        .bind(group.to_string())
        .bind(device.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        if exists.is_some() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO group_devices (tenant_id, group_id, device_id) VALUES ($1, $2, $3)",
        )
        .bind(ctx.tenant.to_string())
        .bind(group.to_string())
        .bind(device.to_string())
        .execute(&mut *w.tx)
        .await?;
        self.mark_for_assessment(&mut w, ctx.tenant, device).await?;
        let ev = AuditEvent::new(ctx, AuditAction::GroupDeviceAdded, format!("group:{group}"))
            .with_detail(serde_json::json!({ "device": format!("device:{device}") }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await
    }

    /// Visibility only (no permission check), for calls that check their own permission after.
    pub(crate) async fn device_get_visible(
        &self,
        ctx: &Ctx,
        id: DeviceId,
    ) -> Result<Device, StoreError> {
        let mut read = ctx.clone();
        read.permissions.insert(Permission::DevicesRead);
        self.device_get(&read, id).await
    }

    async fn group_get_visible(
        &self,
        ctx: &Ctx,
        id: GroupId,
    ) -> Result<crate::groups::Group, StoreError> {
        let mut read = ctx.clone();
        read.permissions.insert(Permission::DevicesRead);
        self.group_get(&read, id).await
    }
}
