//! Use case: **enforcing a login policy.** Addresses at a banned domain may not register, and an
//! account is locked for a while after too many failed logins in a row (`--max-failed-logins`,
//! `--lockout-secs`): while locked, even the right password is refused.
//!
//! The failed-login counter is an after handler of login, because only the result says whether
//! the password was right; it learns which account the attempt was for from the per-call state
//! that the before handler [`reject_locked_account`] leaves.
//!
//! The framework has no attributes for user operations yet (issue 3): `api::users` calls these
//! functions around `Hooks::run`, in the order the dispatcher would.

use hooks::prelude::*;

use crate::db::{self, now_ms};
use crate::handlers::app;
use crate::users::{self, Credentials, NewUser, Session};

/// The code of the error a locked account gets.
pub const ACCOUNT_LOCKED: &str = "account_locked";
/// The code of the error a wrong email or password gets (set by the login itself).
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";

// TODO(issue 3): switch to #[before_register("User")]; until then `api::users` calls it.
/// Addresses at a banned domain may not register.
pub fn reject_banned_domain(user: &mut NewUser, ctx: &Context) -> Result<(), HookError> {
    let banned = &app(ctx)?.config.banned_domains;
    let domain = user
        .email
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_lowercase())
        .unwrap_or_default();
    if banned.contains(&domain) {
        return Err(HookError::new(
            403,
            "banned_domain",
            format!("addresses at {domain} may not register"),
        ));
    }
    Ok(())
}

/// Which account a login is for: left by [`reject_locked_account`] for [`count_failed_logins`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The normalised email.
    pub email: String,
}

// TODO(issue 3): switch to #[before_login("User")]; until then `api::users` calls it.
/// A locked account cannot log in, even with the right password.
pub async fn reject_locked_account(
    credentials: &mut Credentials,
    ctx: &Context,
) -> Result<(), HookError> {
    credentials.email = credentials.email.trim().to_lowercase();
    ctx.set_state(LoginAttempt {
        email: credentials.email.clone(),
    });
    let stored = users::by_email(&app(ctx)?.pool, &credentials.email).await?;
    if stored
        .and_then(|u| u.locked_until)
        .is_some_and(|until| until > now_ms())
    {
        return Err(HookError::new(
            403,
            ACCOUNT_LOCKED,
            "too many failed logins: this account is locked for a while",
        ));
    }
    Ok(())
}

// TODO(issue 3): switch to #[after_login("User")]; until then `api::users` calls it.
/// Count failed logins in a row; lock the account when there are too many.
pub async fn count_failed_logins(
    result: &mut Result<Session, HookError>,
    ctx: &Context,
) -> Result<(), HookError> {
    let Some(attempt) = ctx.state::<LoginAttempt>() else {
        return Ok(());
    };
    let app = app(ctx)?;
    match result {
        Ok(_) => {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE email = ?")
                .bind(&attempt.email)
                .execute(&app.pool)
                .await
                .map_err(db::error)?;
        }
        Err(e) if e.code() == INVALID_CREDENTIALS => {
            let failed: Option<i64> = sqlx::query_scalar(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE email = ? \
                 RETURNING failed_logins",
            )
            .bind(&attempt.email)
            .fetch_optional(&app.pool)
            .await
            .map_err(db::error)?;
            if failed.is_some_and(|n| n >= i64::from(app.config.max_failed_logins)) {
                let lockout = i64::try_from(app.config.lockout.as_millis()).unwrap_or(i64::MAX);
                sqlx::query("UPDATE users SET failed_logins = 0, locked_until = ? WHERE email = ?")
                    .bind(now_ms().saturating_add(lockout))
                    .bind(&attempt.email)
                    .execute(&app.pool)
                    .await
                    .map_err(db::error)?;
                tracing::warn!(email = %attempt.email, "account locked after failed logins");
            }
        }
        Err(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;

    #[tokio::test]
    async fn a_banned_domain_cannot_register() {
        let app = testing::app(Config {
            banned_domains: vec!["spam.example".into()],
            ..Config::for_tests()
        })
        .await;
        let (ctx, _) = testing::ctx(&app, None);
        let mut user = NewUser {
            email: "eve@spam.example".into(),
            ..NewUser::default()
        };
        let err = reject_banned_domain(&mut user, &ctx).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "banned_domain"));
        user.email = "ada@example.com".into();
        assert!(reject_banned_domain(&mut user, &ctx).is_ok());
    }

    #[tokio::test]
    async fn an_account_locks_after_the_allowed_failed_logins_in_a_row() {
        let app = testing::app(Config {
            max_failed_logins: 2,
            ..Config::for_tests()
        })
        .await;
        sqlx::query(
            "INSERT INTO users (email, name, password_hash, created) VALUES ('a@x.io', 'A', '', 0)",
        )
        .execute(&app.pool)
        .await
        .unwrap();
        let attempt = || async {
            let (ctx, _) = testing::ctx(&app, None);
            let mut credentials = Credentials {
                email: " A@X.io".into(),
                password: "wrong".into(),
            };
            reject_locked_account(&mut credentials, &ctx).await?;
            let mut result = Err(HookError::new(401, INVALID_CREDENTIALS, "wrong"));
            count_failed_logins(&mut result, &ctx).await?;
            Ok::<_, HookError>(())
        };
        attempt().await.unwrap();
        attempt().await.unwrap();
        let err = attempt().await.unwrap_err();
        assert_eq!((err.status(), err.code()), (403, ACCOUNT_LOCKED));
    }
}
