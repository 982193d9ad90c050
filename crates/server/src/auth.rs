//! Bearer tokens: issuing, hashing (argon2) and checking, with a short-lived cache so that
//! argon2's deliberate slowness is paid once per token and minute, not per request, and at
//! most one verification per presented token at a time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use palisade_model::{Role, Timestamp};
use palisade_store::TokenRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{ApiError, AppState};

/// How long a verified token is trusted without checking the store again.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// A token presented in the last this much of its cache entry's lifetime is verified again in
/// the background while the caller is served from the cache, so that a token in steady use
/// never makes its callers wait for argon2.
const REFRESH_AHEAD: Duration = Duration::from_secs(10);

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

/// The cache's key: the SHA-256 of the presented token.
type TokenKey = [u8; 32];

/// Verified tokens, keyed by the SHA-256 of the presented token, and the verifications under
/// way.
///
/// At most one verification (store look-up and argon2) runs per key at a time: callers that
/// miss the cache while one is under way wait for its outcome instead of starting their own.
/// Without that, every connection of a busy client pays argon2 at once when its token's entry
/// expires (a CPU spike every [`CACHE_TTL`]), and so does every copy of a wrong secret sent at
/// once.
///
/// A token in steady use is re-checked in the background before its entry expires
/// ([`REFRESH_AHEAD`]), so its callers do not wait at all.
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: Mutex<CacheInner>,
    /// How many argon2 verifications ran: what the single-flight tests count.
    #[cfg(test)]
    argon2_runs: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
struct CacheInner {
    verified: HashMap<TokenKey, CachedCaller>,
    /// The verification under way per key, and how many callers wait on it (its entry goes
    /// when the last of them is done or dropped, so a cancelled caller cannot wedge the key).
    flights: HashMap<TokenKey, (Arc<Flight>, usize)>,
    /// Bumped by [`TokenCache::clear`]: a verification that began before it may have read a
    /// token revoked since, so its caller is not cached.
    generation: u64,
}

/// A verified token's caller.
#[derive(Debug)]
struct CachedCaller {
    caller: Caller,
    verified_at: Instant,
    /// Whether a request already started its background re-check ([`REFRESH_AHEAD`]).
    refreshing: bool,
}

/// What the cache holds for a presented token.
enum Cached {
    /// Verified less than [`CACHE_TTL`] ago.
    Fresh(Caller),
    /// Verified, but near the end of its lifetime: the first caller told so re-checks it.
    Refresh(Caller),
    /// Unknown or expired.
    Miss,
}

/// One verification's outcome, shared by the callers that wait on it: the caller, or `None`
/// when the token was refused. Refusals are shared only with those callers, never cached.
type Flight = OnceCell<Option<Caller>>;

/// Most verified tokens kept; past it, expired entries are dropped before a new one goes in.
const MAX_CACHED_TOKENS: usize = 10_000;

impl TokenCache {
    /// Forgets every cached token (after a revocation). Verifications under way keep their
    /// outcome for the callers already waiting on them but do not cache it; the next request
    /// verifies again.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.verified.clear();
        inner.flights.clear();
        inner.generation += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: &TokenKey) -> Cached {
        let mut inner = self.lock();
        let Some(cached) = inner.verified.get_mut(key) else {
            return Cached::Miss;
        };
        let age = cached.verified_at.elapsed();
        if age >= CACHE_TTL {
            Cached::Miss
        } else if age >= CACHE_TTL - REFRESH_AHEAD && !cached.refreshing {
            cached.refreshing = true;
            Cached::Refresh(cached.caller.clone())
        } else {
            Cached::Fresh(cached.caller.clone())
        }
    }

    /// Drops the entry of a token that a re-check refused.
    fn forget(&self, key: &TokenKey) {
        self.lock().verified.remove(key);
    }

    /// Caches `caller` unless the cache was cleared since `generation` was read.
    fn put(&self, key: TokenKey, caller: Caller, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.verified.len() > MAX_CACHED_TOKENS {
            inner
                .verified
                .retain(|_, cached| cached.verified_at.elapsed() < CACHE_TTL);
        }
        let cached = CachedCaller {
            caller,
            verified_at: Instant::now(),
            refreshing: false,
        };
        inner.verified.insert(key, cached);
    }

    /// The outcome of `verify` for `key`, run by whichever caller comes first while the others
    /// wait for it. If that caller is dropped or `verify` fails (a store error), a waiting
    /// caller runs its own `verify`.
    async fn verify_once<F, Fut>(&self, key: TokenKey, verify: F) -> Result<Caller, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Caller>, ApiError>>,
    {
        let ticket = self.join_flight(key);
        let outcome = ticket
            .flight
            .get_or_try_init(|| async {
                let generation = self.lock().generation;
                let outcome = verify().await?;
                if let Some(caller) = &outcome {
                    self.put(key, caller.clone(), generation);
                }
                Ok::<_, ApiError>(outcome)
            })
            .await?;
        outcome
            .clone()
            .ok_or_else(|| ApiError::unauthorized("invalid or revoked token"))
    }

    fn join_flight(&self, key: TokenKey) -> FlightTicket<'_> {
        let mut inner = self.lock();
        let (flight, waiting) = inner.flights.entry(key).or_default();
        *waiting += 1;
        FlightTicket {
            cache: self,
            key,
            flight: Arc::clone(flight),
        }
    }
}

/// A caller's place in a verification; leaving (done or dropped) removes the verification's
/// entry when it was the last.
struct FlightTicket<'a> {
    cache: &'a TokenCache,
    key: TokenKey,
    flight: Arc<Flight>,
}

impl Drop for FlightTicket<'_> {
    fn drop(&mut self) {
        let mut inner = self.cache.lock();
        // After a clear() the key may name a newer verification: leave that one alone.
        if let Some((flight, waiting)) = inner.flights.get_mut(&self.key)
            && Arc::ptr_eq(flight, &self.flight)
        {
            *waiting -= 1;
            if *waiting == 0 {
                inner.flights.remove(&self.key);
            }
        }
    }
}

/// Checks a presented token against the store.
pub async fn authenticate(state: &AppState, presented: &str) -> Result<Caller, ApiError> {
    if presented.is_empty() || presented.len() > MAX_TOKEN_LEN {
        return Err(ApiError::unauthorized("invalid token"));
    }
    let key: TokenKey = Sha256::digest(presented.as_bytes()).into();
    match state.tokens.get(&key) {
        Cached::Fresh(caller) => Ok(caller),
        Cached::Refresh(caller) => {
            let (state, presented) = (state.clone(), presented.to_owned());
            tokio::spawn(async move {
                let tokens = &state.tokens;
                let outcome = tokens
                    .verify_once(key, || verify_with_store(&state, &presented))
                    .await;
                if outcome.is_err_and(|error| error.status() == StatusCode::UNAUTHORIZED) {
                    tokens.forget(&key);
                }
            });
            Ok(caller)
        }
        Cached::Miss => {
            state
                .tokens
                .verify_once(key, || verify_with_store(state, presented))
                .await
        }
    }
}

/// Looks the presented token up and checks its secret with argon2: the caller it names, or
/// `None` when it is unknown, revoked or its secret is wrong.
async fn verify_with_store(state: &AppState, presented: &str) -> Result<Option<Caller>, ApiError> {
    let Some(record) = state
        .store
        .token(&token_id(presented))
        .await?
        .filter(|record| !record.revoked)
    else {
        return Ok(None);
    };
    #[cfg(test)]
    state
        .tokens
        .argon2_runs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    Ok(verified.then_some(Caller {
        token_id: record.id,
        name: record.name,
        role: record.role,
        agent_id: record.agent_id,
    }))
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
    use std::sync::atomic::Ordering;

    use palisade_model::AuditEntry;
    use palisade_notify::Notifier;
    use palisade_store::{SqliteStore, Store};
    use tokio::sync::{Barrier, oneshot};

    use super::*;

    /// How many callers present the same token at once (the list-alerts bench's connections).
    const CONCURRENT_CALLERS: usize = 16;

    /// A state over a fresh store holding one viewer token, and that token's text.
    async fn state_with_token() -> (tempfile::TempDir, AppState, String) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("palisade.db"))
                .await
                .unwrap(),
        );
        let issued = issue_token("reader", Role::Viewer, "test", None)
            .await
            .unwrap();
        store.insert_token(&issued.record, None).await.unwrap();
        let state = AppState::new(store, Notifier::start(Default::default()))
            .await
            .unwrap();
        (dir, state, issued.token)
    }

    /// Presents `token` from [`CONCURRENT_CALLERS`] tasks released together.
    async fn authenticate_at_once(state: &AppState, token: &str) -> Vec<Result<Caller, ApiError>> {
        let start = Arc::new(Barrier::new(CONCURRENT_CALLERS));
        let callers: Vec<_> = (0..CONCURRENT_CALLERS)
            .map(|_| {
                let (state, token, start) = (state.clone(), token.to_owned(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    authenticate(&state, &token).await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for caller in callers {
            outcomes.push(caller.await.unwrap());
        }
        outcomes
    }

    /// Sets when the cached entry of `key` was verified, as if it had aged.
    fn verified_at(state: &AppState, key: &TokenKey, at: Instant) {
        state
            .tokens
            .lock()
            .verified
            .get_mut(key)
            .unwrap()
            .verified_at = at;
    }

    fn argon2_runs(state: &AppState) -> usize {
        state.tokens.argon2_runs.load(Ordering::Relaxed)
    }

    fn assert_refused(outcome: &Result<Caller, ApiError>) {
        let error = outcome.as_ref().expect_err("the token must be refused");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert!(
            error.to_string().ends_with(": invalid or revoked token"),
            "{error}"
        );
    }

    /// Revokes the token `id` in the store, as the admin API does (without clearing the cache).
    async fn revoke(state: &AppState, id: &str) {
        let audit = AuditEntry {
            id: Uuid::new_v4(),
            at: Timestamp::now(),
            actor: "admin".into(),
            role: Role::Admin,
            action: "token.revoke".into(),
            target_kind: "token".into(),
            target_id: id.to_owned(),
            reason: String::new(),
            details: serde_json::Value::Null,
        };
        assert!(state.store.revoke_token(id, &audit).await.unwrap());
    }

    fn a_caller() -> Caller {
        Caller {
            token_id: "0123456789ab".into(),
            name: "reader".into(),
            role: Role::Viewer,
            agent_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_of_an_unverified_token_share_one_argon2_run() {
        let (_dir, state, token) = state_with_token().await;
        let id = token_id(&token);

        for outcome in authenticate_at_once(&state, &token).await {
            assert_eq!(outcome.unwrap().token_id, id);
        }
        assert_eq!(argon2_runs(&state), 1, "an empty cache: one verification");

        // Age the cached entry past its lifetime, as at the end of every minute.
        let key: TokenKey = Sha256::digest(token.as_bytes()).into();
        let expired = Instant::now().checked_sub(CACHE_TTL).unwrap();
        verified_at(&state, &key, expired);
        for outcome in authenticate_at_once(&state, &token).await {
            assert_eq!(outcome.unwrap().token_id, id);
        }
        assert_eq!(argon2_runs(&state), 2, "an expired entry: one verification");
        assert!(state.tokens.lock().flights.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_secret_is_refused_for_every_concurrent_caller_and_not_remembered() {
        let (_dir, state, token) = state_with_token().await;
        let wrong = format!("pal_{}_not-the-secret", token_id(&token));

        let outcomes = authenticate_at_once(&state, &wrong).await;
        assert_eq!(outcomes.len(), CONCURRENT_CALLERS);
        outcomes.iter().for_each(assert_refused);
        assert_eq!(argon2_runs(&state), 1);

        // A refusal is shared only with the callers waiting for it: the next one checks again.
        assert_refused(&authenticate(&state, &wrong).await);
        assert_eq!(argon2_runs(&state), 2);
        assert!(state.tokens.lock().verified.is_empty());
        authenticate(&state, &token).await.unwrap();
        assert_eq!(argon2_runs(&state), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_token_near_the_end_of_its_entry_is_rechecked_once_in_the_background() {
        let (_dir, state, token) = state_with_token().await;
        let id = token_id(&token);
        authenticate(&state, &token).await.unwrap();
        let key: TokenKey = Sha256::digest(token.as_bytes()).into();
        let aged = Instant::now()
            .checked_sub(CACHE_TTL - REFRESH_AHEAD / 2)
            .unwrap();
        verified_at(&state, &key, aged);

        // Served from the cache at once; the first of them starts the one re-check.
        for outcome in authenticate_at_once(&state, &token).await {
            assert_eq!(outcome.unwrap().token_id, id);
        }
        while state.tokens.lock().verified[&key].verified_at == aged {
            tokio::task::yield_now().await;
        }
        assert_eq!(argon2_runs(&state), 2);
        assert!(matches!(state.tokens.get(&key), Cached::Fresh(_)));

        // A re-check that finds the token refused drops its entry.
        revoke(&state, &id).await;
        verified_at(&state, &key, aged);
        authenticate(&state, &token).await.unwrap();
        while state.tokens.lock().verified.contains_key(&key) {
            tokio::task::yield_now().await;
        }
        assert_refused(&authenticate(&state, &token).await);
    }

    #[tokio::test]
    async fn a_revoked_token_is_refused_after_clear() {
        let (_dir, state, token) = state_with_token().await;
        let id = token_id(&token);
        authenticate(&state, &token).await.unwrap();
        authenticate(&state, &token).await.unwrap();
        assert_eq!(
            argon2_runs(&state),
            1,
            "the second request is served cached"
        );

        revoke(&state, &id).await;
        state.tokens.clear();
        assert_refused(&authenticate(&state, &token).await);
    }

    #[tokio::test]
    async fn a_verification_that_began_before_a_revocation_does_not_cache_its_caller() {
        let cache = TokenCache::default();
        let key = [7; 32];
        let (began, has_begun) = oneshot::channel();
        let (finish, may_finish) = oneshot::channel::<()>();
        let verification = cache.verify_once(key, || async move {
            began.send(()).unwrap();
            may_finish.await.unwrap();
            Ok(Some(a_caller()))
        });
        let revocation = async {
            has_begun.await.unwrap();
            cache.clear();
            finish.send(()).unwrap();
        };
        let (outcome, ()) = tokio::join!(verification, revocation);

        assert_eq!(
            outcome.unwrap(),
            a_caller(),
            "it began before the revocation"
        );
        assert!(
            matches!(cache.get(&key), Cached::Miss),
            "but the next request verifies again"
        );
        assert!(cache.lock().flights.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_wedge_its_key() {
        let cache = Arc::new(TokenCache::default());
        let key = [9; 32];
        let (began, has_begun) = oneshot::channel();
        let first = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .verify_once(key, || async move {
                        began.send(()).unwrap();
                        std::future::pending().await
                    })
                    .await
            }
        });
        has_begun.await.unwrap();
        let second = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .verify_once(key, || async { Ok(Some(a_caller())) })
                    .await
            }
        });
        while cache.lock().flights.get(&key).map(|(_, waiting)| *waiting) != Some(2) {
            tokio::task::yield_now().await;
        }

        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(
            second.await.unwrap().unwrap(),
            a_caller(),
            "the waiter takes over"
        );
        assert!(matches!(cache.get(&key), Cached::Fresh(caller) if caller == a_caller()));
        assert!(cache.lock().flights.is_empty());

        // A caller dropped alone leaves nothing behind either.
        let abandoned = cache.verify_once([1; 32], std::future::pending);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        assert!(cache.lock().flights.is_empty());
    }

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
