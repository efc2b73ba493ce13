//! The bulk routes end to end (`POST`, `PUT` and `DELETE /data/bulk/{table}`), over real HTTP:
//! one test per rule, and every rule of a single create, update or delete held by the bulk ones
//! too: validation of each record, injected properties, only the caller's own records, the 409
//! of a contact with another user's notes, the audit, the VIP message, the webhook, the shaped
//! answer; and the bulk routes' own limits.

mod support;

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use support::{Client, column, count, enc, start, start_with, stub};

fn contact(name: &str) -> Value {
    json!({ "name": name, "email": format!("{}@example.com", name.to_lowercase()) })
}

fn grace() -> Value {
    json!({
        "name": "  Grace   Hopper ",
        "email": " GRACE@Navy.MIL ",
        "phone": "+1 (555) 010-0199",
        "company": "US Navy",
        "notes": "compiler pioneer",
    })
}

/// `PUT /data/bulk/{table}?where={clause}` with `changes`.
async fn bulk_update(client: &Client, table: &str, clause: &str, changes: Value) -> (u16, Value) {
    let path = format!("/data/bulk/{table}?where={}", enc(clause));
    client.put(&path, changes).await
}

/// `DELETE /data/bulk/{table}?where={clause}`.
async fn bulk_delete(client: &Client, table: &str, clause: &str) -> (u16, Value) {
    let path = format!("/data/bulk/{table}?where={}", enc(clause));
    client.delete(&path).await
}

/// Create `contacts` in one bulk call, which must succeed.
async fn created(client: &Client, contacts: Value) -> Vec<Value> {
    let (status, body) = client.post("/data/bulk/Contact", contacts).await;
    assert_eq!(status, 201, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

fn keys(record: &Value) -> Vec<String> {
    record
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

// --- bulk create ---------------------------------------------------------------------------

#[tokio::test]
async fn a_bulk_create_answers_each_record_as_a_single_create_does_whatever_was_sent() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let (status, single) = ada.post("/data/Contact", grace()).await;
    assert_eq!(status, 201, "{single}");
    let mut sneaky = grace();
    sneaky["id"] = json!(99);
    sneaky["owner"] = json!("someone else");
    sneaky["created"] = json!(1);
    sneaky["updated"] = json!(1);
    let batch = created(&ada, json!([sneaky, contact("Ada")])).await;
    assert_eq!(batch.len(), 2);
    let (first, second) = (&batch[0], &batch[1]);
    // Stamped and normalised as a single create is, each record.
    assert_eq!((&first["id"], &second["id"]), (&json!(2), &json!(3)));
    assert_eq!(
        (&first["owner"], &second["owner"]),
        (&json!("1"), &json!("1"))
    );
    assert!(first["created"].as_i64().unwrap_or_default() > 1, "{first}");
    assert_eq!(first["created"], first["updated"]);
    assert!(second["created"].as_i64().is_some(), "{second}");
    // Shaped as a single create's answer: the same fields, the same values but the stamps.
    assert_eq!(keys(first), keys(&single));
    for field in keys(&single) {
        if !["id", "created", "updated"].contains(&field.as_str()) {
            assert_eq!(first[&field], single[&field], "{field}");
        }
    }
    assert_eq!(first["display_name"], "Grace Hopper (US Navy)");
    assert_eq!(second["display_name"], "Ada");
    // What the client read back is what was stored.
    let (_, stored) = ada.get("/data/Contact/2").await;
    assert_eq!(&stored, first);
}

#[tokio::test]
async fn a_bulk_create_with_one_invalid_record_creates_nothing() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let mut vip = contact("Vic");
    vip["vip"] = json!(true);
    let bad_email = json!({ "name": "Bob", "email": "not-an-email" });
    let (status, body) = ada
        .post("/data/bulk/Contact", json!([vip, bad_email, contact("Cy")]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({
            "status": 400,
            "code": "invalid_email",
            "message": "records[1]: `not-an-email` is not an email address",
        })
    );
    let nameless = json!({ "email": "x@example.com" });
    let (status, body) = ada
        .post("/data/bulk/Contact", json!([contact("Ada"), vip, nameless]))
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["message"].as_str()),
        (
            400,
            Some("rejected"),
            Some("records[2]: a contact needs a name")
        )
    );
    for table in ["contacts", "audit", "outbox"] {
        assert_eq!(count(&run.service, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_bulk_create_of_notes_checks_each_notes_contact_and_owns_each_note() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    created(&ada, json!([grace()])).await;
    let notes = json!([
        { "contact_id": 1, "body": "  call back " },
        { "contact_id": 9, "body": "who?" },
    ]);
    let (status, body) = ada.post("/data/bulk/Note", notes).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"], "records[1]: contact 9 does not exist",
        "{body}"
    );
    assert_eq!(count(&run.service, "notes").await, 0);
    let notes = json!([
        { "contact_id": 1, "body": "  call back ", "owner": "2" },
        { "contact_id": 1, "body": "sent the book" },
    ]);
    let (status, body) = ada.post("/data/bulk/Note", notes).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["body"], "call back");
    assert_eq!(
        (&body[0]["owner"], &body[1]["owner"]),
        (&json!("1"), &json!("1"))
    );
    assert_eq!(count(&run.service, "notes").await, 2);
}

#[tokio::test]
async fn a_bulk_create_takes_a_non_empty_array_of_at_most_the_configured_number_of_records() {
    let run = start_with(|c| c.bulk_max = 3).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let refused = [
        (json!([]), 400, "bad_request", "at least one record"),
        (contact("Ada"), 400, "bad_request", "JSON array"),
        (
            json!([contact("A"), contact("B"), contact("C"), contact("D")]),
            413,
            "too_many_records",
            "at most 3 records, not 4",
        ),
        (json!([contact("A"), 5]), 400, "bad_request", "records[1]: "),
        (
            json!([contact("A"), { "name": "B", "email": "b@x.io", "password_hash": "x" }]),
            400,
            "unknown_field",
            "records[1]: Contact has no field `password_hash`",
        ),
        (
            json!([{ "name": 5, "email": "a@x.io" }]),
            400,
            "bad_request",
            "records[0]: ",
        ),
    ];
    for (body, status, code, message) in refused {
        let (got, answer) = ada.post("/data/bulk/Contact", body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body} → {answer}"
        );
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{answer}"
        );
    }
    assert_eq!(count(&run.service, "contacts").await, 0);
    let batch = created(&ada, json!([contact("A"), contact("B"), contact("C")])).await;
    assert_eq!(batch.len(), 3);
}

#[tokio::test]
async fn a_bulk_create_over_the_body_limit_is_a_413_and_creates_nothing() {
    let run = start_with(|c| c.body_limit = 1024).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let many: Vec<Value> = (0..40).map(|i| contact(&format!("Contact{i}"))).collect();
    let r = ada
        .raw(
            Method::POST,
            "/data/bulk/Contact",
            &[],
            Value::from(many).to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload_too_large");
    assert_eq!(count(&run.service, "contacts").await, 0);
}

#[tokio::test]
async fn each_contact_of_a_bulk_create_is_audited_notified_and_posted_to_the_webhook() {
    let crm = stub(Duration::from_millis(50)).await;
    let url = crm.url.clone();
    let run = start_with(move |c| c.webhook_url = Some(url)).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let mut vips = [contact("Ann"), contact("Bea")];
    for vip in &mut vips {
        vip["vip"] = json!(true);
    }
    let [ann, bea] = vips;
    created(&ada, json!([ann, contact("Cy"), bea])).await;
    // A rejected batch is neither audited nor sent.
    let (status, _) = ada
        .post(
            "/data/bulk/Contact",
            json!([contact("Dan"), { "name": "E", "email": "bad" }]),
        )
        .await;
    assert_eq!(status, 400);

    assert_eq!(
        column(
            &run.service,
            "SELECT action || ' ' || user_id || ' ' || record_id FROM audit ORDER BY id"
        )
        .await,
        ["create 1 1", "create 1 2", "create 1 3"]
    );
    let messages = column(&run.service, "SELECT payload FROM outbox ORDER BY id").await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("ann@example.com"), "{messages:?}");
    assert!(messages[1].contains("bea@example.com"), "{messages:?}");
    // Stopping waits for the deliveries.
    run.service.stop().await.unwrap();
    let mut sent: Vec<String> = crm
        .seen()
        .iter()
        .map(|s| {
            s["contact"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        ["ann@example.com", "bea@example.com", "cy@example.com"]
    );
}

// --- bulk update ---------------------------------------------------------------------------

#[tokio::test]
async fn a_bulk_update_touches_only_the_callers_records() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    created(&ada, json!([contact("Ann"), contact("Cy")])).await;
    created(&bob, json!([contact("Bea")])).await;
    let clauses = [
        ("id > 0", 2),
        // Another user's records are never selected, however the clause names them.
        ("owner = '2'", 0),
        ("id = 3", 0),
        ("owner = '2' AND id = 3", 0),
        ("owner IS NOT NULL", 2),
    ];
    for (clause, n) in clauses {
        let (status, body) =
            bulk_update(&ada, "Contact", clause, json!({ "company": "Ada's" })).await;
        assert_eq!((status, body), (200, json!({ "updated": n })), "{clause}");
    }
    // A clause cannot escape the narrowing with OR: it is not in the language.
    let (status, body) =
        bulk_update(&ada, "Contact", "id = 3 OR id > 0", json!({ "vip": true })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
    let (_, bea) = bob.get("/data/Contact/3").await;
    assert_eq!(
        (&bea["company"], &bea["vip"]),
        (&Value::Null, &json!(false))
    );
    assert_eq!(
        column(
            &run.service,
            "SELECT DISTINCT record_id FROM audit WHERE action = 'update' ORDER BY record_id"
        )
        .await,
        ["1", "2"]
    );
}

#[tokio::test]
async fn a_bulk_update_or_delete_without_a_where_is_a_400_and_changes_nothing() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    created(&ada, json!([contact("Ann"), contact("Cy")])).await;
    let (status, body) = ada.put("/data/bulk/Contact", json!({ "vip": true })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("`where`"),
        "{body}"
    );
    let (status, body) = ada.delete("/data/bulk/Contact").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
    let refused = [
        (
            "/data/bulk/Contact?where=",
            json!({ "vip": true }),
            "bad_query",
        ),
        (
            "/data/bulk/Contact?where=id%20%3E%200",
            json!({}),
            "bad_request",
        ),
        (
            "/data/bulk/Contact?where=id%20%3E%200",
            json!([{ "vip": true }]),
            "bad_request",
        ),
        (
            "/data/bulk/Contact?where=id%20%3E%200&sortBy=name",
            json!({ "vip": true }),
            "bad_query",
        ),
        (
            "/data/bulk/Contact?where=id%20%3E%200",
            json!({ "vip": true, "password_hash": "x" }),
            "unknown_field",
        ),
        (
            "/data/bulk/Contact?where=id%20%3E%200",
            json!({ "display_name": "x" }),
            "unknown_field",
        ),
    ];
    for (path, changes, code) in refused {
        let (status, body) = ada.put(path, changes.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{path} {changes}: {body}"
        );
    }
    assert_eq!(ada.delete("/data/bulk/Contact?where=").await.0, 400);
    assert_eq!(count(&run.service, "contacts").await, 2);
    assert_eq!(
        column(&run.service, "SELECT DISTINCT action FROM audit").await,
        ["create"]
    );
    assert_eq!(count(&run.service, "outbox").await, 0);
}

#[tokio::test]
async fn a_bulk_update_keeps_what_a_single_update_keeps_and_normalises_what_it_changes() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let before = created(&ada, json!([contact("Ann"), contact("Cy")])).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let sneaky = json!({
        "id": 77,
        "owner": "2",
        "created": 1,
        "updated": 1,
        "email": "  NEW@Example.COM ",
        "company": "  Analytical   Engines ",
        "phone": "+44 (20) 7946-0958",
    });
    let (status, body) = bulk_update(&ada, "Contact", "id > 0", sneaky).await;
    assert_eq!((status, body), (200, json!({ "updated": 2 })));
    for old in &before {
        let (_, now) = ada.get(&format!("/data/Contact/{}", old["id"])).await;
        assert_eq!(
            (&now["id"], &now["owner"], &now["created"]),
            (&old["id"], &json!("1"), &old["created"]),
            "{now}"
        );
        assert!(now["updated"].as_i64() > old["updated"].as_i64(), "{now}");
        assert_eq!(now["email"], "new@example.com");
        assert_eq!(now["company"], "Analytical Engines");
        assert_eq!(now["phone"], "+442079460958");
        assert_eq!(now["name"], old["name"]);
    }
}

#[tokio::test]
async fn a_bulk_update_that_breaks_a_rule_is_rejected_naming_the_record_and_changes_nothing() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    created(&ada, json!([contact("Ann"), contact("Cy")])).await;
    let (status, body) = bulk_update(
        &ada,
        "Contact",
        "id > 0",
        json!({ "email": "nope", "vip": true }),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({
                "status": 400,
                "code": "invalid_email",
                "message": "Contact 1: `nope` is not an email address",
            })
        )
    );
    let (status, body) =
        bulk_update(&ada, "Contact", "name = 'Cy'", json!({ "phone": "12" })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("rejected")));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Contact 2: "),
        "{body}"
    );
    let (status, body) = bulk_update(&ada, "Contact", "id > 0", json!({ "vip": "yes" })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field")),
        "{body}"
    );
    let (_, all) = ada.get("/data/Contact").await;
    for c in all.as_array().into_iter().flatten() {
        assert_eq!(
            (&c["vip"], &c["phone"]),
            (&json!(false), &Value::Null),
            "{c}"
        );
        assert!(
            c["email"]
                .as_str()
                .unwrap_or_default()
                .ends_with("@example.com")
        );
    }
    assert_eq!(
        column(&run.service, "SELECT DISTINCT action FROM audit").await,
        ["create"]
    );
    assert_eq!(count(&run.service, "outbox").await, 0);
}

#[tokio::test]
async fn a_bulk_update_audits_each_changed_contact_and_tells_of_each_new_vip() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let mut ann = contact("Ann");
    ann["vip"] = json!(true);
    created(&ada, json!([ann, contact("Bea"), contact("Cy")])).await;
    assert_eq!(
        count(&run.service, "outbox").await,
        1,
        "Ann was created a VIP"
    );
    let (status, body) = bulk_update(
        &ada,
        "Contact",
        "name != 'Cy'",
        json!({ "vip": true, "company": "Yale" }),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "updated": 2 })));
    let rows = column(
        &run.service,
        "SELECT record_id || ' ' || changes FROM audit WHERE action = 'update' ORDER BY record_id",
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let changes = |row: &str| -> Value {
        serde_json::from_str(row.split_once(' ').map_or("", |(_, c)| c)).unwrap_or_default()
    };
    assert!(
        rows[0].starts_with("1 ") && rows[1].starts_with("2 "),
        "{rows:?}"
    );
    assert_eq!(
        changes(&rows[0]),
        json!({ "company": { "from": null, "to": "Yale" } }),
        "Ann was a VIP already"
    );
    assert_eq!(
        changes(&rows[1]),
        json!({
            "company": { "from": null, "to": "Yale" },
            "vip": { "from": false, "to": true },
        })
    );
    // One message more: Bea became a VIP; Ann already was one.
    let messages = column(&run.service, "SELECT payload FROM outbox ORDER BY id").await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[1].contains("bea@example.com"), "{messages:?}");
}

#[tokio::test]
async fn a_bulk_update_of_notes_touches_only_the_callers_and_keeps_each_notes_contact_real() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    created(&ada, json!([contact("Ann")])).await;
    let notes = json!([{ "contact_id": 1, "body": "one" }, { "contact_id": 1, "body": "two" }]);
    assert_eq!(ada.post("/data/bulk/Note", notes).await.0, 201);
    assert_eq!(
        bob.post("/data/Note", json!({ "contact_id": 1, "body": "bob's" }))
            .await
            .0,
        201
    );
    let (status, body) = bulk_update(&ada, "Note", "id > 0", json!({ "contact_id": 9 })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("rejected")));
    assert_eq!(body["message"], "Note 1: contact 9 does not exist");
    let (status, body) = bulk_update(
        &ada,
        "Note",
        "id > 0",
        json!({ "body": "  seen ", "owner": "2" }),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "updated": 2 })));
    assert_eq!(
        column(
            &run.service,
            "SELECT owner || ' ' || body FROM notes ORDER BY id"
        )
        .await,
        ["1 seen", "1 seen", "2 bob's"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_update_racing_a_bulk_update_never_undoes_it() {
    let run = start().await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    created(&ada, json!([contact("Ann")])).await;
    for round in 0..20 {
        let vip = round % 2 == 0;
        let company = format!("Round {round}");
        let single = tokio::spawn({
            let ada = ada.clone();
            let company = company.clone();
            async move {
                ada.put("/data/Contact/1", json!({ "company": company }))
                    .await
            }
        });
        let bulk = tokio::spawn({
            let ada = ada.clone();
            async move { bulk_update(&ada, "Contact", "id = 1", json!({ "vip": vip })).await }
        });
        let (single, bulk) = (single.await.expect("runs"), bulk.await.expect("runs"));
        assert_eq!(bulk, (200, json!({ "updated": 1 })), "round {round}");
        assert!([200, 409].contains(&single.0), "round {round}: {single:?}");
        let (_, now) = ada.get("/data/Contact/1").await;
        assert_eq!(now["vip"], vip, "round {round}: the bulk update stands");
        if single.0 == 200 {
            assert_eq!(
                now["company"], company,
                "round {round}: so does the single one"
            );
        }
    }
}

// --- bulk delete ---------------------------------------------------------------------------

#[tokio::test]
async fn a_bulk_delete_touches_only_the_callers_records() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    created(&ada, json!([contact("Ann"), grace()])).await;
    created(&bob, json!([contact("Bea")])).await;
    for clause in ["owner = '2'", "id = 3", "name = 'Bea'"] {
        let (status, body) = bulk_delete(&ada, "Contact", clause).await;
        assert_eq!((status, body), (200, json!({ "deleted": 0 })), "{clause}");
    }
    let (status, body) = bulk_delete(&ada, "Contact", "id = 3 OR id > 0").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
    let (status, body) = bulk_delete(&ada, "Contact", "id > 0").await;
    assert_eq!((status, body), (200, json!({ "deleted": 2 })));
    assert_eq!(
        column(&run.service, "SELECT name FROM contacts").await,
        ["Bea"]
    );
    // One audit row per deleted contact, with the fields it had.
    let rows = column(
        &run.service,
        "SELECT user_id || ' ' || record_id || ' ' || changes FROM audit WHERE action = 'delete' ORDER BY record_id",
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("1 1 ") && rows[1].starts_with("1 2 "),
        "{rows:?}"
    );
    assert!(
        rows[1].contains(r#""email":{"from":"grace@navy.mil","to":null}"#),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_bulk_delete_of_a_contact_with_another_users_notes_is_a_409_and_deletes_nothing() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    created(&ada, json!([contact("Ann"), contact("Cy")])).await;
    assert_eq!(
        ada.post("/data/Note", json!({ "contact_id": 1, "body": "mine" }))
            .await
            .0,
        201
    );
    assert_eq!(
        bob.post("/data/Note", json!({ "contact_id": 2, "body": "bob's" }))
            .await
            .0,
        201
    );
    let (status, body) = bulk_delete(&ada, "Contact", "id > 0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("contact 2 has 1 note by other users"),
        "{body}"
    );
    assert_eq!(count(&run.service, "contacts").await, 2);
    assert_eq!(count(&run.service, "notes").await, 2);
    assert_eq!(
        column(&run.service, "SELECT DISTINCT action FROM audit").await,
        ["create"]
    );
    // Once Bob's note is gone, the bulk delete takes Ada's contacts with her own note.
    assert_eq!(bob.delete("/data/Note/2").await.0, 200);
    let (status, body) = bulk_delete(&ada, "Contact", "id > 0").await;
    assert_eq!((status, body), (200, json!({ "deleted": 2 })));
    assert_eq!(count(&run.service, "notes").await, 0);
}

// --- the bound on what a bulk update or delete selects ---------------------------------------

#[tokio::test]
async fn a_bulk_update_or_delete_of_more_than_bulk_max_records_is_a_413_and_changes_nothing() {
    let run = start_with(|c| c.bulk_max = 2).await;
    let anon = Client::new(&run.service);
    let ada = anon.sign_up("ada@example.com").await;
    let bob = anon.sign_up("bob@example.com").await;
    created(&ada, json!([contact("Ann"), contact("Bea")])).await;
    created(&ada, json!([contact("Cy")])).await;
    created(&bob, json!([contact("Dan"), contact("Eve")])).await;
    let audited = count(&run.service, "audit").await;

    let (status, body) = bulk_update(&ada, "Contact", "id > 0", json!({ "vip": true })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_many_records")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("at most 2") && message.contains("selects 3"),
        "{message}"
    );
    let (status, body) = bulk_delete(&ada, "Contact", "id > 0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_many_records")),
        "{body}"
    );
    assert_eq!(count(&run.service, "contacts").await, 5);
    assert_eq!(count(&run.service, "audit").await, audited);
    assert!(
        column(&run.service, "SELECT name FROM contacts WHERE vip = 1")
            .await
            .is_empty()
    );

    // Only the caller's records count: Bob's two are within the bound whatever Ada has.
    let (status, body) = bulk_update(&bob, "Contact", "id > 0", json!({ "vip": true })).await;
    assert_eq!((status, body), (200, json!({ "updated": 2 })));
    // And a narrower clause goes through.
    let (status, body) = bulk_delete(&ada, "Contact", "name != 'Cy'").await;
    assert_eq!((status, body), (200, json!({ "deleted": 2 })));
}

#[tokio::test]
async fn a_bulk_update_or_delete_of_notes_is_bounded_by_bulk_max_too() {
    let run = start_with(|c| c.bulk_max = 2).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    created(&ada, json!([contact("Ann")])).await;
    let note = json!({ "contact_id": 1, "body": "hi" });
    let (status, body) = ada
        .post("/data/bulk/Note", json!([note.clone(), note.clone()]))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(ada.post("/data/Note", note).await.0, 201);
    let (status, body) = bulk_update(&ada, "Note", "id > 0", json!({ "body": "x" })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_many_records"))
    );
    let (status, body) = bulk_delete(&ada, "Note", "id > 0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_many_records"))
    );
    assert_eq!(count(&run.service, "notes").await, 3);
}

// --- the routes themselves -----------------------------------------------------------------

#[tokio::test]
async fn the_bulk_routes_need_a_token_a_known_table_and_their_own_methods() {
    let run = start().await;
    let anon = Client::new(&run.service);
    let (status, body) = anon
        .post("/data/bulk/Contact", json!([contact("Ann")]))
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(bulk_delete(&anon, "Contact", "id > 0").await.0, 401);
    let ada = anon.sign_up("ada@example.com").await;
    let (status, body) = ada
        .post("/data/bulk/Secrets", json!([contact("Ann")]))
        .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        bulk_update(&ada, "users", "id > 0", json!({ "name": "x" }))
            .await
            .0,
        404
    );
    let (status, body) = ada.get("/data/bulk/Contact").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn with_no_hooks_a_bulk_call_runs_its_default_only_and_still_needs_a_where() {
    let run = start_with(|c| c.no_hooks = true).await;
    let ada = Client::new(&run.service).sign_up("ada@example.com").await;
    let sent = json!([{ "name": "  Bob ", "email": "not-an-email", "owner": "someone else" }]);
    let batch = created(&ada, sent).await;
    assert_eq!(
        (&batch[0]["name"], &batch[0]["email"], &batch[0]["owner"]),
        (
            &json!("  Bob "),
            &json!("not-an-email"),
            &json!("someone else")
        )
    );
    // The `where` rule is the route's own, not a hook's.
    assert_eq!(
        ada.put("/data/bulk/Contact", json!({ "vip": true }))
            .await
            .0,
        400
    );
    let (status, body) = bulk_update(&ada, "Contact", "id > 0", json!({ "vip": true })).await;
    assert_eq!((status, body), (200, json!({ "updated": 1 })));
    assert_eq!(count(&run.service, "audit").await, 0);
}
