//! Tokens: 32 random bytes, shown once; only their SHA-256 is stored. Principals and the
//! streams each may read follow from the role.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::store::{AgentRow, StoreRead};
use super::{AuthPrincipal, Engine, EngineError};
use crate::config::Config;
use crate::protocol::{Principal, Role, TenantRef, stream};

/// A new token and its hash.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "sbx_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks an agent's role and tenants against the configuration and makes its row and token.
pub fn new_agent(
    config: &Config,
    name: &str,
    role: Role,
    tenants: &[String],
) -> Result<(String, AgentRow), EngineError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(EngineError::Config(
            "--name: expected a name of 1 to 80 characters".into(),
        ));
    }
    match role {
        Role::Agent | Role::Admin if tenants.is_empty() => {
            return Err(EngineError::Config(format!(
                "--tenant is required for the {} role",
                role.as_str()
            )));
        }
        Role::Ops | Role::Owner if !tenants.is_empty() => {
            return Err(EngineError::Config(format!(
                "--tenant is not taken for the {} role: it sees every tenant's traffic",
                role.as_str()
            )));
        }
        _ => {}
    }
    for t in tenants {
        if config.tenant(t).is_none() {
            let known: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
            return Err(EngineError::Config(format!(
                "--tenant {t:?}: no such tenant; expected one of {}",
                known.join(", ")
            )));
        }
    }
    let (token, token_hash) = new_token();
    let row = AgentRow {
        id: format!("ag_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        name: name.to_string(),
        role,
        tenants: tenants.to_vec(),
        token_hash,
    };
    Ok((token, row))
}

pub(super) async fn authenticate(engine: &Engine, token: &str) -> Option<AuthPrincipal> {
    let h = hash(token);
    let config = engine.config();
    if bool::from(h.ct_eq(&engine.inner.local_owner)) {
        return Some(principal(
            config,
            "local-owner",
            "Local owner",
            Role::Owner,
            &[],
        ));
    }
    let reader = engine.reader().clone();
    let row = tokio::task::spawn_blocking(move || reader.agent_by_token_hash(&h))
        .await
        .ok()?
        .ok()??;
    Some(principal(
        config,
        &row.id,
        &row.name,
        row.role,
        &row.tenants,
    ))
}

fn principal(
    config: &Config,
    id: &str,
    name: &str,
    role: Role,
    tenants: &[String],
) -> AuthPrincipal {
    let refs: Vec<TenantRef> = match role {
        Role::Owner => config
            .tenants
            .iter()
            .map(|t| TenantRef {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect(),
        Role::Ops => Vec::new(),
        Role::Agent | Role::Admin => tenants
            .iter()
            .filter_map(|id| config.tenant(id))
            .map(|t| TenantRef {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect(),
    };
    let mut streams: Vec<String> = refs.iter().map(|t| stream::tenant(&t.id)).collect();
    if matches!(role, Role::Ops | Role::Owner) {
        streams.push(stream::OPS.to_string());
    }
    AuthPrincipal {
        principal: Principal {
            agent: id.to_string(),
            name: name.to_string(),
            role,
            tenants: refs,
        },
        streams,
    }
}
