//! What an adversarial client tried against the user API, one test per rule: parallel logins
//! against the lock-out, hashing as a denial of service, account enumeration by timing, banned
//! domains slipped past with hidden characters or subdomains, and a reset request without an
//! email. End to end, over real HTTP, like `e2e.rs`.

mod support;

use std::future::Future;
use std::time::Duration;

use contacts::Service;
use serde_json::{Value, json};
use support::{Client, PATIENCE, column, count, start, start_with};
use tokio::task::JoinSet;

/// Send every request of `bodies` to `path` at once; the answers, in no particular order.
async fn all_at_once(client: &Client, path: &'static str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let mut calls = JoinSet::new();
    for body in bodies {
        let client = client.clone();
        calls.spawn(async move { client.post(path, body).await });
    }
    let mut answers = Vec::new();
    while let Some(answer) = calls.join_next().await {
        answers.push(answer.expect("a request task ends"));
    }
    answers
}

/// How many of `answers` have this status.
fn with_status(answers: &[(u16, Value)], status: u16) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

/// The number of accounts.
async fn users(service: &Service) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&service.app().pool)
        .await
        .expect("the count runs")
}

/// Wait until `done` says so, failing the test if that takes longer than [`PATIENCE`]; the bound
/// only keeps a failure from hanging, nothing is asserted about time.
async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    tokio::time::timeout(PATIENCE, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("gave up waiting for {what}"));
}

fn login(email: &str, password: &str) -> Value {
    json!({ "email": email, "password": password })
}

fn registration(email: &str, name: &str) -> Value {
    json!({ "email": email, "password": "long enough", "name": name })
}

// --- the lock-out holds under parallel logins ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_check_the_password_no_more_than_the_allowed_failures() {
    let run = start().await;
    let max = run.service.app().config.max_failed_logins as usize;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let checks_before = run.service.app().passwords.verifications();

    let answers = all_at_once(
        &anon,
        "/users/login",
        vec![login("ada@example.com", "wrong"); 40],
    )
    .await;

    assert_eq!(with_status(&answers, 401), max, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 401) {
        assert_eq!(
            (*status, body["code"].as_str()),
            (403, Some("account_locked"))
        );
    }
    let checks = run.service.app().passwords.verifications() - checks_before;
    assert_eq!(checks, max as u64, "password checks");
    // And the account is locked now, for the right password too.
    let (status, body) = anon
        .post("/users/login", login("ada@example.com", "correct horse"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_locked"))
    );
}

#[tokio::test]
async fn the_lockout_answers_alike_whether_or_not_an_account_has_the_email() {
    let run = start_with(|c| c.max_failed_logins = 3).await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let mut answers = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let mut these = Vec::new();
        for _ in 0..5 {
            these.push(anon.post("/users/login", login(email, "wrong")).await);
        }
        answers.push(these);
    }
    assert_eq!(
        answers[0], answers[1],
        "a real account and an unknown email"
    );
    let statuses: Vec<u16> = answers[1].iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [401, 401, 401, 403, 403]);
    assert_eq!(answers[1][3].1["code"], "account_locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_right_password_among_parallel_wrong_ones_gets_no_more_than_the_allowed_tries() {
    let run = start().await;
    let max = run.service.app().config.max_failed_logins as usize;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let checks_before = run.service.app().passwords.verifications();

    let mut bodies = vec![login("ada@example.com", "wrong"); 30];
    bodies.insert(15, login("ada@example.com", "correct horse"));
    let answers = all_at_once(&anon, "/users/login", bodies).await;

    // Only an attempt whose password was checked answers 401 or 200; the rest are refused
    // unchecked. The right password wins only if it is among the allowed tries.
    let checked = with_status(&answers, 401) + with_status(&answers, 200);
    assert!(checked <= max, "{checked} password checks: {answers:?}");
    assert_eq!(
        with_status(&answers, 403),
        answers.len() - checked,
        "{answers:?}"
    );
    let checks = run.service.app().passwords.verifications() - checks_before;
    assert_eq!(checks, checked as u64, "password checks");
}

// --- hashing cannot be used to exhaust the server ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registering_a_taken_email_is_refused_before_any_password_is_hashed() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let hashes_before = run.service.app().passwords.hashes();

    let answers = all_at_once(
        &anon,
        "/users/register",
        vec![registration("ADA@example.com", "Ada"); 30],
    )
    .await;

    assert_eq!(with_status(&answers, 409), 30, "{answers:?}");
    assert_eq!(run.service.app().passwords.hashes(), hashes_before);
    assert_eq!(users(&run.service).await, 1);
}

#[tokio::test]
async fn a_reset_confirm_with_a_bad_token_is_refused_before_the_password_is_hashed() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let hashes_before = run.service.app().passwords.hashes();
    let (status, body) = anon
        .post(
            "/users/password-reset/confirm",
            json!({ "token": "0".repeat(64), "password": "new and long" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reset_token"))
    );
    assert_eq!(run.service.app().passwords.hashes(), hashes_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_more_password_hashes_run_at_once_than_there_are_permits() {
    let run = start().await;
    let passwords = run.service.app().passwords.clone();
    assert!(passwords.permits() >= 1);
    // Take every permit, as if that many hashes were running: the registrations must queue.
    let held = std::sync::Arc::clone(passwords.limiter())
        .acquire_many_owned(passwords.permits() as u32)
        .await
        .expect("the permits");
    let hashes_before = passwords.hashes();
    let anon = Client::new(&run.service);
    let mut calls = JoinSet::new();
    for i in 0..10 {
        let anon = anon.clone();
        calls.spawn(async move {
            anon.post(
                "/users/register",
                registration(&format!("user{i}@example.com"), "User"),
            )
            .await
        });
    }
    until("10 registrations waiting for a permit", || {
        let waiting = passwords.waiting();
        async move { waiting == 10 }
    })
    .await;
    assert_eq!(
        passwords.hashes(),
        hashes_before,
        "no hash ran without a permit"
    );

    drop(held);
    while let Some(answer) = calls.join_next().await {
        let (status, body) = answer.expect("a request task ends");
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(passwords.hashes(), hashes_before + 10);
    assert_eq!(passwords.waiting(), 0);
}

// --- no account enumeration by timing ------------------------------------------------------

#[tokio::test]
async fn a_login_for_an_unknown_email_checks_a_password_hash_like_one_for_a_real_account() {
    let run = start().await;
    let passwords = run.service.app().passwords.clone();
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;

    let checks = passwords.verifications();
    let known = anon
        .post("/users/login", login("ada@example.com", "wrong"))
        .await;
    assert_eq!(passwords.verifications(), checks + 1, "a real account");

    let checks = passwords.verifications();
    let unknown = anon
        .post("/users/login", login("nobody@example.com", "wrong"))
        .await;
    assert_eq!(passwords.verifications(), checks + 1, "an unknown email");

    assert_eq!(known.0, 401);
    assert_eq!(known, unknown, "the answers are alike too");
}

// --- banned domains cannot be slipped past -------------------------------------------------

#[tokio::test]
async fn an_email_with_a_control_or_hidden_character_is_rejected() {
    let run = start().await;
    let anon = Client::new(&run.service);
    for email in [
        "y@mailinator.com\u{0}",
        "y@mailinator.com\u{7f}",
        "y\u{1b}@example.com",
        "y@mailinator.com\u{200b}",
        "y@mailinator\u{ff0e}com",
        "y@\u{ff4d}ailinator.com",
    ] {
        let (status, body) = anon.post("/users/register", registration(email, "Y")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_email")),
            "{email:?}: {body}"
        );
    }
    assert_eq!(users(&run.service).await, 0);
}

#[tokio::test]
async fn a_subdomain_of_a_banned_domain_is_banned_too() {
    let run = start().await;
    let anon = Client::new(&run.service);
    for email in [
        "y@sub.mailinator.com",
        "y@a.b.MAILINATOR.com",
        "y@mailinator.com",
    ] {
        let (status, body) = anon.post("/users/register", registration(email, "Y")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("banned_domain")),
            "{email}: {body}"
        );
    }
    // A domain that only ends with the same letters is another domain.
    let (status, body) = anon
        .post("/users/register", registration("y@notmailinator.com", "Y"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(users(&run.service).await, 1);
}

#[tokio::test]
async fn names_and_companies_with_control_characters_are_rejected() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let (status, body) = anon
        .post(
            "/users/register",
            registration("ada@example.com", "Ada\u{0}"),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("rejected")));
    assert_eq!(users(&run.service).await, 0);

    let ada = anon.sign_up("ada@example.com").await;
    for contact in [
        json!({ "name": "Grace\u{0}Hopper", "email": "grace@navy.mil" }),
        json!({ "name": "Grace\u{1b}[31m", "email": "grace@navy.mil" }),
        json!({ "name": "Grace", "email": "grace@navy.mil", "company": "US\u{0}Navy" }),
        json!({ "name": "Grace", "email": "grace@navy.mil", "notes": "a\u{0}b" }),
    ] {
        let (status, body) = ada.post("/data/Contact", contact.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("rejected")),
            "{contact}: {body}"
        );
    }
    assert_eq!(count(&run.service, "contacts").await, 0);
    // Line breaks in free text are text, not control.
    let (status, body) = ada
        .post(
            "/data/Contact",
            json!({ "name": "Grace", "email": "grace@navy.mil", "notes": "line one\nline two" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn names_and_companies_with_invisible_or_text_direction_characters_are_rejected() {
    let run = start().await;
    let anon = Client::new(&run.service);
    for name in ["Ada\u{202E}ecalevol", "Ada\u{200B}", "A\u{2066}da\u{2069}"] {
        let (status, body) = anon
            .post("/users/register", registration("ada@example.com", name))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("rejected")),
            "{name:?}: {body}"
        );
    }
    assert_eq!(users(&run.service).await, 0);

    let ada = anon.sign_up("ada@example.com").await;
    for contact in [
        json!({ "name": "Grace\u{202E}reppoH", "email": "grace@navy.mil" }),
        json!({ "name": "Grace\u{200B}Hopper", "email": "grace@navy.mil" }),
        json!({ "name": "\u{FEFF}Grace", "email": "grace@navy.mil" }),
        json!({ "name": "Grace", "email": "grace@navy.mil", "company": "US\u{00AD}Navy" }),
        json!({ "name": "Grace", "email": "grace@navy.mil", "company": "US \u{2066}Navy" }),
    ] {
        let (status, body) = ada.post("/data/Contact", contact.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("rejected")),
            "{contact}: {body}"
        );
    }
    // A bulk update cannot slip one in either.
    let (status, body) = ada
        .post(
            "/data/Contact",
            json!({ "name": "Grace Hopper", "email": "grace@navy.mil", "company": "US Navy" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let path = format!("/data/bulk/Contact?where={}", support::enc("id > 0"));
    let (status, body) = ada.put(&path, json!({ "company": "US\u{200B}Navy" })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("rejected")),
        "{body}"
    );
    assert_eq!(
        column(&run.service, "SELECT company FROM contacts").await,
        ["US Navy"]
    );
}

// --- a reset request answers alike under contention ---------------------------------------

#[tokio::test]
async fn a_reset_request_answers_202_even_when_the_database_is_busy() {
    use sqlx::Connection;
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    // Another writer of the same file holds the write lock past the busy timeout.
    let path = run.dir.path().join("contacts.db");
    let mut holder = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
    )
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let unknown = anon
        .post(
            "/users/password-reset",
            json!({ "email": "nobody@example.com" }),
        )
        .await;
    let known = anon
        .post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(known, unknown);
    assert_eq!(known.0, 202);
    assert_eq!(count(&run.service, "password_resets").await, 0);
    assert_eq!(count(&run.service, "outbox").await, 0);
}

// --- a reset request needs an email --------------------------------------------------------

#[tokio::test]
async fn a_password_reset_request_without_an_email_is_a_400() {
    let run = start_with(|_| {}).await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    for body in [
        json!({}),
        json!({ "email": "" }),
        json!({ "email": "  " }),
        json!({ "email": "not-an-email" }),
    ] {
        let (status, answer) = anon.post("/users/password-reset", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["message"].as_str().is_some(), "{answer}");
    }
    assert!(
        column(&run.service, "SELECT topic FROM outbox")
            .await
            .is_empty()
    );
}
