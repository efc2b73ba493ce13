//! Users: accounts, passwords, session tokens, and the user operations the service runs through
//! the hooks runtime ([`Register`], [`Login`], [`Logout`], [`RequestPasswordReset`],
//! [`ResetPassword`]).
//!
//! The framework's standard catalog has no user operations yet, so they are declared here by
//! implementing [`Operation`]; their hook handlers are plain functions called by the endpoints
//! until attributes for them exist (issue 3).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2s256, Digest};
use hooks::{HookError, Operation, User};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use crate::config::PasswordCost;
use crate::db;

/// What a client sends to register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewUser {
    /// The email, which is also the login.
    pub email: String,
    /// The password, in clear (hashed before it is stored).
    pub password: String,
    /// The display name.
    pub name: String,
}

/// What a client sends to log in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Credentials {
    /// The email.
    pub email: String,
    /// The password.
    pub password: String,
}

/// An account as clients see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user's id.
    pub id: i64,
    /// The email.
    pub email: String,
    /// The display name.
    pub name: String,
    /// When the account was created, in ms since the epoch.
    pub created: i64,
}

/// A new session: the bearer token to send as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The token; the service keeps only its hash.
    pub token: String,
    /// Whose session it is.
    pub user: Account,
}

/// A request to reset a password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email.
    pub email: String,
}

/// A new password, with the token of a reset request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewPassword {
    /// The token the reset message carried.
    pub token: String,
    /// The new password, in clear (hashed before it is stored).
    pub password: String,
}

/// How long a password reset token stays valid.
pub const RESET_TTL: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// The session a logout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The hash of the session's token.
    pub token_hash: String,
}

macro_rules! user_op {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $input:ty, $output:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl Operation for $ty {
            type Input = $input;
            type Output = $output;
            const NAME: &'static str = $name;
            const ASSET: &'static str = "User";
        }
    };
}

user_op!(
    /// `users.register`: before handlers see the [`NewUser`], after handlers the [`Account`].
    Register, "users.register", NewUser, Account
);
user_op!(
    /// `users.login`: before handlers see the [`Credentials`], after handlers the [`Session`]
    /// (or the error: a failed login is something a login policy wants to count).
    Login, "users.login", Credentials, Session
);
user_op!(
    /// `users.logout`: ends the session of the token the call was made with.
    Logout, "users.logout", SessionKey, ()
);
user_op!(
    /// `users.password_reset`: asks for a reset link; always answers the same, so nobody can
    /// learn which emails have accounts.
    RequestPasswordReset, "users.password_reset", ResetRequest, ()
);

user_op!(
    /// `users.password_reset_confirm`: sets a new password with a reset token; unlocks the
    /// account and ends its sessions.
    ResetPassword, "users.password_reset_confirm", NewPassword, ()
);

fn argon2(cost: PasswordCost) -> Result<Argon2<'static>, HookError> {
    let params = match cost {
        PasswordCost::Standard => Params::DEFAULT,
        PasswordCost::Minimal => Params::new(Params::MIN_M_COST, 1, 1, None)
            .map_err(|e| HookError::internal(format!("argon2 parameters: {e}")))?,
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` (Argon2id, random salt) on a blocking thread; returns the PHC string.
pub async fn hash_password(password: String, cost: PasswordCost) -> Result<String, HookError> {
    tokio::task::spawn_blocking(move || {
        let hash = argon2(cost)?
            .hash_password(password.as_bytes())
            .map_err(|e| HookError::internal(format!("cannot hash the password: {e}")))?;
        Ok(hash.to_string())
    })
    .await
    .map_err(|e| HookError::internal(format!("password hashing stopped: {e}")))?
}

/// Whether `password` matches the stored PHC string `hash` (checked on a blocking thread).
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        // The parameters stored in the hash are used, whatever `Argon2::default` says.
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
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
pub fn new_token() -> Result<String, HookError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| HookError::internal(format!("no randomness for a token: {e}")))?;
    Ok(hex(&bytes))
}

/// The hash a token is stored under.
pub fn token_hash(token: &str) -> String {
    hex(&Blake2s256::digest(token.as_bytes()))
}

/// The user a bearer token belongs to, with the token's hash; `None` for an unknown token or one
/// older than `ttl`.
pub async fn user_for_token(
    pool: &SqlitePool,
    token: &str,
    ttl: std::time::Duration,
) -> Result<Option<(User, SessionKey)>, HookError> {
    let hash = token_hash(token);
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let row = sqlx::query(
        "SELECT users.id, users.email FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE sessions.token_hash = ? AND sessions.created > ?",
    )
    .bind(&hash)
    .bind(db::now_ms().saturating_sub(ttl))
    .fetch_optional(pool)
    .await
    .map_err(db::error)?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.try_get(0).map_err(db::error)?;
    let email: String = row.try_get(1).map_err(db::error)?;
    let user = User {
        id: id.to_string(),
        email: Some(email),
        roles: Vec::new(),
    };
    Ok(Some((user, SessionKey { token_hash: hash })))
}

/// A stored account, with what login needs.
#[derive(Debug, Clone)]
pub struct StoredUser {
    /// The account.
    pub account: Account,
    /// The PHC string of the password.
    pub password_hash: String,
    /// Failed logins in a row.
    pub failed_logins: i64,
    /// Locked until this time (ms since the epoch), if locked.
    pub locked_until: Option<i64>,
}

/// The account with this email, if any.
pub async fn by_email(pool: &SqlitePool, email: &str) -> Result<Option<StoredUser>, HookError> {
    let row = sqlx::query(
        "SELECT id, email, name, created, password_hash, failed_logins, locked_until \
         FROM users WHERE email = ?",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await
    .map_err(db::error)?;
    let Some(row) = row else { return Ok(None) };
    let get = |e| db::error(e);
    Ok(Some(StoredUser {
        account: Account {
            id: row.try_get(0).map_err(get)?,
            email: row.try_get(1).map_err(get)?,
            name: row.try_get(2).map_err(get)?,
            created: row.try_get(3).map_err(get)?,
        },
        password_hash: row.try_get(4).map_err(get)?,
        failed_logins: row.try_get(5).map_err(get)?,
        locked_until: row.try_get(6).map_err(get)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse".into(), PasswordCost::Minimal)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), hash.clone()).await);
        assert!(!verify_password("wrong horse".into(), hash).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
