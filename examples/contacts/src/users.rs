//! Users: accounts, passwords and session tokens, for the framework's user operations
//! (`hooks::ops::users::{Register, Login, Logout, PasswordReset}`), and the one user operation the
//! service adds: [`ResetPassword`], the second step of a password reset.
//!
//! Passwords and tokens travel as [`Secret`]s: they print and serialize as `***`, and are read
//! with `expose()` only where they are hashed or compared.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2s256, Digest};
use hooks::{HookError, Secret, User};
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::{Config, PasswordCost};
use crate::db;

/// A new password, with the token of a reset request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The token the reset message carried.
    pub token: Secret,
    /// The new password (hashed before it is stored).
    pub password: Secret,
}

hooks::operation! {
    /// Set a new password with a reset token; unlocks the account and ends its sessions.
    pub ResetPassword: "users.password_reset_confirm" on "users", NewPassword => ()
}

/// How long a password reset token stays valid.
pub const RESET_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The least time between two reset messages to one account: a request sooner after the last
/// one sends nothing (and answers as any other), so that no one floods a mailbox or the outbox
/// through the reset route. A later one adds a token; the older ones stay valid.
pub const RESET_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The most live (unexpired) reset tokens an account holds: a request while it has that many
/// sends nothing, so at most this many messages reach a mailbox within [`RESET_TTL`].
pub const RESET_MAX_LIVE: i64 = 3;

fn argon2(cost: PasswordCost) -> Result<Argon2<'static>, HookError> {
    let params = match cost {
        PasswordCost::Standard => Params::DEFAULT,
        PasswordCost::Minimal => Params::new(Params::MIN_M_COST, 1, 1, None)
            .map_err(|e| HookError::internal(format!("argon2 parameters: {e}")))?,
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The password hashing of one service: Argon2id at the configured cost, with at most `permits`
/// hashes or verifications running at once.
///
/// Each Argon2 run holds its memory (19 MiB at the standard cost) and a CPU for its whole time, so
/// an unbounded number of them is a memory and CPU exhaustion any unauthenticated client can
/// cause. A call first waits for a permit (the wait holds nothing but the request), then runs the
/// hash on a blocking thread that keeps the permit until the hash ends, even if the request that
/// asked for it is gone: the bound holds on what actually runs.
///
/// It also counts what it did ([`Passwords::hashes`], [`Passwords::verifications`]), so that
/// tests can tell which calls reached a password check.
#[derive(Debug, Clone)]
pub struct Passwords {
    inner: Arc<PasswordsInner>,
}

#[derive(Debug)]
struct PasswordsInner {
    cost: PasswordCost,
    permits: usize,
    limiter: Arc<Semaphore>,
    /// The hash that logins for unknown emails are checked against.
    dummy: OnceCell<String>,
    hashes: AtomicU64,
    verifications: AtomicU64,
    waiting: AtomicUsize,
    /// Past this many waiting calls, a new one is refused with 503 rather than queued: the wait
    /// is bounded as well as the memory.
    max_waiting: usize,
}

/// How many calls may wait for each permit (with 2 CPUs, 64 calls, about 20 s of Argon2 at the
/// standard cost) before the next is refused.
const WAITING_PER_PERMIT: usize = 32;

/// Counts a caller waiting for a permit for as long as it lives (a cancelled wait included).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Passwords {
    /// Hashing at `cost`, with at most `permits` (at least 1) Argon2 runs at once.
    pub fn new(cost: PasswordCost, permits: usize) -> Self {
        let permits = permits.clamp(1, Semaphore::MAX_PERMITS);
        Passwords {
            inner: Arc::new(PasswordsInner {
                cost,
                permits,
                limiter: Arc::new(Semaphore::new(permits)),
                dummy: OnceCell::new(),
                hashes: AtomicU64::new(0),
                verifications: AtomicU64::new(0),
                waiting: AtomicUsize::new(0),
                max_waiting: permits.saturating_mul(WAITING_PER_PERMIT),
            }),
        }
    }

    /// Hashing at `cost`, with as many Argon2 runs at once as this machine has CPUs.
    pub fn for_this_machine(cost: PasswordCost) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Passwords::new(cost, cpus)
    }

    /// How many Argon2 runs may happen at once.
    pub fn permits(&self) -> usize {
        self.inner.permits
    }

    /// The semaphore the runs take their permit from (a test holds permits to see calls queue).
    pub fn limiter(&self) -> &Arc<Semaphore> {
        &self.inner.limiter
    }

    /// How many hashes have started (each after getting its permit).
    pub fn hashes(&self) -> u64 {
        self.inner.hashes.load(Ordering::SeqCst)
    }

    /// How many password checks have started, against a stored hash or the dummy one.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::SeqCst)
    }

    /// How many calls are waiting for a permit right now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Run `job` on a blocking thread once a permit is free; the thread keeps the permit. With
    /// too many calls waiting already, 503 `busy` at once.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HookError> {
        let permit = {
            let _waiting = Waiting::new(&self.inner.waiting);
            if self.inner.waiting.load(Ordering::SeqCst) > self.inner.max_waiting {
                return Err(HookError::new(
                    503,
                    "busy",
                    "too many password checks are waiting: try again shortly",
                ));
            }
            Arc::clone(&self.inner.limiter)
                .acquire_owned()
                .await
                .map_err(|_| HookError::internal("password hashing is shut down"))?
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| HookError::internal(format!("password hashing stopped: {e}")))
    }

    /// Hash `password` (Argon2id, random salt); returns the PHC string.
    pub async fn hash(&self, password: Secret) -> Result<String, HookError> {
        let cost = self.inner.cost;
        let inner = Arc::clone(&self.inner);
        self.run(move || {
            inner.hashes.fetch_add(1, Ordering::SeqCst);
            let hash = argon2(cost)?
                .hash_password(password.expose().as_bytes())
                .map_err(|e| HookError::internal(format!("cannot hash the password: {e}")))?;
            Ok(hash.to_string())
        })
        .await?
    }

    /// Whether `password` matches the stored PHC string `hash`; an error when the check could
    /// not run (503 `busy`: too many waiting).
    pub async fn verify(&self, password: Secret, hash: String) -> Result<bool, HookError> {
        let inner = Arc::clone(&self.inner);
        self.run(move || {
            inner.verifications.fetch_add(1, Ordering::SeqCst);
            // The parameters stored in the hash are used, whatever `Argon2::default` says.
            Argon2::default()
                .verify_password(password.expose().as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
    }

    /// Check `password` against a hash no password matches, made at the service's cost: the work a
    /// login for an unknown email does, so that it takes as long as one for a real account.
    /// An error only when the check could not run, as [`Passwords::verify`].
    pub async fn verify_unknown(&self, password: Secret) -> Result<(), HookError> {
        let dummy = self
            .inner
            .dummy
            .get_or_try_init(|| async { self.hash(new_token()?).await })
            .await?;
        self.verify(password, dummy.clone()).await.map(drop)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A new random token (256 bits, hex).
pub fn new_token() -> Result<Secret, HookError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| HookError::internal(format!("no randomness for a token: {e}")))?;
    Ok(Secret::new(hex(&bytes)))
}

/// The hash a token is stored under.
pub fn token_hash(token: &Secret) -> String {
    hex(&Blake2s256::digest(token.expose().as_bytes()))
}

/// The role of the accounts the settings name as admins (`--admin`, [`Config::admins`]): it
/// opens `GET /hooks`.
pub const ADMIN: &str = "admin";

/// An email in the form the service stores, looks up and compares it: trimmed, in lower case.
/// Registration, login, password reset and the `--admin` setting all use it, so that an address
/// written `" Ada@Example.com"` in one place is `ada@example.com` in every other.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The user `id` with the stored `email`, as the hook context and the user operations carry it.
///
/// Its roles come from the settings every time a user is built (at registration, at login, and
/// on every request with a bearer token), never from the client or the database: an account is
/// an admin while its email is in [`Config::admins`], and stops being one when a restart drops
/// it from the list, whatever sessions it holds.
pub fn user(id: i64, email: String, config: &Config) -> User {
    let roles = if config.admins.contains(&email) {
        vec![ADMIN.to_owned()]
    } else {
        Vec::new()
    };
    User {
        id: id.to_string(),
        email: Some(email),
        roles,
    }
}

/// The user a bearer token belongs to; `None` for an unknown token or one older than the
/// session lifetime ([`Config::session_ttl`]).
pub async fn user_for_token(
    pool: &SqlitePool,
    token: &Secret,
    config: &Config,
) -> Result<Option<User>, HookError> {
    let ttl = i64::try_from(config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "SELECT users.id, users.email FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE sessions.token_hash = ? AND sessions.created > ?",
    )
    .bind(token_hash(token))
    .bind(db::now_ms().saturating_sub(ttl))
    .fetch_optional(pool)
    .await
    .map_err(db::error)?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get(0).map_err(db::error)?;
    let email: String = row.try_get(1).map_err(db::error)?;
    Ok(Some(user(id, email, config)))
}

/// A stored account, with what login needs.
#[derive(Debug, Clone)]
pub struct StoredUser {
    /// The account's id.
    pub id: i64,
    /// The email.
    pub email: String,
    /// The PHC string of the password.
    pub password_hash: String,
}

/// The account with this email, if any.
pub async fn by_email(pool: &SqlitePool, email: &str) -> Result<Option<StoredUser>, HookError> {
    let row = sqlx::query("SELECT id, email, password_hash FROM users WHERE email = ?")
        .bind(normalise_email(email))
        .fetch_optional(pool)
        .await
        .map_err(db::error)?;
    let Some(row) = row else { return Ok(None) };
    let get = |e| db::error(e);
    Ok(Some(StoredUser {
        id: row.try_get(0).map_err(get)?,
        email: row.try_get(1).map_err(get)?,
        password_hash: row.try_get(2).map_err(get)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else() {
        let passwords = Passwords::new(PasswordCost::Minimal, 1);
        let hash = passwords.hash(Secret::new("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            passwords
                .verify(Secret::new("correct horse"), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(Secret::new("wrong horse"), hash)
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(Secret::new("x"), "not a hash".into())
                .await
                .unwrap()
        );
        passwords
            .verify_unknown(Secret::new("correct horse"))
            .await
            .unwrap();
        assert_eq!((passwords.hashes(), passwords.verifications()), (2, 4));
    }

    #[tokio::test]
    async fn past_the_waiting_bound_a_password_check_is_refused_with_503_not_queued() {
        let passwords = Passwords::new(PasswordCost::Minimal, 1);
        let hash = passwords.hash(Secret::new("correct horse")).await.unwrap();
        // The only permit held: every check waits.
        let held = Arc::clone(passwords.limiter())
            .acquire_owned()
            .await
            .unwrap();
        let mut waiting = tokio::task::JoinSet::new();
        for _ in 0..WAITING_PER_PERMIT {
            let (passwords, hash) = (passwords.clone(), hash.clone());
            waiting
                .spawn(async move { passwords.verify(Secret::new("correct horse"), hash).await });
        }
        while passwords.waiting() < WAITING_PER_PERMIT {
            tokio::task::yield_now().await;
        }
        let refused = passwords
            .verify(Secret::new("correct horse"), hash)
            .await
            .unwrap_err();
        assert_eq!((refused.status(), refused.code()), (503, "busy"));
        // Those that waited all run once the permit is back.
        drop(held);
        while let Some(done) = waiting.join_next().await {
            assert!(done.unwrap().unwrap());
        }
        assert_eq!(passwords.verifications(), WAITING_PER_PERMIT as u64);
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a.expose());
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(format!("{a}"), "***", "a token never prints");
    }
}
