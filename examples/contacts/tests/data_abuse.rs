//! What an adversarial client tried against the data API, one test per rule: private fields that
//! filters and sorts could read, edits that overwrote each other, ids that reached a record under
//! another name, deletes that took other users' notes with them, races that ended in a 500, queries
//! too large for SQLite, error messages that echoed whatever they were sent, and one user's long
//! write that made every other user's writes fail with a 500, and a pool with every connection
//! taken that answered nothing for 30 s.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, column, count, enc, start};

/// `GET /data/Contact?where=...` (and `sortBy` when given).
async fn find(client: &Client, clause: &str, sort: Option<&str>) -> (u16, Value) {
    let mut path = format!("/data/Contact?where={}", enc(clause));
    if let Some(sort) = sort {
        path.push_str(&format!("&sortBy={}", enc(sort)));
    }
    client.get(&path).await
}

/// The names of the contacts a find answered, in order.
fn names(found: &Value) -> Vec<String> {
    found
        .as_array()
        .map(|all| {
            all.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn contact(name: &str, phone: &str, notes: &str) -> Value {
    json!({
        "name": name,
        "email": format!("{}@example.com", name.to_lowercase()),
        "phone": phone,
        "notes": notes,
    })
}

// --- 1. private fields ---------------------------------------------------------------------

#[tokio::test]
async fn a_filter_or_sort_on_a_private_field_sees_other_users_records_as_the_caller_does() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    // Ada's: Xavier's phone sorts after Yves's.
    let (status, _) = ada
        .post(
            "/data/Contact",
            contact("Xavier", "+15559990000", "owes me"),
        )
        .await;
    assert_eq!(status, 201);
    ada.post("/data/Contact", contact("Yves", "+15551110000", "friend"))
        .await;

    // Bob sees both without phone and notes, so no condition on them matches a value he cannot
    // see: the answer is the same whatever the hidden value is.
    for clause in [
        "phone LIKE '+1555%'",
        "phone LIKE '+1666%'",
        "phone = '+15559990000'",
        "phone > '+1'",
        "phone IS NOT NULL",
        "notes LIKE 'owes%'",
        "notes != 'x'",
    ] {
        let (status, found) = find(&bob, clause, None).await;
        assert_eq!((status, names(&found)), (200, vec![]), "{clause}");
    }
    // What he sees is null, and a condition that holds for null holds for him.
    let (_, found) = find(&bob, "phone IS NULL AND notes IS NULL", None).await;
    assert_eq!(names(&found), ["Xavier", "Yves"]);
    // Sorting on a hidden field orders by what he sees (all null), then by id.
    for sort in ["phone", "phone desc", "notes desc, name desc"] {
        let (status, found) = find(&bob, "name LIKE '%'", Some(sort)).await;
        let expected = if sort.starts_with("notes") {
            vec!["Yves", "Xavier"]
        } else {
            vec!["Xavier", "Yves"]
        };
        assert_eq!(status, 200, "{sort}");
        assert_eq!(names(&found), expected, "{sort}");
    }

    // The owner filters and sorts on her own values as before.
    let (_, found) = find(&ada, "phone LIKE '+1555999%'", None).await;
    assert_eq!(names(&found), ["Xavier"]);
    let (_, found) = find(&ada, "name LIKE '%'", Some("phone")).await;
    assert_eq!(names(&found), ["Yves", "Xavier"]);

    // And among Bob's own contacts and Ada's, his condition matches only his own values.
    bob.post("/data/Contact", contact("Zoe", "+15559990000", "owes me"))
        .await;
    let (_, found) = find(&bob, "phone = '+15559990000'", None).await;
    assert_eq!(names(&found), ["Zoe"]);
    let (_, found) = find(&bob, "notes = 'owes me'", Some("phone desc")).await;
    assert_eq!(names(&found), ["Zoe"]);
}

// --- 2. simultaneous partial edits ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_partial_edits_of_one_record_each_keep_their_field() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, _) = ada
        .post("/data/Contact", contact("Grace", "+15550100199", "n0"))
        .await;
    assert_eq!(status, 201);
    for round in 0..20 {
        let edits = [
            json!({ "company": format!("Co{round}") }),
            json!({ "notes": format!("n{round}") }),
            json!({ "name": format!("Grace {round}") }),
        ];
        let calls: Vec<_> = edits
            .into_iter()
            .map(|edit| {
                let ada = ada.clone();
                tokio::spawn(async move { ada.put("/data/Contact/1", edit).await })
            })
            .collect();
        for call in calls {
            let (status, body) = call.await.expect("the edit runs");
            assert_eq!(status, 200, "round {round}: {body}");
        }
        let (_, stored) = ada.get("/data/Contact/1").await;
        assert_eq!(
            (&stored["company"], &stored["notes"], &stored["name"]),
            (
                &json!(format!("Co{round}")),
                &json!(format!("n{round}")),
                &json!(format!("Grace {round}"))
            ),
            "round {round}: an acknowledged field was lost"
        );
    }
}

// --- 3. canonical ids ----------------------------------------------------------------------

#[tokio::test]
async fn only_the_canonical_form_of_an_id_reaches_a_record() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    for name in ["One", "Two", "Three", "Four"] {
        ada.post("/data/Contact", contact(name, "+15550100199", "x"))
            .await;
    }
    for id in [
        "3.0", "%203", "3%20", "03", "+3", "3e0", "0x3", "3abc", "%2B3",
    ] {
        let path = format!("/data/Contact/{id}");
        let (status, body) = ada.get(&path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "GET {id}"
        );
        let (status, _) = ada.put(&path, json!({ "company": "Wrong" })).await;
        assert_eq!(status, 404, "PUT {id}");
        let (status, _) = ada.delete(&path).await;
        assert_eq!(status, 404, "DELETE {id}");
    }
    assert_eq!(count(&run.service, "contacts").await, 4);
    // Nothing was changed or audited under another name of a record.
    assert_eq!(
        column(&run.service, "SELECT record_id FROM audit ORDER BY id").await,
        ["1", "2", "3", "4"]
    );
    let (status, body) = ada
        .put("/data/Contact/3", json!({ "company": "Right" }))
        .await;
    assert_eq!((status, &body["id"]), (200, &json!(3)));
    assert_eq!(
        ada.delete("/data/Contact/4").await.1,
        json!({ "deleted": 4 })
    );
}

// --- 4. deleting a contact that other users wrote notes on --------------------------------

#[tokio::test]
async fn a_contact_with_another_users_notes_cannot_be_deleted_until_they_are_gone() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    ada.post("/data/Contact", contact("Grace", "+15550100199", "x"))
        .await;
    ada.post("/data/Note", json!({ "contact_id": 1, "body": "mine" }))
        .await;
    let (status, note) = bob
        .post("/data/Note", json!({ "contact_id": 1, "body": "bob's" }))
        .await;
    assert_eq!(status, 201, "{note}");

    let (status, body) = ada.delete("/data/Contact/1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1 note"),
        "{body}"
    );
    assert_eq!(count(&run.service, "contacts").await, 1);
    assert_eq!(count(&run.service, "notes").await, 2);
    assert_eq!(
        column(&run.service, "SELECT action FROM audit").await,
        ["create"]
    );

    // Once Bob has deleted his note, Ada's delete takes her own note with it.
    assert_eq!(bob.delete("/data/Note/2").await.0, 200);
    assert_eq!(ada.delete("/data/Contact/1").await.0, 200);
    assert_eq!(count(&run.service, "notes").await, 0);
}

// --- 5. a note racing the deletion of its contact ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_racing_the_deletion_of_its_contact_is_refused_with_a_4xx_never_a_500() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    for round in 0..40 {
        let (status, c) = ada
            .post("/data/Contact", contact("Grace", "+15550100199", "x"))
            .await;
        assert_eq!(status, 201, "{c}");
        let id = c["id"].as_i64().expect("an id");
        let note = tokio::spawn({
            let ada = ada.clone();
            async move {
                ada.post("/data/Note", json!({ "contact_id": id, "body": "hi" }))
                    .await
            }
        });
        let delete = tokio::spawn({
            let ada = ada.clone();
            async move { ada.delete(&format!("/data/Contact/{id}")).await }
        });
        let (note, delete) = (note.await.expect("runs"), delete.await.expect("runs"));
        assert!(
            [201, 400, 404, 409].contains(&note.0),
            "round {round}: note {note:?}"
        );
        assert_eq!(delete.0, 200, "round {round}: delete {delete:?}");
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notes WHERE contact_id NOT IN (SELECT id FROM contacts)",
    )
    .fetch_one(&run.service.app().pool)
    .await
    .expect("the count runs");
    assert_eq!(orphans, 0);
}

// --- 6. queries too large or malformed -----------------------------------------------------

#[tokio::test]
async fn an_oversized_or_malformed_query_is_a_400_that_says_why() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    ada.post("/data/Contact", contact("Grace", "+15550100199", "x"))
        .await;

    let many = vec!["vip = false"; 1001].join(" AND ");
    let long_sort = vec!["name"; 4000].join(",");
    // Over SQLite's own limit on a LIKE pattern (50,000 bytes).
    let long_text = format!("name LIKE '{}%'", "x".repeat(50_001));
    let cases: [(&str, String, &str); 4] = [
        ("where", many, "conditions"),
        ("sortBy", long_sort, "sort"),
        ("where", long_text, "characters"),
        ("sortBy", "name desc extra".into(), "extra"),
    ];
    for (param, value, says) in cases {
        let (status, body) = ada
            .get(&format!("/data/Contact?{param}={}", enc(&value)))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_query")),
            "{param}: {body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{param}: {message}");
        assert!(message.len() < 200, "{param}: {message}");
    }
    // Just under the caps is fine.
    let (status, found) = find(&ada, &["vip = false"; 32].join(" AND "), None).await;
    assert_eq!((status, names(&found)), (200, vec!["Grace".to_owned()]));
    let (status, _) = find(&ada, "vip = false", Some(&["name"; 10].join(","))).await;
    assert_eq!(status, 200);
    // Several `where` parameters add up to one clause, under the same cap.
    let half = enc(&["vip = false"; 20].join(" AND "));
    let (status, _) = ada
        .get(&format!("/data/Contact?where={half}&where={half}"))
        .await;
    assert_eq!(status, 400);
}

// --- 7. what error messages echo -----------------------------------------------------------

#[tokio::test]
async fn an_error_message_echoes_at_most_a_short_prefix_of_what_was_sent() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let long = "7".repeat(5000);
    let word = "a".repeat(5000);
    let paths = [
        format!("/data/Contact/{long}"),
        format!("/data/Contact/{word}"),
        format!("/data/{word}"),
        format!("/data/{word}/1"),
        format!("/data/Contact?where={word}%20=%201"),
        format!("/data/Contact?sortBy={word}"),
        format!("/data/Contact?pageSize={long}"),
        format!("/data/Contact?{word}=1"),
    ];
    for path in &paths {
        let (status, body) = ada.get(path).await;
        assert!((400..500).contains(&status), "{status} {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{body}");
        assert!(message.len() < 300, "{}: {message}", &path[..30]);
    }
    let (status, body) = ada
        .put(&format!("/data/Contact/{long}"), json!({ "name": "x" }))
        .await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap_or_default().len() < 300);
    let (status, body) = ada
        .post(
            "/data/Contact",
            json!({ "name": "x", "email": "x@y.io", word.clone(): 1 }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap_or_default().len() < 300);
}

#[tokio::test]
async fn every_error_message_and_its_log_line_quote_at_most_40_characters_of_the_input() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    ada.post("/data/Contact", contact("Ann", "+1 555 0100", ""))
        .await;
    let long = "x".repeat(50_000);
    let too_long = "x".repeat(41);
    let calls: Vec<(&Client, hyper::Method, String, Value)> = vec![
        // Malformed JSON: a string where an object goes, serde quoting all of it.
        (
            &ada,
            hyper::Method::POST,
            "/data/Contact".into(),
            json!(long),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/login".into(),
            json!(long),
        ),
        // An unknown key, backticks and all, in a login or a registration.
        (
            &anon,
            hyper::Method::POST,
            "/users/login".into(),
            json!({ "email": "a@b.io", "password": "p", long.clone(): 1 }),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/login".into(),
            json!({ "email": "a@b.io", "password": "p", format!("a`{long}"): 1 }),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/register".into(),
            json!({ "email": "a@b.io", "password": "long enough", "name": "A", long.clone(): 1 }),
        ),
        // A wrong type, in a record and in a bulk update's changes.
        (
            &ada,
            hyper::Method::POST,
            "/data/Contact".into(),
            json!({ "name": "A", "email": "a@b.io", "vip": long }),
        ),
        (
            &ada,
            hyper::Method::PUT,
            format!("/data/bulk/Contact?where={}", enc("id > 0")),
            json!({ "vip": long }),
        ),
        // Values the hooks refuse.
        (
            &ada,
            hyper::Method::POST,
            "/data/Contact".into(),
            json!({ "name": "A", "email": long }),
        ),
        (
            &ada,
            hyper::Method::POST,
            "/data/Contact".into(),
            json!({ "name": "A", "email": "a@b.io", "phone": format!("12{long}") }),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/register".into(),
            json!({ "email": long, "password": "long enough", "name": "A" }),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/password-reset".into(),
            json!({ "email": long }),
        ),
        (
            &anon,
            hyper::Method::POST,
            "/users/register".into(),
            json!({ "email": format!("y@{}.mailinator.com", "x".repeat(200)),
                    "password": "long enough", "name": "A" }),
        ),
    ];
    for (client, method, path, body) in calls {
        let (status, answer) = client.send(method.clone(), &path, Some(body)).await;
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{method} {path}: {answer}");
        assert!(
            !message.contains(&too_long) && message.len() < 300,
            "{method} {path}: {} bytes: {}",
            message.len(),
            &message[..200.min(message.len())]
        );
    }
}

// --- 8. a busy database --------------------------------------------------------------------

#[tokio::test]
async fn a_write_held_off_past_the_busy_timeout_is_a_503_busy_with_a_retry_hint() {
    use sqlx::Connection;
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    // Another writer of the same file (another process, say) holds the write lock.
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

    let body = contact("Grace", "+1 555 0100", "").to_string().into_bytes();
    let r = ada
        .raw(hyper::Method::POST, "/data/Contact", &[], body.clone())
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("busy")),
        "{:?}",
        r.json()
    );
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // Sent again once the lock is free, it goes through.
    let r = ada
        .raw(hyper::Method::POST, "/data/Contact", &[], body)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(count(&run.service, "contacts").await, 1);
}

#[tokio::test]
async fn a_call_that_finds_every_connection_taken_is_a_503_busy_within_seconds() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    // Every connection of the pool is taken (by long calls, say) and none comes back.
    let pool = &run.service.app().pool;
    let mut held = Vec::new();
    while let Ok(Some(conn)) = tokio::time::timeout(Duration::from_millis(200), pool.acquire())
        .await
        .map(Result::ok)
    {
        held.push(conn);
    }
    assert!(!held.is_empty());
    let started = std::time::Instant::now();
    let r = ada
        .raw(hyper::Method::GET, "/data/Contact", &[], Vec::new())
        .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (503, Some("busy")),
        "{:?}",
        r.json()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    let r = ada
        .raw(hyper::Method::GET, "/data/Contact", &[], Vec::new())
        .await;
    assert_eq!(r.status, 200);
}
