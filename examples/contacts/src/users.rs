//! Users: accounts, passwords and session tokens, for the framework's user operations
//! (`hooks::ops::users::{Register, Login, Logout, PasswordReset}`), and the one user operation the
//! service adds: [`ResetPassword`], the second step of a password reset.
//!
//! Passwords and tokens travel as [`Secret`]s: they print and serialize as `***`, and are read
//! with `expose()` only where they are hashed or compared.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2s256, Digest};
use hooks::{HookError, Secret, User};
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use crate::config::PasswordCost;
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

fn argon2(cost: PasswordCost) -> Result<Argon2<'static>, HookError> {
    let params = match cost {
        PasswordCost::Standard => Params::DEFAULT,
        PasswordCost::Minimal => Params::new(Params::MIN_M_COST, 1, 1, None)
            .map_err(|e| HookError::internal(format!("argon2 parameters: {e}")))?,
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` (Argon2id, random salt) on a blocking thread; returns the PHC string.
pub async fn hash_password(password: Secret, cost: PasswordCost) -> Result<String, HookError> {
    tokio::task::spawn_blocking(move || {
        let hash = argon2(cost)?
            .hash_password(password.expose().as_bytes())
            .map_err(|e| HookError::internal(format!("cannot hash the password: {e}")))?;
        Ok(hash.to_string())
    })
    .await
    .map_err(|e| HookError::internal(format!("password hashing stopped: {e}")))?
}

/// Whether `password` matches the stored PHC string `hash` (checked on a blocking thread).
pub async fn verify_password(password: Secret, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        // The parameters stored in the hash are used, whatever `Argon2::default` says.
        Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
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

/// The user `id` as the hook context and the user operations carry it.
pub fn user(id: i64, email: String) -> User {
    User {
        id: id.to_string(),
        email: Some(email),
        roles: Vec::new(),
    }
}

/// The user a bearer token belongs to; `None` for an unknown token or one older than `ttl`.
pub async fn user_for_token(
    pool: &SqlitePool,
    token: &Secret,
    ttl: std::time::Duration,
) -> Result<Option<User>, HookError> {
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
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
    Ok(Some(user(id, email)))
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
    /// Failed logins in a row.
    pub failed_logins: i64,
    /// Locked until this time (ms since the epoch), if locked.
    pub locked_until: Option<i64>,
}

/// The account with this email, if any.
pub async fn by_email(pool: &SqlitePool, email: &str) -> Result<Option<StoredUser>, HookError> {
    let row = sqlx::query(
        "SELECT id, email, password_hash, failed_logins, locked_until FROM users WHERE email = ?",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(pool)
    .await
    .map_err(db::error)?;
    let Some(row) = row else { return Ok(None) };
    let get = |e| db::error(e);
    Ok(Some(StoredUser {
        id: row.try_get(0).map_err(get)?,
        email: row.try_get(1).map_err(get)?,
        password_hash: row.try_get(2).map_err(get)?,
        failed_logins: row.try_get(3).map_err(get)?,
        locked_until: row.try_get(4).map_err(get)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password(Secret::new("correct horse"), PasswordCost::Minimal)
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Secret::new("correct horse"), hash.clone()).await);
        assert!(!verify_password(Secret::new("wrong horse"), hash).await);
        assert!(!verify_password(Secret::new("x"), "not a hash".into()).await);
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
