//! First start: the admin token, and join tokens for local agents.

use palisade_model::Role;
use palisade_store::Store;

use crate::{
    ApiError,
    auth::{issue_token, token_id, token_record},
    state::{audit_entry, system_caller},
};

/// What [`ensure_admin_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminToken {
    /// `PALISADE_ADMIN_TOKEN` is (now) a valid admin token.
    FromEnvironment,
    /// A new admin token was generated; it must be shown to the user once.
    Generated(String),
    /// An admin token already existed; nothing was done.
    Existing,
}

/// Makes sure an admin can log in: registers `from_env` (the value of `PALISADE_ADMIN_TOKEN`)
/// when given, otherwise generates an admin token if none exists yet.
pub async fn ensure_admin_token(
    store: &dyn Store,
    from_env: Option<&str>,
) -> Result<AdminToken, ApiError> {
    let system = system_caller();
    if let Some(token) = from_env {
        if token.len() < 16 {
            return Err(ApiError::bad_request(
                "PALISADE_ADMIN_TOKEN must be at least 16 characters long",
            ));
        }
        match store.token(&token_id(token)).await? {
            Some(existing) if existing.revoked => {
                return Err(ApiError::forbidden(
                    "PALISADE_ADMIN_TOKEN was revoked; set a new value",
                ));
            }
            Some(_) => {}
            None => {
                let record = token_record(
                    token,
                    "admin (PALISADE_ADMIN_TOKEN)",
                    Role::Admin,
                    &system.name,
                    None,
                )
                .await?;
                let audit = audit_entry(
                    &system,
                    "token.create",
                    "token",
                    &record.id,
                    "PALISADE_ADMIN_TOKEN",
                    serde_json::json!({ "role": "admin" }),
                );
                store.insert_token(&record, Some(&audit)).await?;
            }
        }
        return Ok(AdminToken::FromEnvironment);
    }
    let tokens = store.tokens().await?;
    if tokens
        .iter()
        .any(|token| token.role == Role::Admin && !token.revoked)
    {
        return Ok(AdminToken::Existing);
    }
    let issued = issue_token("admin", Role::Admin, &system.name, None).await?;
    let audit = audit_entry(
        &system,
        "token.create",
        "token",
        &issued.record.id,
        "first start",
        serde_json::json!({ "role": "admin" }),
    );
    store.insert_token(&issued.record, Some(&audit)).await?;
    Ok(AdminToken::Generated(issued.token))
}

/// Issues a join token (for the local agent of `palisade up`).
pub async fn issue_join_token(store: &dyn Store, name: &str) -> Result<String, ApiError> {
    let system = system_caller();
    let issued = issue_token(name, Role::Join, &system.name, None).await?;
    let audit = audit_entry(
        &system,
        "token.create",
        "token",
        &issued.record.id,
        "local agent",
        serde_json::json!({ "role": "join" }),
    );
    store.insert_token(&issued.record, Some(&audit)).await?;
    Ok(issued.token)
}
