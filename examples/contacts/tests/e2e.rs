//! End-to-end tests: the service on a free loopback port with a temporary SQLite file, driven over
//! real HTTP. One test per rule: each hook use case, each kind of bad input, a restart.

mod support;

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use support::{ADMIN, Client, column, count, start, start_with, stub};

fn grace() -> Value {
    json!({
        "name": "  Grace   Hopper ",
        "email": " GRACE@Navy.MIL ",
        "phone": "+1 (555) 010-0199",
        "company": "US Navy",
        "notes": "compiler pioneer",
    })
}

// --- injecting properties before save ------------------------------------------------------

#[tokio::test]
async fn a_created_contact_gets_its_owner_times_and_normalised_fields_whatever_was_sent() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let mut sent = grace();
    sent["owner"] = json!("someone else");
    sent["created"] = json!(1);
    let (status, c) = ada.post("/data/Contact", sent).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["id"], 1);
    assert_eq!(c["owner"], "1");
    assert_eq!(c["name"], "Grace Hopper");
    assert_eq!(c["email"], "grace@navy.mil");
    assert_eq!(c["phone"], "+15550100199");
    assert!(c["created"].as_i64().unwrap() > 1);
    assert_eq!(c["created"], c["updated"]);
    // What the client read back is what was stored.
    let (_, stored) = ada.get("/data/Contact/1").await;
    assert_eq!(stored["email"], "grace@navy.mil");
    assert_eq!(stored["owner"], "1");
}

// --- validating data before it is saved ----------------------------------------------------

#[tokio::test]
async fn an_invalid_contact_is_rejected_with_the_hooks_error_and_nothing_is_written() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, body) = ada
        .post(
            "/data/Contact",
            json!({ "name": "Bob", "email": "not-an-email" }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "status": 400,
            "code": "invalid_email",
            "message": "`not-an-email` is not an email address",
        })
    );
    let (status, body) = ada
        .post("/data/Contact", json!({ "email": "a@b.io" }))
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("rejected")));
    for table in ["contacts", "audit", "outbox"] {
        assert_eq!(count(&run.service, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn an_update_that_breaks_a_rule_is_rejected_and_the_record_stays_as_it_was() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    ada.post("/data/Contact", grace()).await;
    let (status, body) = ada
        .put("/data/Contact/1", json!({ "email": "nope", "vip": true }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_email"))
    );
    let (_, stored) = ada.get("/data/Contact/1").await;
    assert_eq!(
        (stored["email"].as_str(), stored["vip"].as_bool()),
        (Some("grace@navy.mil"), Some(false))
    );
    // Only the create was audited, and the VIP flag sent no message.
    assert_eq!(
        column(&run.service, "SELECT action FROM audit").await,
        ["create"]
    );
    assert_eq!(count(&run.service, "outbox").await, 0);
}

#[tokio::test]
async fn a_note_about_a_contact_that_does_not_exist_is_rejected() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, body) = ada
        .post(
            "/data/Note",
            json!({ "contact_id": 9, "body": "call back" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("contact 9"));
    ada.post("/data/Contact", grace()).await;
    let (status, note) = ada
        .post(
            "/data/Note",
            json!({ "contact_id": 1, "body": "  call back " }),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(
        (note["body"].as_str(), note["owner"].as_str()),
        (Some("call back"), Some("1"))
    );
}

#[tokio::test]
async fn a_registration_needs_a_valid_email_and_a_long_enough_password() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let (status, body) = anon
        .post(
            "/users/register",
            json!({ "email": "ada@example.com", "password": "short", "name": "Ada" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("weak_password"))
    );
    let (status, body) = anon
        .post(
            "/users/register",
            json!({ "email": "ada", "password": "long enough", "name": "Ada" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_email"))
    );
    let (status, user) = anon
        .post(
            "/users/register",
            json!({ "email": " Ada@Example.com", "password": "long enough", "name": "Ada" }),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        user,
        json!({ "id": "1", "email": "ada@example.com", "roles": [] })
    );
    let (status, _) = anon
        .post(
            "/users/register",
            json!({ "email": "ADA@example.com", "password": "long enough", "name": "Ada" }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, body) = anon
        .post(
            "/users/register",
            json!({ "email": "bob@example.com", "password": "long enough", "name": " " }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("rejected")));
}

#[tokio::test]
async fn login_answers_a_token_and_the_user_and_the_token_works() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let (status, body) = anon
        .post(
            "/users/login",
            json!({ "email": " ADA@example.com ", "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert_ne!(token, "***", "the client gets the token itself");
    assert_eq!(
        body["user"],
        json!({ "id": "1", "email": "ada@example.com", "roles": [] })
    );
    assert_eq!(anon.with_token(token).get("/data/Contact").await.0, 200);
}

// --- a login policy ------------------------------------------------------------------------

#[tokio::test]
async fn an_address_at_a_banned_domain_cannot_register() {
    let run = start_with(|c| c.banned_domains = vec!["spam.example".into()]).await;
    let (status, body) = Client::new(&run.service)
        .post(
            "/users/register",
            json!({ "email": "eve@SPAM.example", "password": "long enough", "name": "Eve" }),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "banned_domain");
}

#[tokio::test]
async fn an_account_locks_after_too_many_failed_logins_even_for_the_right_password() {
    let run = start_with(|c| c.max_failed_logins = 3).await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let login = |password: &'static str| {
        let anon = anon.clone();
        async move {
            anon.post(
                "/users/login",
                json!({ "email": "ada@example.com", "password": password }),
            )
            .await
        }
    };
    // Failures that do not reach the limit are forgotten after a success.
    for _ in 0..2 {
        assert_eq!(login("wrong").await.0, 401);
    }
    assert_eq!(login("correct horse").await.0, 200);
    for _ in 0..3 {
        let (status, body) = login("wrong").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    let (status, body) = login("correct horse").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("account_locked"))
    );
}

// --- monitoring changes --------------------------------------------------------------------

#[tokio::test]
async fn every_change_is_audited_with_who_and_the_fields_that_changed() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    ada.post("/data/Contact", grace()).await;
    let (status, _) = ada
        .put(
            "/data/Contact/1",
            json!({ "company": "Yale", "name": "Grace Hopper" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = ada.delete("/data/Contact/1").await;
    assert_eq!((status, body), (200, json!({ "deleted": 1 })));

    let actions = column(
        &run.service,
        "SELECT action || ' ' || user_id || ' ' || record_id FROM audit ORDER BY id",
    )
    .await;
    assert_eq!(actions, ["create 1 1", "update 1 1", "delete 1 1"]);
    let changes = column(&run.service, "SELECT changes FROM audit ORDER BY id").await;
    let update: Value = serde_json::from_str(&changes[1]).unwrap();
    // Only the field whose value changed; `name` was sent but is the same.
    assert_eq!(
        update,
        json!({ "company": { "from": "US Navy", "to": "Yale" } })
    );
    let delete: Value = serde_json::from_str(&changes[2]).unwrap();
    assert_eq!(
        delete["email"],
        json!({ "from": "grace@navy.mil", "to": null })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_each_commit_together_with_their_audit_row() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let ada = ada.clone();
            tokio::spawn(async move {
                ada.post(
                    "/data/Contact",
                    json!({ "name": format!("C{i}"), "email": format!("c{i}@x.io"), "vip": i % 2 == 0 }),
                )
                .await
                .0
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 201);
    }
    assert_eq!(count(&run.service, "contacts").await, 24);
    assert_eq!(count(&run.service, "audit").await, 24);
    assert_eq!(count(&run.service, "outbox").await, 12);
}

// --- who may change what -------------------------------------------------------------------

#[tokio::test]
async fn only_the_owner_may_change_or_delete_a_contact() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    ada.post("/data/Contact", grace()).await;
    let (status, body) = bob
        .put("/data/Contact/1", json!({ "name": "Mine now" }))
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(bob.delete("/data/Contact/1").await.0, 403);
    let (_, stored) = ada.get("/data/Contact/1").await;
    assert_eq!(stored["name"], "Grace Hopper");
    assert_eq!(
        column(&run.service, "SELECT action FROM audit").await,
        ["create"]
    );
}

#[tokio::test]
async fn a_note_keeps_its_writer_and_only_its_writer_may_change_or_delete_it() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    ada.post("/data/Contact", grace()).await;
    ada.post(
        "/data/Note",
        json!({ "contact_id": 1, "body": "call back" }),
    )
    .await;
    let (status, note) = ada
        .put(
            "/data/Note/1",
            json!({ "owner": "2", "body": "call back soon" }),
        )
        .await;
    assert_eq!(status, 200, "{note}");
    assert_eq!(
        (note["owner"].as_str(), note["body"].as_str()),
        (Some("1"), Some("call back soon"))
    );
    assert_eq!(
        bob.put("/data/Note/1", json!({ "body": "mine" })).await.0,
        403
    );
    assert_eq!(bob.delete("/data/Note/1").await.0, 403);
    // Deleting the contact deletes its notes.
    ada.delete("/data/Contact/1").await;
    assert_eq!(count(&run.service, "notes").await, 0);
}

// --- injecting properties into responses ---------------------------------------------------

#[tokio::test]
async fn responses_carry_computed_fields_and_hide_private_ones_from_all_but_the_owner() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    ada.post("/data/Contact", grace()).await;

    let (_, mine) = ada.get("/data/Contact/1").await;
    assert_eq!(mine["display_name"], "Grace Hopper (US Navy)");
    assert_eq!(mine["phone"], "+15550100199");
    assert_eq!(mine["notes"], "compiler pioneer");

    let (_, theirs) = bob.get("/data/Contact/1").await;
    assert_eq!(theirs["display_name"], "Grace Hopper (US Navy)");
    assert_eq!(
        (&theirs["phone"], &theirs["notes"]),
        (&Value::Null, &Value::Null)
    );
    let (_, found) = bob.get("/data/Contact").await;
    assert_eq!(found[0]["phone"], Value::Null);
    // Redaction shapes the response only: the stored record keeps its fields.
    assert_eq!(
        column(&run.service, "SELECT phone FROM contacts").await,
        ["+15550100199"]
    );
}

// --- a notification on a condition ---------------------------------------------------------

#[tokio::test]
async fn a_contact_becoming_a_vip_writes_one_outbox_message() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    ada.post("/data/Contact", grace()).await;
    assert_eq!(count(&run.service, "outbox").await, 0);
    ada.put("/data/Contact/1", json!({ "vip": true })).await;
    ada.put("/data/Contact/1", json!({ "company": "Yale" }))
        .await;
    let (status, _) = ada
        .post(
            "/data/Contact",
            json!({ "name": "Ada", "email": "a@x.io", "vip": true }),
        )
        .await;
    assert_eq!(status, 201);
    let messages = column(
        &run.service,
        "SELECT topic || ' ' || payload FROM outbox ORDER BY id",
    )
    .await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].starts_with("contact.vip ") && messages[0].contains("grace@navy.mil"));
    assert!(messages[1].contains("a@x.io"));
}

// --- integrating with a third-party service ------------------------------------------------

#[tokio::test]
async fn a_new_contact_is_posted_to_the_webhook_and_shutdown_waits_for_the_delivery() {
    // The stub answers slowly, so the delivery is still under way when the service is stopped.
    let crm = stub(Duration::from_millis(300)).await;
    let url = crm.url.clone();
    let run = start_with(move |c| c.webhook_url = Some(url)).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, _) = ada.post("/data/Contact", grace()).await;
    assert_eq!(status, 201);
    // A rejected create is never sent.
    ada.post("/data/Contact", json!({ "name": "X", "email": "bad" }))
        .await;
    run.service.stop().await.unwrap();
    let seen = crm.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["event"], "contact.created");
    assert_eq!(seen[0]["contact"]["email"], "grace@navy.mil");
}

#[tokio::test]
async fn a_failed_webhook_delivery_is_counted_in_the_handlers_history_and_the_create_stands() {
    // An endpoint that is not there: a port that was free a moment ago.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    const WEBHOOK: &str = "contacts::handlers::integration::sync_new_contact_to_crm";
    let errors = |catalog: hooks::Catalog| {
        catalog
            .handlers
            .iter()
            .find(|h| h.id == WEBHOOK)
            .map(|h| h.stats.errors)
            .unwrap()
    };
    let run = start_with(move |c| c.webhook_url = Some(url)).await;
    let before = errors(run.service.app().hooks.catalog());
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, _) = ada.post("/data/Contact", grace()).await;
    assert_eq!(
        status, 201,
        "the caller does not wait for, nor hear of, the third party"
    );
    assert_eq!(count(&run.service, "contacts").await, 1);
    // Stopping waits for the queued delivery, so its outcome is in the history by then.
    let hooks = run.service.app().hooks.clone();
    run.service.stop().await.unwrap();
    assert!(errors(hooks.catalog()) > before);
}

// --- find ----------------------------------------------------------------------------------

#[tokio::test]
async fn find_filters_by_a_where_clause_sorts_and_pages() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    for (name, email, vip) in [
        ("Cy", "cy@x.io", true),
        ("Ada", "ada@x.io", false),
        ("Bea", "bea@y.io", true),
        ("Dan", "dan@x.io", true),
    ] {
        ada.post(
            "/data/Contact",
            json!({ "name": name, "email": email, "vip": vip }),
        )
        .await;
    }
    let names = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = ada
        .get("/data/Contact?where=email%20LIKE%20'%25%40x.io'%20AND%20vip%20%3D%20true&sortBy=name%20desc")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Dan", "Cy"]);
    let (_, body) = ada
        .get("/data/Contact?sortBy=name&pageSize=2&offset=1")
        .await;
    assert_eq!(names(&body), ["Bea", "Cy"]);
    // A value that looks like SQL is only a value.
    let (status, body) = ada
        .get("/data/Contact?where=name%20%3D%20'x''%20OR%20''1''%3D''1'")
        .await;
    assert_eq!((status, body), (200, json!([])));
}

// --- bad input -----------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_a_400() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let r = ada
        .raw(Method::POST, "/data/Contact", &[], b"{\"name\": ".to_vec())
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "bad_request");
    let r = ada
        .raw(Method::POST, "/users/login", &[], b"[1,2]".to_vec())
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_and_nothing_is_written() {
    let run = start_with(|c| c.body_limit = 1024).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let big = json!({ "name": "x".repeat(4096), "email": "a@b.io" });
    let r = ada
        .raw(
            Method::POST,
            "/data/Contact",
            &[],
            big.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload_too_large");
    assert_eq!(count(&run.service, "contacts").await, 0);
}

#[tokio::test]
async fn an_unknown_table_record_or_route_is_a_404_and_a_wrong_method_a_405() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, body) = ada.post("/data/Secrets", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(ada.get("/data/users").await.0, 404);
    assert_eq!(ada.get("/data/Contact/42").await.0, 404);
    assert_eq!(
        ada.put("/data/Contact/42", json!({ "name": "x" })).await.0,
        404
    );
    assert_eq!(ada.delete("/data/Contact/abc").await.0, 404);
    assert_eq!(ada.get("/nowhere").await.0, 404);
    let (status, body) = ada.send(Method::PATCH, "/data/Contact/1", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_a_401() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let (status, body) = anon.get("/data/Contact").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(anon.with_token("made-up").get("/data/Contact").await.0, 401);
    let r = anon
        .raw(
            Method::GET,
            "/data/Contact",
            &[("authorization", "Basic YWRhOng=")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let token = ada.token.clone().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let header = format!("{scheme} {token}");
        let r = anon
            .raw(
                Method::GET,
                "/data/Contact",
                &[("authorization", &header)],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, 200, "{scheme}: {:?}", r.json());
    }
    // Another scheme, or none, is still no token.
    for header in [format!("Token {token}"), format!("Bearer{token}"), token] {
        let r = anon
            .raw(
                Method::GET,
                "/data/Contact",
                &[("authorization", &header)],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status, 401, "{header}");
    }
}

#[tokio::test]
async fn a_field_the_table_does_not_have_is_a_400() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, body) = ada
        .post(
            "/data/Contact",
            json!({ "name": "A", "email": "a@b.io", "password_hash": "x" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unknown_field"))
    );
    let (status, body) = ada
        .get("/data/Contact?where=password_hash%20%3D%20'x'")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unknown_field"))
    );
    let (status, _) = ada
        .post("/data/Contact", json!({ "name": 5, "email": "a@b.io" }))
        .await;
    assert_eq!(status, 400);
}

// --- users ---------------------------------------------------------------------------------

#[tokio::test]
async fn logout_ends_the_session_of_its_token() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let other_session = anon.sign_in("ada@example.com", "correct horse").await;
    assert_eq!(ada.post("/users/logout", json!({})).await.0, 204);
    assert_eq!(ada.get("/data/Contact").await.0, 401);
    assert_eq!(other_session.get("/data/Contact").await.0, 200);
}

#[tokio::test]
async fn a_token_older_than_the_session_lifetime_is_a_401() {
    // A lifetime of zero: every token has expired by the time it is used.
    let run = start_with(|c| c.session_ttl = Duration::ZERO).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, body) = ada.get("/data/Contact").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn a_password_reset_answers_alike_for_any_address_and_queues_a_message_for_real_ones() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let known = anon
        .post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    let unknown = anon
        .post(
            "/users/password-reset",
            json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(known.0, 202);
    assert_eq!(known, unknown);
    assert_eq!(
        column(&run.service, "SELECT topic FROM outbox").await,
        ["user.password_reset"]
    );
}

#[tokio::test]
async fn a_reset_token_sets_a_new_password_once_unlocks_the_account_and_ends_its_sessions() {
    let run = start_with(|c| c.max_failed_logins = 1).await;
    let anon = Client::new(&run.service);
    let old_session = anon.sign_up("ada@example.com").await;
    // Lock the account.
    anon.post(
        "/users/login",
        json!({ "email": "ada@example.com", "password": "wrong" }),
    )
    .await;
    anon.post(
        "/users/password-reset",
        json!({ "email": "ada@example.com" }),
    )
    .await;
    let payload = column(&run.service, "SELECT payload FROM outbox").await;
    let message: Value = serde_json::from_str(&payload[0]).unwrap();
    let token = message["token"].as_str().unwrap();

    let weak = json!({ "token": token, "password": "short" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", weak).await.0,
        400
    );
    let reset = json!({ "token": token, "password": "new and long" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", reset.clone())
            .await
            .0,
        204
    );
    let (status, body) = anon.post("/users/password-reset/confirm", reset).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reset_token"))
    );

    assert_eq!(old_session.get("/data/Contact").await.0, 401);
    // Unlocked, with the new password (and not the old one).
    anon.sign_in("ada@example.com", "new and long").await;
    let (status, _) = anon
        .post(
            "/users/login",
            json!({ "email": "ada@example.com", "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 401);
}

/// The token of the last reset message in the outbox.
async fn last_reset_token(service: &contacts::Service) -> String {
    let payloads = column(
        service,
        "SELECT payload FROM outbox WHERE topic = 'user.password_reset' ORDER BY id",
    )
    .await;
    let message: Value = serde_json::from_str(payloads.last().expect("a reset message")).unwrap();
    message["token"].as_str().expect("a token").to_owned()
}

/// Store a reset token `token` for user 1, made `age_ms` ago, as an older request would have.
async fn store_reset_token(service: &contacts::Service, token: &str, age_ms: i64) {
    sqlx::query("INSERT INTO password_resets (token_hash, user_id, created) VALUES (?, 1, ?)")
        .bind(contacts::users::token_hash(&hooks::Secret::new(token)))
        .bind(contacts::db::now_ms() - age_ms)
        .execute(&service.app().pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_completed_reset_deletes_every_other_reset_token_of_the_account() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let (status, _) = anon
        .post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(status, 202);
    let used = last_reset_token(&run.service).await;
    // Another live token of the account: one sent earlier, still within its hour.
    store_reset_token(&run.service, "an older link", 10 * 60 * 1000).await;

    let reset = json!({ "token": used, "password": "new and long" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", reset).await.0,
        204
    );
    let older = json!({ "token": "an older link", "password": "the attackers" });
    let (status, body) = anon.post("/users/password-reset/confirm", older).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reset_token"))
    );
    anon.sign_in("ada@example.com", "new and long").await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM password_resets")
        .fetch_one(&run.service.app().pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_new_reset_request_leaves_the_accounts_older_token_valid() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    store_reset_token(&run.service, "an older link", 2 * 60 * 1000).await;
    let (status, _) = anon
        .post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(count(&run.service, "outbox").await, 1, "a new link is sent");
    // Whoever asked, the link the owner already holds still works.
    let older = json!({ "token": "an older link", "password": "new and long" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", older).await.0,
        204
    );
    // And the completed reset took the newer one with it.
    let newer =
        json!({ "token": last_reset_token(&run.service).await, "password": "other and long" });
    let (status, body) = anon.post("/users/password-reset/confirm", newer).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reset_token"))
    );
}

#[tokio::test]
async fn an_account_holds_at_most_three_live_reset_tokens() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let ask = || {
        anon.post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
    };
    // Three live links, each older than the minute between two messages, and an expired one.
    store_reset_token(&run.service, "expired", 61 * 60 * 1000).await;
    for (i, minutes) in [50, 30, 10].into_iter().enumerate() {
        store_reset_token(&run.service, &format!("live {i}"), minutes * 60 * 1000).await;
    }
    let answer = ask().await;
    assert_eq!(answer.0, 202);
    assert_eq!(count(&run.service, "outbox").await, 0, "nothing is sent");
    assert_eq!(count(&run.service, "password_resets").await, 3);
    // Once one of the three expires, a request sends a link again, with the same answer.
    sqlx::query(
        "DELETE FROM password_resets WHERE created = (SELECT MIN(created) FROM password_resets)",
    )
    .execute(&run.service.app().pool)
    .await
    .unwrap();
    assert_eq!(ask().await, answer);
    assert_eq!(count(&run.service, "outbox").await, 1);
    // Every live link still works.
    let live = json!({ "token": "live 2", "password": "new and long" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", live).await.0,
        204
    );
}

#[tokio::test]
async fn a_reset_request_within_a_minute_of_the_last_sends_nothing_and_answers_alike() {
    let run = start().await;
    let anon = Client::new(&run.service);
    anon.sign_up("ada@example.com").await;
    let ask = || {
        anon.post(
            "/users/password-reset",
            json!({ "email": "ada@example.com" }),
        )
    };
    let first = ask().await;
    let first_token = last_reset_token(&run.service).await;
    for _ in 0..5 {
        assert_eq!(ask().await, first);
    }
    assert_eq!(count(&run.service, "outbox").await, 1);
    // The token sent stays the live one.
    let reset = json!({ "token": first_token, "password": "new and long" });
    assert_eq!(
        anon.post("/users/password-reset/confirm", reset).await.0,
        204
    );
}

// --- operator view -------------------------------------------------------------------------

#[tokio::test]
async fn health_answers_while_the_database_does() {
    let run = start().await;
    let (status, body) = Client::new(&run.service).get("/health").await;
    assert_eq!((status, body), (200, json!({ "status": "ok" })));
}

#[tokio::test]
async fn get_hooks_returns_the_catalog_of_events_and_handlers_to_an_admin() {
    let run = start_with(support::admin).await;
    let ops = Client::new(&run.service).sign_up(ADMIN).await;
    let (status, body) = ops.get("/hooks").await;
    assert_eq!(status, 200, "{body}");
    let handlers = body["handlers"].as_array().unwrap();
    assert!(handlers.len() >= 25, "{}", handlers.len());
    let handler = |id: &str| {
        handlers
            .iter()
            .find(|h| h["id"] == format!("contacts::handlers::{id}"))
            .unwrap_or_else(|| panic!("no handler {id} in {body}"))
    };
    // A wildcard handler, with where it is and what it does.
    let stamp = handler("inject::stamp_new_record");
    assert_eq!(
        (&stamp["event"], &stamp["asset"], &stamp["phase"]),
        (&json!("data.create"), &json!("*"), &json!("before"))
    );
    assert_eq!(
        (&stamp["priority"], &stamp["kind"]),
        (&json!(-200), &json!("sync"))
    );
    assert!(stamp["line"].as_u64().unwrap() > 0);
    assert!(stamp["file"].as_str().unwrap().ends_with("inject.rs"));
    assert!(stamp["doc"].as_str().unwrap().starts_with("A new record"));
    assert!(stamp["stats"]["calls"].is_u64());
    // The user operations' handlers are registered like every other one.
    let lockout = handler("login_policy::count_failed_logins");
    assert_eq!(
        (&lockout["event"], &lockout["phase"], &lockout["kind"]),
        (&json!("users.login"), &json!("after"), &json!("async"))
    );
    assert_eq!(
        handler("validation::validate_new_password")["event"],
        "users.password_reset_confirm"
    );
    // The webhook runs in the background.
    assert_eq!(
        handler("integration::sync_new_contact_to_crm")["mode"],
        "background"
    );
    // Events, with their subscriber counts; the service's own operation among them.
    let events = body["events"].as_array().unwrap();
    let event = |name: &str| {
        events
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no event {name}"))
    };
    assert_eq!(event("users.login")["subscribers"], 2);
    assert_eq!(event("users.register")["subscribers"], 2);
    assert_eq!(event("users.password_reset_confirm")["subscribers"], 1);
    assert!(
        !event("users.password_reset_confirm")["description"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(event("data.create")["subscribers"].as_u64().unwrap() >= 9);
    assert!(
        body.get("manual").is_none(),
        "every handler is registered now"
    );
}

#[tokio::test]
async fn a_handlers_execution_history_shows_in_get_hooks_after_a_call() {
    let run = start_with(support::admin).await;
    let anon = Client::new(&run.service);
    let ops = anon.sign_up(ADMIN).await;
    let calls_of = |body: &Value, id: &str| -> u64 {
        body["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id)
            .and_then(|h| h["stats"]["calls"].as_u64())
            .unwrap_or_else(|| panic!("no history for {id}"))
    };
    const BANNED: &str = "contacts::handlers::login_policy::reject_banned_domain";
    const LOCKOUT: &str = "contacts::handlers::login_policy::count_failed_logins";
    let (status, before) = ops.get("/hooks").await;
    assert_eq!(status, 200, "{before}");
    // One registration and one failed login: each of the two handlers runs at least once more.
    // (Other tests in this process may run them too, so the counts only ever grow.)
    anon.sign_up("ada@example.com").await;
    let (status, _) = anon
        .post(
            "/users/login",
            json!({ "email": "ada@example.com", "password": "wrong" }),
        )
        .await;
    assert_eq!(status, 401);
    let (status, after) = ops.get("/hooks").await;
    assert_eq!(status, 200, "{after}");
    assert!(calls_of(&after, BANNED) > 0);
    assert!(calls_of(&after, BANNED) > calls_of(&before, BANNED));
    assert!(calls_of(&after, LOCKOUT) > calls_of(&before, LOCKOUT));
}

#[tokio::test]
async fn the_catalog_needs_a_valid_token() {
    let run = start_with(support::admin).await;
    let anon = Client::new(&run.service);
    let (status, body) = anon.get("/hooks").await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({
                "status": 401,
                "code": "unauthorized",
                "message": "send `Authorization: Bearer <token>`",
            })
        )
    );
    let (status, body) = anon.with_token("made-up").get("/hooks").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    // A logged-out admin's token is no better than a made-up one.
    let ops = anon.sign_up(ADMIN).await;
    assert_eq!(ops.post("/users/logout", json!({})).await.0, 204);
    assert_eq!(ops.get("/hooks").await.0, 401);
}

#[tokio::test]
async fn the_catalog_needs_an_admin() {
    let run = start_with(support::admin).await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let (status, body) = ada.get("/hooks").await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({ "status": 403, "code": "forbidden", "message": "only an admin may do this" })
        )
    );
    // The same service answers its admin.
    let (status, body) = anon.sign_up(ADMIN).await.get("/hooks").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["handlers"].is_array(), "{body}");
}

#[tokio::test]
async fn a_service_with_no_admin_shows_its_catalog_to_no_one() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    assert_eq!(ada.get("/hooks").await.0, 403);
}

#[tokio::test]
async fn an_account_is_an_admin_when_its_email_is_on_the_admin_list() {
    let run = start_with(support::admin).await;
    let anon = Client::new(&run.service);
    // The list names the address as logins normalise it, whatever case the client writes.
    let (status, user) = anon
        .post(
            "/users/register",
            json!({ "email": " OPS@Example.com", "password": "correct horse", "name": "Ops" }),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        user,
        json!({ "id": "1", "email": ADMIN, "roles": ["admin"] })
    );
    let (status, body) = anon
        .post(
            "/users/login",
            json!({ "email": "Ops@example.COM", "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["roles"], json!(["admin"]));
    let ops = anon.with_token(body["token"].as_str().unwrap());
    assert_eq!(ops.get("/hooks").await.0, 200);
    // Everyone else has no role.
    let (_, bob) = anon
        .post(
            "/users/register",
            json!({ "email": "bob@example.com", "password": "correct horse", "name": "Bob" }),
        )
        .await;
    assert_eq!(bob["roles"], json!([]), "{bob}");
}

#[tokio::test]
async fn the_admin_role_follows_the_settings_not_the_session() {
    let run = start_with(support::admin).await;
    let ops = Client::new(&run.service).sign_up(ADMIN).await;
    assert_eq!(ops.get("/hooks").await.0, 200);
    let mut config = support::config(&run.dir);
    run.service.stop().await.unwrap();

    // Restarted without the admin: the session stays, the role does not.
    config.admins.clear();
    let service = contacts::start(config).await.unwrap();
    let again = Client::new(&service).with_token(ops.token.as_deref().unwrap());
    assert_eq!(again.get("/data/Contact").await.0, 200);
    assert_eq!(again.get("/hooks").await.0, 403);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn no_one_makes_themselves_an_admin_through_the_api() {
    let run = start_with(support::admin).await;
    let anon = Client::new(&run.service);
    // A registration or a login that sends roles is refused, and creates no account.
    let (status, body) = anon
        .post(
            "/users/register",
            json!({
                "email": "eve@example.com", "password": "correct horse", "name": "Eve",
                "roles": ["admin"],
            }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));
    assert!(
        body["message"].as_str().unwrap().contains("roles"),
        "{body}"
    );
    let (status, _) = anon
        .post(
            "/users/login",
            json!({ "email": "eve@example.com", "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 401, "no account was created");
    let eve = anon.sign_up("eve@example.com").await;
    let (status, _) = eve
        .post(
            "/users/login",
            json!({ "email": "eve@example.com", "password": "correct horse", "roles": ["admin"] }),
        )
        .await;
    assert_eq!(status, 400);
    // No route changes a user, and a record that names roles is refused as it names any field
    // its table does not have.
    for method in [Method::PUT, Method::POST] {
        let (status, _) = eve
            .send(method, "/users/1", Some(json!({ "roles": ["admin"] })))
            .await;
        assert_eq!(status, 404);
    }
    let (status, body) = eve
        .post(
            "/data/Contact",
            json!({ "name": "Eve", "email": "eve@example.com", "roles": ["admin"] }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("unknown_field")),
        "{body}"
    );
    // Eve's account, old sessions and new, is still no admin.
    assert_eq!(eve.get("/hooks").await.0, 403);
    let again = anon.sign_in("eve@example.com", "correct horse").await;
    assert_eq!(again.get("/hooks").await.0, 403);
}

// --- durability ----------------------------------------------------------------------------

#[tokio::test]
async fn data_and_sessions_survive_a_restart() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    ada.post("/data/Contact", grace()).await;
    let config = support::config(&run.dir);
    run.service.stop().await.unwrap();

    let service = contacts::start(config).await.unwrap();
    let again = Client::new(&service).with_token(ada.token.as_deref().unwrap());
    let (status, c) = again.get("/data/Contact/1").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["email"], "grace@navy.mil");
    assert_eq!(
        column(&service, "SELECT action FROM audit").await,
        ["create"]
    );
    service.stop().await.unwrap();
}

// --- hooks switched off (the end-to-end benchmark's baseline) -----------------------------

#[tokio::test]
async fn with_no_hooks_no_handler_runs_and_every_call_runs_only_its_default_logic() {
    let run = start_with(|c| {
        support::admin(c);
        c.no_hooks = true;
    })
    .await;
    let anon = Client::new(&run.service);
    // Admins are the service's own check, not a hook's: they hold without hooks.
    let (status, catalog) = anon.sign_up(ADMIN).await.get("/hooks").await;
    assert_eq!(status, 200, "{catalog}");
    assert_eq!(catalog["handlers"], json!([]), "{catalog}");
    assert_eq!(anon.get("/hooks").await.0, 401);
    // Registration and login still work: the password and token checks are the service's own.
    let ada = anon.sign_up("ada@example.com").await;
    // What a validation hook rejects and the injection hooks normalise is stored as sent...
    let (status, c) = ada
        .post(
            "/data/Contact",
            json!({ "name": "  Bob ", "email": "not-an-email", "owner": "someone else" }),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(
        (&c["name"], &c["email"], &c["owner"]),
        (
            &json!("  Bob "),
            &json!("not-an-email"),
            &json!("someone else")
        )
    );
    // ...no response hook adds a computed field, and no audit hook writes a row.
    let (status, read) = ada.get("/data/Contact/1").await;
    assert_eq!(status, 200, "{read}");
    assert!(read.get("display_name").is_none(), "{read}");
    assert_eq!(count(&run.service, "audit").await, 0);
    run.service.stop().await.unwrap();
}

// --- slow and stalled clients -------------------------------------------------------------

/// A raw connection to the service, for clients no HTTP library would be.
async fn raw(run: &support::Running) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(run.service.addr())
        .await
        .expect("the service accepts a connection")
}

/// Everything the service sends until it closes the connection; bounded, so that a service
/// that never closes fails the test instead of hanging it.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut got)).await;
    read.expect("the service closes the connection")
        .expect("the connection reads");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let run = start_with(|c| c.header_timeout = Duration::from_millis(300)).await;
    let mut stream = raw(&run).await;
    // No blank line: the head never ends.
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: contacts\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    run.service.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_whose_body_stalls_gets_408_request_timeout() {
    use tokio::io::AsyncWriteExt;
    let run = start_with(|c| c.request_timeout = Duration::from_millis(300)).await;
    let mut stream = raw(&run).await;
    // A body of 100 bytes announced, 10 sent.
    stream
        .write_all(
            b"POST /users/login HTTP/1.1\r\nHost: contacts\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nConnection: close\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    run.service.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_drops_the_requests_still_in_flight_at_its_deadline() {
    use tokio::io::AsyncWriteExt;
    let run = start_with(|c| {
        c.shutdown_deadline = Duration::from_millis(300);
        c.request_timeout = Duration::from_secs(3600);
    })
    .await;
    let mut stream = raw(&run).await;
    stream
        .write_all(b"POST /users/login HTTP/1.1\r\nHost: contacts\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    // Let the service start reading the request before it is told to stop.
    let (status, _) = Client::new(&run.service).get("/health").await;
    assert_eq!(status, 200);
    let stopped = tokio::time::timeout(Duration::from_secs(20), run.service.stop()).await;
    stopped
        .expect("shutdown does not wait for a stalled client past its deadline")
        .unwrap();
    drop(stream);
}
