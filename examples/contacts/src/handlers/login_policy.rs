//! Use case: **enforcing a login policy.** Addresses at a banned domain may not register, and an
//! account is locked for a while after too many failed logins in a row (`--max-failed-logins`,
//! `--lockout-secs`): while locked, even the right password is refused.
//!
//! The lock-out is a pair of handlers around one login call. The before handler
//! [`reject_locked_account`] normalises the login, refuses a locked account, and leaves the
//! attempt in the call's per-call state (`ctx.set_state`); the after handler
//! [`count_failed_logins`] reads it back (`ctx.state`) and counts the outcome, because only the
//! result says whether the password was right. It takes the whole `Result`, so it runs on failed
//! logins too. Its writes go straight to the pool, not to the call's unit of work: a failed login
//! ends in an error, which rolls the unit of work back, and the count must stay.

use hooks::prelude::*;

use crate::db::{self, now_ms};
use crate::handlers::app;
use crate::users;

/// The code of the error a locked account gets.
pub const ACCOUNT_LOCKED: &str = "account_locked";
/// The code of the error a wrong email or password gets (set by the login itself).
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";

/// Addresses at a banned domain may not register.
#[before_register]
pub fn reject_banned_domain(user: &NewUser, ctx: &Context) -> Result<(), HookError> {
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

/// A locked account cannot log in, even with the right password.
#[before_login]
pub async fn reject_locked_account(
    credentials: &mut Credentials,
    ctx: &Context,
) -> Result<(), HookError> {
    credentials.login = credentials.login.trim().to_lowercase();
    ctx.set_state(LoginAttempt {
        email: credentials.login.clone(),
    });
    let stored = users::by_email(&app(ctx)?.pool, &credentials.login).await?;
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

/// Count failed logins in a row; lock the account when there are too many.
#[after_login]
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
    use hooks::testing::Chain;

    #[tokio::test]
    async fn a_banned_domain_cannot_register() {
        let app = testing::app(Config {
            banned_domains: vec!["spam.example".into()],
            ..Config::for_tests()
        })
        .await;
        let (ctx, _) = testing::ctx(&app, None);
        let mut user = NewUser {
            email: "eve@SPAM.example".into(),
            password: Secret::new("long enough"),
            fields: Default::default(),
        };
        let err = reject_banned_domain(&user, &ctx).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "banned_domain"));
        user.email = "ada@example.com".into();
        assert!(reject_banned_domain(&user, &ctx).is_ok());
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
        // Both handlers, through the runtime: the before handler's state reaches the after
        // handler of the same call; the default stands in for a wrong password.
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        let attempt = || async {
            let (mut ctx, _) = testing::ctx(&app, None);
            let credentials = Credentials {
                login: " A@X.io".into(),
                password: Secret::new("wrong"),
            };
            chain
                .run(&mut ctx, credentials, |c| async move {
                    assert_eq!(c.login, "a@x.io", "the before handler normalised it");
                    Err(HookError::new(401, INVALID_CREDENTIALS, "wrong"))
                })
                .await
        };
        assert_eq!(attempt().await.unwrap_err().code(), INVALID_CREDENTIALS);
        assert_eq!(attempt().await.unwrap_err().code(), INVALID_CREDENTIALS);
        let err = attempt().await.unwrap_err();
        assert_eq!((err.status(), err.code()), (403, ACCOUNT_LOCKED));
        let lines = chain.ran_lines();
        assert_eq!(
            lines[lines.len() - 2..],
            [
                "contacts::handlers::login_policy::reject_locked_account rejected",
                "contacts::handlers::login_policy::count_failed_logins done",
            ]
        );
    }
}
