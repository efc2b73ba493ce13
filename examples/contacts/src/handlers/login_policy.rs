//! Use case: **enforcing a login policy.** Addresses at a banned domain may not register, and a
//! login is locked for a while after too many failed tries in a row (`--max-failed-logins`,
//! `--lockout-secs`): while locked, even the right password is refused.
//!
//! The tries are counted per normalised email, whether or not an account has it (the
//! `login_failures` table, not the account): an unknown address locks after the same failures
//! and answers the same 403 as a real one, so the lock-out does not tell which addresses have
//! accounts. A failure older than the lock-out period is forgotten, and its row deleted, so
//! tries at random addresses do not pile up.
//!
//! The lock-out is a pair of handlers around one login call. The before handler
//! [`reject_locked_account`] normalises the login and, in one atomic upsert, refuses a locked
//! email or counts the attempt *before* the password is checked: each attempt takes one of the
//! allowed tries, and the one that takes the last try locks the email there and then. So
//! however many attempts arrive at once, no more passwords are checked than tries are allowed
//! (counting after the check, as an after handler alone can, lets every attempt of a burst
//! through before the first count lands). It leaves the attempt in the call's per-call state
//! (`ctx.set_state`); the after handler [`count_failed_logins`] reads it back (`ctx.state`): a
//! successful login forgets the tries and the lock, unless other tries came in meanwhile; a
//! failed one stays counted. Its writes go
//! straight to the pool, not to the call's unit of work: a failed login ends in an error, which
//! rolls the unit of work back, and the count must stay.

use hooks::prelude::*;

use crate::db::{self, echo, now_ms};
use crate::handlers::app;
use crate::handlers::validation::MAX_EMAIL;
use crate::users::normalise_email;

/// The code of the error a locked account gets.
pub const ACCOUNT_LOCKED: &str = "account_locked";
/// The code of the error a wrong email or password gets (set by the login itself).
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";

/// Whether `domain` is `banned` or one of its subdomains (`a.spam.example` for `spam.example`).
/// Both are compared in lower case, without a trailing dot.
pub fn is_banned(domain: &str, banned: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    let banned = banned.trim().trim_end_matches('.').to_lowercase();
    !banned.is_empty()
        && (domain == banned
            || domain
                .strip_suffix(banned.as_str())
                .is_some_and(|sub| sub.ends_with('.')))
}

/// Addresses at a banned domain, or at any of its subdomains, may not register.
#[before_register]
pub fn reject_banned_domain(user: &NewUser, ctx: &Context) -> Result<(), HookError> {
    let banned = &app(ctx)?.config.banned_domains;
    let domain = user
        .email
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_lowercase())
        .unwrap_or_default();
    if banned.iter().any(|b| is_banned(&domain, b)) {
        return Err(HookError::new(
            403,
            "banned_domain",
            format!("addresses at {} may not register", echo(&domain)),
        ));
    }
    Ok(())
}

/// A login attempt that took one of its email's tries: left by [`reject_locked_account`] for
/// [`count_failed_logins`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The normalised email.
    pub email: String,
    /// The email's tries counted with this one.
    pub tries: i64,
    /// Whether this attempt took the last try (and locked the email unless it succeeds).
    pub last_try: bool,
}

fn locked() -> HookError {
    HookError::new(
        403,
        ACCOUNT_LOCKED,
        "too many failed logins: this account is locked for a while",
    )
}

/// A locked email cannot log in, even with the right password; an attempt on an open one takes
/// one of its tries before its password is checked, atomically. Alike for every email, whether
/// an account has it or not.
#[before_login]
pub async fn reject_locked_account(
    credentials: &mut Credentials,
    ctx: &Context,
) -> Result<(), HookError> {
    credentials.login = normalise_email(&credentials.login);
    if credentials.login.len() > MAX_EMAIL {
        // No account has an address this long (registration refuses one), so there is nothing
        // to lock, and no row is kept for it: the login fails as for any unknown address.
        return Ok(());
    }
    let app = app(ctx)?;
    let now = now_ms();
    let max = i64::from(app.config.max_failed_logins);
    let lockout = i64::try_from(app.config.lockout.as_millis()).unwrap_or(i64::MAX);
    let forgotten = now.saturating_sub(lockout);
    // Tries older than the lock-out period are forgotten: their rows go (never a lock still in
    // force, whatever the period was when it was set).
    sqlx::query(
        "DELETE FROM login_failures WHERE last_failure <= ? \
         AND (locked_until IS NULL OR locked_until <= ?)",
    )
    .bind(forgotten)
    .bind(now)
    .execute(&app.pool)
    .await
    .map_err(db::error)?;
    // One statement, so SQLite runs it for one attempt at a time: the email is open (never
    // locked, or its lock is over, which starts the count afresh, as does a last failure older
    // than the lock-out period), and this attempt takes a try; the try that reaches the limit
    // sets the lock at once, so that no later attempt gets one. A locked email's row is left
    // as it is, and returns nothing.
    let tries: Option<i64> = sqlx::query_scalar(
        "INSERT INTO login_failures (email, failures, last_failure, locked_until) \
         VALUES (?, 1, ?, CASE WHEN 1 >= ? THEN ? END) \
         ON CONFLICT (email) DO UPDATE SET \
           failures = CASE WHEN locked_until <= ? OR last_failure <= ? THEN 1 \
             ELSE failures + 1 END, \
           locked_until = CASE \
             WHEN (CASE WHEN locked_until <= ? OR last_failure <= ? THEN 1 \
               ELSE failures + 1 END) >= ? THEN ? \
             ELSE NULL END, \
           last_failure = ? \
         WHERE locked_until IS NULL OR locked_until <= ? \
         RETURNING failures",
    )
    .bind(&credentials.login)
    .bind(now)
    .bind(max)
    .bind(now.saturating_add(lockout))
    .bind(now)
    .bind(forgotten)
    .bind(now)
    .bind(forgotten)
    .bind(max)
    .bind(now.saturating_add(lockout))
    .bind(now)
    .bind(now)
    .fetch_optional(&app.pool)
    .await
    .map_err(db::error)?;
    let Some(tries) = tries else {
        return Err(locked());
    };
    ctx.set_state(LoginAttempt {
        email: credentials.login.clone(),
        tries,
        last_try: tries >= max,
    });
    Ok(())
}

/// Forget the failed logins after a successful one, unless other tries were counted while its
/// password was checked; a failed login stays counted, and is logged when it locked the email,
/// but one answered 503 `busy`, which checked no wrong password, gives its try back.
///
/// A success amid a burst of tries (someone guessing while the owner logs in) leaves the
/// burst's tries counted and its lock in force: forgetting them would give the burst its tries
/// again, and more passwords would be checked than the limit allows.
#[after_login]
pub async fn count_failed_logins(
    result: &mut Result<Session, HookError>,
    ctx: &Context,
) -> Result<(), HookError> {
    let Some(attempt) = ctx.state::<LoginAttempt>() else {
        return Ok(());
    };
    match result {
        Ok(_) => {
            sqlx::query("DELETE FROM login_failures WHERE email = ? AND failures = ?")
                .bind(&attempt.email)
                .bind(attempt.tries)
                .execute(&app(ctx)?.pool)
                .await
                .map_err(db::error)?;
        }
        Err(e) if e.code() == INVALID_CREDENTIALS && attempt.last_try => {
            tracing::warn!(email = ?echo(&attempt.email), "login locked after failed tries");
        }
        // A busy service checked no wrong password (the hashing queue was full, or the database
        // was: either before the check or after a right password): the try is given back, and
        // the lock it set, if it was the last, lifted. Best effort: the database may be busy
        // still, and the answer is a 503 either way.
        Err(e) if e.status() == 503 && e.code() == "busy" => {
            let given_back = sqlx::query(
                "UPDATE login_failures SET failures = failures - 1, \
                   locked_until = CASE WHEN ? AND failures = ? THEN NULL ELSE locked_until END \
                 WHERE email = ? AND failures > 0",
            )
            .bind(attempt.last_try)
            .bind(attempt.tries)
            .bind(&attempt.email)
            .execute(&app(ctx)?.pool)
            .await;
            if let Err(e) = given_back {
                tracing::warn!(error = %e, "a busy login's try could not be given back");
            }
        }
        // Counted already, by the before handler: any other failure is a failure, whatever its
        // cause.
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
        user.email = "eve@mail.spam.example".into();
        assert_eq!(
            reject_banned_domain(&user, &ctx).unwrap_err().code(),
            "banned_domain"
        );
        // A long subdomain is named short.
        user.email = format!("eve@{}.spam.example", "x".repeat(200));
        let err = reject_banned_domain(&user, &ctx).unwrap_err();
        assert_eq!(err.code(), "banned_domain");
        assert!(err.message().len() < 100, "{err}");
        user.email = "ada@example.com".into();
        assert!(reject_banned_domain(&user, &ctx).is_ok());
        user.email = "ada@notspam.example".into();
        assert!(reject_banned_domain(&user, &ctx).is_ok());
    }

    #[test]
    fn a_banned_domain_covers_its_subdomains_and_nothing_else() {
        assert!(is_banned("spam.example", "spam.example"));
        assert!(is_banned("a.b.SPAM.example.", "spam.example"));
        assert!(!is_banned("notspam.example", "spam.example"));
        assert!(!is_banned("spam.example.org", "spam.example"));
        assert!(!is_banned("example", "spam.example"));
        assert!(
            !is_banned("spam.example", ""),
            "an empty entry bans nothing"
        );
    }

    /// A login chain's attempt at `a@x.io` with a wrong password.
    async fn wrong_login(app: &crate::App, chain: &Chain<ops::users::Login>) -> HookError {
        wrong_login_at(app, chain, "a@x.io").await
    }

    #[tokio::test]
    async fn a_lock_that_is_over_gives_the_allowed_tries_again() {
        let app = testing::app(Config {
            max_failed_logins: 2,
            lockout: std::time::Duration::ZERO,
            ..Config::for_tests()
        })
        .await;
        sqlx::query(
            "INSERT INTO users (email, name, password_hash, created) VALUES ('a@x.io', 'A', '', 0)",
        )
        .execute(&app.pool)
        .await
        .unwrap();
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        for _ in 0..5 {
            assert_eq!(wrong_login(&app, &chain).await.code(), INVALID_CREDENTIALS);
        }
        let tries: i64 = sqlx::query_scalar("SELECT failures FROM login_failures")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert!((1..=2).contains(&tries), "{tries}");
    }

    /// A login chain's attempt at `email` with a wrong password.
    async fn wrong_login_at(
        app: &crate::App,
        chain: &Chain<ops::users::Login>,
        email: &str,
    ) -> HookError {
        let (mut ctx, _) = testing::ctx(app, None);
        let credentials = Credentials {
            login: email.into(),
            password: Secret::new("wrong"),
        };
        chain
            .run(&mut ctx, credentials, |_| async {
                Err(HookError::new(401, INVALID_CREDENTIALS, "wrong"))
            })
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_login_answered_503_busy_gives_its_try_back() {
        let app = testing::app(Config {
            max_failed_logins: 2,
            ..Config::for_tests()
        })
        .await;
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        for _ in 0..5 {
            let (mut ctx, _) = testing::ctx(&app, None);
            let credentials = Credentials {
                login: "a@x.io".into(),
                password: Secret::new("whatever"),
            };
            let err = chain
                .run(&mut ctx, credentials, |_| async { Err(db::busy()) })
                .await
                .unwrap_err();
            assert_eq!((err.status(), err.code()), (503, "busy"));
        }
        // Five busy answers later, the allowed tries are all there.
        assert_eq!(wrong_login(&app, &chain).await.code(), INVALID_CREDENTIALS);
        assert_eq!(wrong_login(&app, &chain).await.code(), INVALID_CREDENTIALS);
        assert_eq!(wrong_login(&app, &chain).await.code(), ACCOUNT_LOCKED);
    }

    #[tokio::test]
    async fn an_email_without_an_account_locks_after_the_same_failures_as_one_with() {
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
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        for email in ["a@x.io", "nobody@x.io"] {
            let codes: Vec<(u16, String)> = {
                let mut codes = Vec::new();
                for _ in 0..3 {
                    let err = wrong_login_at(&app, &chain, email).await;
                    codes.push((err.status(), err.code().to_owned()));
                }
                codes
            };
            assert_eq!(
                codes,
                [
                    (401, INVALID_CREDENTIALS.to_owned()),
                    (401, INVALID_CREDENTIALS.to_owned()),
                    (403, ACCOUNT_LOCKED.to_owned()),
                ],
                "{email}"
            );
        }
    }

    #[tokio::test]
    async fn a_success_forgets_the_failed_tries_unless_others_came_in_meanwhile() {
        let app = testing::app(Config::for_tests()).await;
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        let failures = || async {
            sqlx::query_scalar::<_, i64>("SELECT failures FROM login_failures")
                .fetch_optional(&app.pool)
                .await
                .unwrap()
        };
        let right = || Credentials {
            login: "a@x.io".into(),
            password: Secret::new("right"),
        };
        let session = || Session {
            user: User::new("1"),
            token: Secret::new("token"),
        };
        wrong_login_at(&app, &chain, "a@x.io").await;
        let (mut ctx, _) = testing::ctx(&app, None);
        let ok = chain
            .run(&mut ctx, right(), |_| async { Ok(session()) })
            .await;
        assert!(ok.is_ok());
        assert_eq!(failures().await, None, "forgotten after a success");

        wrong_login_at(&app, &chain, "a@x.io").await;
        let (mut ctx, _) = testing::ctx(&app, None);
        let ok = chain
            .run(&mut ctx, right(), |_| async {
                // Someone else's wrong try lands while this password is checked.
                wrong_login_at(&app, &chain, "a@x.io").await;
                Ok(session())
            })
            .await;
        assert!(ok.is_ok());
        assert_eq!(
            failures().await,
            Some(3),
            "the other try, and those before, stay"
        );
    }

    #[tokio::test]
    async fn failures_older_than_the_lockout_are_forgotten_and_their_rows_deleted() {
        let app = testing::app(Config {
            max_failed_logins: 2,
            ..Config::for_tests()
        })
        .await;
        let long_ago = now_ms() - 2 * i64::try_from(app.config.lockout.as_millis()).unwrap();
        for email in ["a@x.io", "stale@x.io"] {
            sqlx::query(
                "INSERT INTO login_failures (email, failures, last_failure) VALUES (?, 1, ?)",
            )
            .bind(email)
            .bind(long_ago)
            .execute(&app.pool)
            .await
            .unwrap();
        }
        let chain =
            Chain::<ops::users::Login>::only(&["reject_locked_account", "count_failed_logins"]);
        // One failure a lock-out period ago and one now are not two in a row.
        let err = wrong_login_at(&app, &chain, "a@x.io").await;
        assert_eq!(err.code(), INVALID_CREDENTIALS);
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT email, failures FROM login_failures ORDER BY email")
                .fetch_all(&app.pool)
                .await
                .unwrap();
        assert_eq!(rows, [("a@x.io".to_owned(), 1)], "the stale row is gone");
        // An address too long for any account keeps no row at all.
        let long = format!("{}@x.io", "a".repeat(MAX_EMAIL));
        assert_eq!(
            wrong_login_at(&app, &chain, &long).await.code(),
            INVALID_CREDENTIALS
        );
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(rows, 1);
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
