//! IP allow-lists per organisation: parsing, checking an address, setting the list.

use crate::identity::tokens::Principal;
use crate::registry::org_by_code;
use crate::{App, AppError, AppResult, event};
use changegate_domain::Role;
use changegate_store::entity::organisation;
use std::net::IpAddr;
use tracing::instrument;

use super::*;

/// Parses an allow-list entry: a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}
/// Whether `ip` may sign in for an organisation with this stored allow-list (CIDRs; empty or
/// absent: any address).
pub fn ip_allowed(allowed: Option<&[String]>, ip: IpAddr) -> bool {
    let Some(list) = allowed.filter(|l| !l.is_empty()) else {
        return true;
    };
    let ip = ip.to_canonical();
    list.iter()
        .filter_map(|c| parse_cidr(c))
        .any(|n| n.contains(&ip))
}

/// An organisation's stored allow-list, as [`ip_allowed`] takes it.
pub fn allow_list(org: &organisation::Model) -> Option<&[String]> {
    org.allowed_ips.as_ref().map(|l| l.0.as_slice())
}
impl App {
    /// Sets the IP allow-list of an organisation (admin): CIDRs or single addresses; an empty
    /// list allows any address.
    #[instrument(skip_all, fields(org = ?org_code), err(level = "info"))]
    pub async fn set_allowed_ips(
        &self,
        who: &Principal,
        org_code: &str,
        cidrs: &[String],
    ) -> AppResult<()> {
        who.require(&[Role::Admin], "setting an IP allow-list")?;
        let mut nets = vec![];
        for c in cidrs.iter().filter(|c| !c.trim().is_empty()) {
            let n = parse_cidr(c).ok_or_else(|| {
                AppError::invalid(
                    "allowed_ips",
                    format!(
                        "{:?} không phải địa chỉ IP hay dải CIDR / is not an IP address or CIDR range such as 10.0.0.0/8",
                        clip(c, 80)
                    ),
                )
            })?;
            let n = n.to_string();
            if !nets.contains(&n) {
                nets.push(n);
            }
        }
        let tx = self.begin().await?;
        let org = org_by_code(&tx.txn, org_code).await?;
        let before: Vec<String> = allow_list(&org).map(<[String]>::to_vec).unwrap_or_default();
        let code = org.code.clone();
        changegate_store::registry::set_allowed_ips(
            &tx.txn,
            org,
            (!nets.is_empty()).then(|| nets.clone()),
        )
        .await?;
        tx.audit(event(
            Some(who),
            "organisation.allowed_ips",
            "organisation",
            &code,
            None,
            Some(serde_json::json!({ "allowed_ips": before })),
            Some(serde_json::json!({ "allowed_ips": nets })),
        ))
        .await?;
        tx.commit().await
    }
}
