//! Bearer tokens: issuing, hashing (argon2) and checking, with a short-lived cache so that
//! argon2's deliberate slowness is paid once per token and minute, not per request.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use palisade_model::{Role, Timestamp};
use palisade_store::TokenRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{ApiError, AppState};

/// How long a verified token is trusted without checking the store again.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// Tokens longer than this are refused before any work is done.
const MAX_TOKEN_LEN: usize = 512;

/// Who is calling: the identity behind a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// The token's name (shown in the audit trail).
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// For agent tokens, the agent.
    pub agent_id: Option<Uuid>,
}

impl Caller {
    /// Fails with 403 unless the caller's role includes `required`.
    pub fn require(&self, required: Role) -> Result<(), ApiError> {
        if self.role.allows(required) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs the {required} role; the token {:?} has the {} role",
                self.name, self.role
            )))
        }
    }
}

/// A freshly issued token: the record to store and the secret text shown once.
#[derive(Debug)]
pub struct IssuedToken {
    /// What is stored (with the argon2 hash).
    pub record: TokenRecord,
    /// The full token to hand to the client: `pal_<id>_<secret>`.
    pub token: String,
}

/// Issues a new random token.
pub async fn issue_token(
    name: &str,
    role: Role,
    created_by: &str,
    agent_id: Option<Uuid>,
) -> Result<IssuedToken, ApiError> {
    let mut id_bytes = [0u8; 6];
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut id_bytes);
    rand::rng().fill_bytes(&mut secret_bytes);
    let token = format!(
        "pal_{}_{}",
        hex::encode(id_bytes),
        URL_SAFE_NO_PAD.encode(secret_bytes)
    );
    let record = token_record(&token, name, role, created_by, agent_id).await?;
    Ok(IssuedToken { record, token })
}

/// Builds the stored record for a given token text (used for `PALISADE_ADMIN_TOKEN`).
pub async fn token_record(
    token: &str,
    name: &str,
    role: Role,
    created_by: &str,
    agent_id: Option<Uuid>,
) -> Result<TokenRecord, ApiError> {
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let secret = token.to_owned();
    // argon2 is CPU-heavy by design: run it off the async worker threads.
    let secret_hash = tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| error.to_string())?;
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| error.to_string())
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
    .map_err(|error| ApiError::internal(&std::io::Error::other(error)))?;
    Ok(TokenRecord {
        id: token_id(token),
        name: name.to_owned(),
        role,
        secret_hash,
        created_at: Timestamp::now(),
        created_by: created_by.to_owned(),
        revoked: false,
        agent_id,
    })
}

/// The public id of a token: the `<id>` of `pal_<id>_<secret>`, or for a token of any other
/// shape (an operator's own `PALISADE_ADMIN_TOKEN`), a digest of it.
pub fn token_id(token: &str) -> String {
    let parts: Vec<&str> = token.splitn(3, '_').collect();
    match parts.as_slice() {
        ["pal", id, secret]
            if id.len() == 12
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && !secret.is_empty() =>
        {
            (*id).to_owned()
        }
        _ => format!(
            "env{}",
            &hex::encode(Sha256::digest(token.as_bytes()))[..12]
        ),
    }
}

/// Verified tokens, keyed by the SHA-256 of the presented token.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (Caller, Instant)>>,
}

impl TokenCache {
    /// Forgets every cached token (after a revocation).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    fn get(&self, key: &[u8; 32]) -> Option<Caller> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(caller, _)| caller.clone())
    }

    fn put(&self, key: [u8; 32], caller: Caller) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(key, (caller, Instant::now()));
    }
}

/// Checks a presented token against the store.
pub async fn authenticate(state: &AppState, presented: &str) -> Result<Caller, ApiError> {
    if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
        return Err(ApiError::unauthorized("invalid token"));
    }
    let key: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if let Some(caller) = state.tokens.get(&key) {
        return Ok(caller);
    }
    let record = state
        .store
        .token(&token_id(presented))
        .await?
        .filter(|record| !record.revoked)
        .ok_or_else(|| ApiError::unauthorized("invalid or revoked token"))?;
    // argon2 is CPU-heavy by design: run it off the async worker threads.
    let presented_owned = presented.to_owned();
    let secret_hash = record.secret_hash.clone();
    let verified = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&secret_hash)
            .map(|hash| {
                Argon2::default()
                    .verify_password(presented_owned.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if !verified {
        return Err(ApiError::unauthorized("invalid or revoked token"));
    }
    let caller = Caller {
        token_id: record.id,
        name: record.name,
        role: record.role,
        agent_id: record.agent_id,
    };
    state.tokens.put(key, caller.clone());
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing `Authorization: Bearer <token>` header")
            })?;
        let value = header
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        authenticate(state, token.trim()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_ids() {
        let issued = issue_token("t", Role::Viewer, "test", None).await.unwrap();
        assert_eq!(issued.record.id.len(), 12);
        assert_eq!(token_id(&issued.token), issued.record.id);
        assert!(token_id("my-own-secret").starts_with("env"));
        assert_ne!(token_id("a"), token_id("b"));
        assert!(
            token_id("pal_zz_x").starts_with("env"),
            "not hex: treated as an opaque token"
        );
    }
}
