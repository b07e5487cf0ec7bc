//! Dynamic device groups and the printer attributes their rules look at (model, firmware, and
//! the site and tags an admin sets).
//!
//! Membership of a dynamic group is materialised in `group_devices`, like a static group's, so
//! that scopes and assignments read one table. It is recomputed for the whole group when its
//! rule changes, and for one printer when its attributes change or the assessor meets it.

use crate::audit::{tenant_chain, AuditEvent, WriteTx};
use crate::codec::{from_json, parse_id, to_json};
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::policy::{DeviceAttributes, GroupRule};
use printfleet_domain::validation;
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, TenantId};
use sqlx::Row;
use std::collections::BTreeSet;

const MAX_TAGS: usize = 32;

/// The attributes rules look at, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAttrs {
    pub device: DeviceId,
    pub model: String,
    pub firmware: String,
    pub site: Option<String>,
    pub tags: BTreeSet<String>,
}

impl DeviceAttrs {
    fn view(&self) -> DeviceAttributes<'_> {
        DeviceAttributes {
            model: &self.model,
            firmware: &self.firmware,
            site: self.site.as_deref(),
            tags: &self.tags,
        }
    }
}

fn attrs_from_row(r: &sqlx::any::AnyRow) -> Result<DeviceAttrs, StoreError> {
    let tags: Option<String> = r.try_get(4)?;
    Ok(DeviceAttrs {
        device: parse_id("devices.id", &r.try_get::<String, _>(0)?)?,
        model: r.try_get(1)?,
        firmware: r.try_get(2)?,
        site: r.try_get(3)?,
        tags: match tags {
            Some(t) => from_json("devices.tags", &t)?,
            None => BTreeSet::new(),
        },
    })
}

const ATTRS: &str = "SELECT id, model, firmware, site, tags FROM devices";

impl Store {
    /// The tenant's dynamic groups and their rules.
    pub(crate) async fn group_rules(
        &self,
        t: TenantId,
    ) -> Result<Vec<(GroupId, GroupRule)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, rule FROM device_groups WHERE tenant_id = $1 AND rule IS NOT NULL",
        )
        .bind(t.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id("device_groups.id", &r.try_get::<String, _>(0)?)?,
                    from_json("device_groups.rule", &r.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }

    pub(crate) async fn device_attrs(
        &self,
        t: TenantId,
        devices: &[DeviceId],
    ) -> Result<Vec<DeviceAttrs>, StoreError> {
        let mut out = Vec::with_capacity(devices.len());
        for chunk in devices.chunks(100) {
            let sql = format!(
                "{ATTRS} WHERE tenant_id = $1 AND removed_at IS NULL AND id IN ({})",
                crate::codec::in_list_from(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(t.to_string());
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(attrs_from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Makes the printers' dynamic memberships match the rules. Returns whether any changed.
    pub(crate) async fn refresh_dynamic_membership(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        rules: &[(GroupId, GroupRule)],
        devices: &[DeviceAttrs],
    ) -> Result<bool, StoreError> {
        let mut changed = false;
        for d in devices {
            for (g, rule) in rules {
                let want = rule.matches(&d.view());
                let has = sqlx::query(
                    "SELECT 1 FROM group_devices WHERE tenant_id = $1 AND group_id = $2 AND device_id = $3",
                )
                .bind(t.to_string())
                .bind(g.to_string())
                .bind(d.device.to_string())
                .fetch_optional(&mut *w.tx)
                .await?
                .is_some();
                if want && !has {
                    sqlx::query("INSERT INTO group_devices (tenant_id, group_id, device_id) VALUES ($1, $2, $3)")
                        .bind(t.to_string())
                        .bind(g.to_string())
                        .bind(d.device.to_string())
                        .execute(&mut *w.tx)
                        .await?;
                    changed = true;
                } else if has && !want {
                    sqlx::query("DELETE FROM group_devices WHERE tenant_id = $1 AND group_id = $2 AND device_id = $3")
                        .bind(t.to_string())
                        .bind(g.to_string())
                        .bind(d.device.to_string())
                        .execute(&mut *w.tx)
                        .await?;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    /// Makes a group dynamic with `rule`, or static again (and empty) with `None`. Needs a
    /// tenant-wide scope: a rule can select printers outside a scoped admin's groups.
    pub async fn group_set_rule(
        &self,
        ctx: &Ctx,
        group: GroupId,
        rule: Option<GroupRule>,
    ) -> Result<(), StoreError> {
        self.group_get(ctx, group).await?;
        ctx.require(Permission::DevicesManage)?;
        if !ctx.scope.is_tenant_wide() {
            return Err(StoreError::ScopeTooNarrow);
        }
        let rule = rule.map(GroupRule::validate).transpose()?;
        let t = ctx.tenant;
        let all: Vec<DeviceAttrs> = sqlx::query(&format!(
            "{ATTRS} WHERE tenant_id = $1 AND removed_at IS NULL"
        ))
        .bind(t.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(attrs_from_row)
        .collect::<Result<_, _>>()?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE device_groups SET rule = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(t.to_string())
            .bind(group.to_string())
            .bind(rule.as_ref().map(to_json).transpose()?)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM group_devices WHERE tenant_id = $1 AND group_id = $2")
            .bind(t.to_string())
            .bind(group.to_string())
            .execute(&mut *w.tx)
            .await?;
        if let Some(rule) = &rule {
            let members: Vec<&DeviceAttrs> =
                all.iter().filter(|d| rule.matches(&d.view())).collect();
            for chunk in members.chunks(200) {
                let sql = format!(
                    "INSERT INTO group_devices (tenant_id, group_id, device_id) VALUES {}",
                    crate::codec::value_rows(chunk.len(), 3)
                );
                let mut q = sqlx::query(&sql);
                for d in chunk {
                    q = q
                        .bind(t.to_string())
                        .bind(group.to_string())
                        .bind(d.device.to_string());
                }
                q.execute(&mut *w.tx).await?;
            }
        }
        self.bump_policy_epoch(&mut w, t).await?;
        let ev = AuditEvent::new(ctx, AuditAction::GroupRuleChanged, format!("group:{group}"))
            .with_detail(serde_json::json!({ "rule": rule }));
        self.append_audit(&mut w, &tenant_chain(t), ev).await?;
        self.commit(w).await
    }

    /// Sets a printer's site and tags (what dynamic groups may select on).
    pub async fn device_set_attributes(
        &self,
        ctx: &Ctx,
        device: DeviceId,
        site: Option<&str>,
        tags: &[String],
    ) -> Result<DeviceAttrs, StoreError> {
        self.device_get_visible(ctx, device).await?;
        ctx.require(Permission::DevicesManage)?;
        let site = validation::optional_text("site", site, 100)?;
        if tags.len() > MAX_TAGS {
            return Err(validation::ValidationError::new(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            )
            .into());
        }
        let tags: BTreeSet<String> = tags
            .iter()
            .map(|t| validation::text("tags", t, 50))
            .collect::<Result<_, _>>()?;
        let t = ctx.tenant;
        let rules = self.group_rules(t).await?;
        let mut w = self.begin_write().await?;
        sqlx::query("UPDATE devices SET site = $3, tags = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(t.to_string())
            .bind(device.to_string())
            .bind(&site)
            .bind(to_json(&tags)?)
            .execute(&mut *w.tx)
            .await?;
        let attrs = self
            .device_attrs_tx(&mut w, t, device)
            .await?
            .ok_or(StoreError::NotFound)?;
        self.refresh_dynamic_membership(&mut w, t, &rules, std::slice::from_ref(&attrs))
            .await?;
        self.mark_for_assessment(&mut w, t, device).await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::DeviceAttributesChanged,
            format!("device:{device}"),
        )
        .with_detail(serde_json::json!({ "site": site.is_some(), "tags": tags.len() }));
        self.append_audit(&mut w, &tenant_chain(t), ev).await?;
        self.commit(w).await?;
        Ok(attrs)
    }

    async fn device_attrs_tx(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        device: DeviceId,
    ) -> Result<Option<DeviceAttrs>, StoreError> {
        sqlx::query(&format!(
            "{ATTRS} WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL"
        ))
        .bind(t.to_string())
        .bind(device.to_string())
        .fetch_optional(&mut *w.tx)
        .await?
        .as_ref()
        .map(attrs_from_row)
        .transpose()
    }

    /// The site and tags of a printer the caller can see.
    pub async fn device_attributes(
        &self,
        ctx: &Ctx,
        device: DeviceId,
    ) -> Result<DeviceAttrs, StoreError> {
        self.device_get(ctx, device).await?;
        self.device_attrs(ctx.tenant, &[device])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Makes the assessor look at one printer again.
    pub(crate) async fn mark_for_assessment(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        device: DeviceId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE device_compliance SET epoch = -1 WHERE tenant_id = $1 AND device_id = $2",
        )
        .bind(t.to_string())
        .bind(device.to_string())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }
}
