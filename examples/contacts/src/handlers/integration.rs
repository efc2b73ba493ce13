//! Use case: **integrating with a third-party service.** Every new contact is sent to a CRM: an
//! HTTP POST of JSON to the configured endpoint (`--webhook`), by a background handler
//! (`#[after_create("Contact", background)]`): the runtime queues it with its own copy of the
//! result and a detached context, and the caller never waits for the third party. A failed
//! delivery is an error the runtime logs and counts (the `errors` of the handler's history in
//! `GET /hooks`).
//!
//! Two things about when it runs:
//!
//! - The runtime queues it when `Hooks::run` returns, but the endpoint commits after that (the
//!   blocking after handlers write in the same transaction). So the handler first waits for the
//!   call's unit of work to end ([`crate::work::UnitOfWork::committed`]), sends nothing for a
//!   call that rolled back, and then reads the contact back by id: the CRM hears only of committed
//!   data, as stored (and nothing of a contact deleted in the meantime).
//! - Background handlers run on the hooks runtime's own worker thread, whose tokio runtime has
//!   timers but no I/O driver: a socket opened there panics ("IO is disabled"). So the database
//!   read and the HTTP call run on the service's runtime (`App::runtime`), and the handler awaits
//!   them, which keeps them inside the shutdown's wait.
//!
//! A bulk create sends each of its contacts as a single create sends it, one POST per contact
//! ([`sync_new_contacts_to_crm`]): the CRM's API takes one contact a call. The deliveries of one
//! batch run side by side, once the batch has committed.

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::App;
use crate::db;
use crate::handlers::{app, work};
use crate::http;
use crate::model::Contact;

/// The event name sent with a new contact.
pub const CONTACT_CREATED: &str = "contact.created";

/// POST `payload` to `url`; a refusal or a failure is an error.
pub async fn deliver(url: &str, payload: &Value) -> Result<(), HookError> {
    match http::post_json(url, payload).await {
        Ok(r) if (200..300).contains(&r.status) => {
            tracing::info!(%url, status = r.status, "webhook delivered");
            Ok(())
        }
        Ok(r) => Err(HookError::new(
            502,
            "webhook_refused",
            format!("{url} answered {}", r.status),
        )),
        Err(e) => Err(HookError::new(502, "webhook_failed", e)),
    }
}

/// Read the committed contact `id` and send it to `url`; nothing when it is gone.
async fn send_committed(app: App, id: Id, url: String) -> Result<(), HookError> {
    let mut conn = app.pool.acquire().await.map_err(db::error)?;
    let Some(contact) = db::get::<Contact>(&mut conn, &id).await? else {
        tracing::info!(%id, "contact deleted before its webhook: not sent");
        return Ok(());
    };
    drop(conn);
    deliver(
        &url,
        &json!({ "event": CONTACT_CREATED, "contact": contact }),
    )
    .await
}

/// Send every new contact to the CRM, once its create has committed.
#[after_create("Contact", background)]
pub async fn sync_new_contact_to_crm(contact: &Contact, ctx: &Context) -> Result<(), HookError> {
    let app = app(ctx)?;
    let (Some(url), Some(id)) = (app.config.webhook_url.clone(), contact.id.clone()) else {
        return Ok(());
    };
    if !work(ctx)?.committed().await {
        tracing::debug!(%id, "contact create rolled back: not sent");
        return Ok(());
    }
    app.runtime
        .spawn(send_committed(app.clone(), id, url))
        .await
        .map_err(|e| HookError::internal(format!("the webhook delivery stopped: {e}")))?
}

/// Send each contact of a bulk create to the CRM, once the batch has committed.
///
/// One POST per contact, as a single create sends one, all of them at once. A failed delivery
/// does not stop the others; the handler's error then says how many failed (and is counted in
/// its history).
#[after_bulk_create("Contact", background)]
pub async fn sync_new_contacts_to_crm(
    contacts: &[Contact],
    ctx: &Context,
) -> Result<(), HookError> {
    let app = app(ctx)?;
    let Some(url) = app.config.webhook_url.clone() else {
        return Ok(());
    };
    if !work(ctx)?.committed().await {
        tracing::debug!(count = contacts.len(), "bulk create rolled back: not sent");
        return Ok(());
    }
    let deliveries: Vec<_> = contacts
        .iter()
        .filter_map(|c| c.id.clone())
        .map(|id| {
            app.runtime
                .spawn(send_committed(app.clone(), id, url.clone()))
        })
        .collect();
    let mut failed: Vec<HookError> = Vec::new();
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(e),
            Err(e) => failed.push(HookError::internal(format!(
                "the webhook delivery stopped: {e}"
            ))),
        }
    }
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(HookError::new(
            first.status(),
            first.code().to_owned(),
            format!(
                "{} of {} deliveries failed; the first: {}",
                failed.len(),
                contacts.len(),
                first.message()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::db;
    use crate::handlers::testing;
    use hooks::testing::Chain;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A stub of the third party on a free loopback port: its URL, and the bodies it received.
    async fn crm() -> (String, Arc<Mutex<Vec<Value>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/crm", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
        let record = Arc::clone(&seen);
        let stub = axum::Router::new().route(
            "/crm",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                record.lock().unwrap().push(v);
                async { "ok" }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, stub).await });
        (url, seen)
    }

    #[tokio::test]
    async fn a_new_contact_is_sent_only_once_its_create_has_committed() {
        let (url, seen) = crm().await;
        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let chain = Chain::<ops::data::Create<Contact>>::only(&["sync_new_contact_to_crm"]);
        for (name, commit) in [("Ada", false), ("Bob", true)] {
            let (mut ctx, guard) = testing::ctx(&app, Some("1"));
            let w = work(&ctx).unwrap().clone();
            let contact = Contact {
                name: name.into(),
                ..Contact::default()
            };
            // The runtime queues the handler before the call's unit of work ends, as in the
            // service: the handler must wait for the outcome.
            let result = chain
                .run(&mut ctx, contact, |c| async move {
                    let mut tx = w.tx().await?;
                    db::insert(tx.conn()?, c).await
                })
                .await;
            assert!(result.is_ok());
            let result = if commit {
                result
            } else {
                Err(HookError::rejected("rolled back"))
            };
            let _ = guard.finish(result).await;
        }
        let hooks = chain.hooks().clone();
        let report = tokio::task::spawn_blocking(move || hooks.shutdown(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((report.queued, report.finished), (2, 2));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0]["event"], CONTACT_CREATED);
        assert_eq!(seen[0]["contact"]["name"], "Bob");
    }

    #[tokio::test]
    async fn each_contact_of_a_bulk_create_is_sent_once_the_batch_has_committed() {
        let (url, seen) = crm().await;
        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let chain = Chain::<ops::data::BulkCreate<Contact>>::only(&["sync_new_contacts_to_crm"]);
        for (batch, commit) in [(["Ann", "Bea"], false), (["Cy", "Dan"], true)] {
            let (mut ctx, guard) = testing::ctx(&app, Some("1"));
            let w = work(&ctx).unwrap().clone();
            let contacts = batch
                .iter()
                .map(|name| Contact {
                    name: (*name).into(),
                    ..Contact::default()
                })
                .collect();
            let result = chain
                .run(&mut ctx, contacts, |contacts| async move {
                    let mut tx = w.tx().await?;
                    let mut saved = Vec::new();
                    for c in contacts {
                        saved.push(db::insert(tx.conn()?, c).await?);
                    }
                    Ok(saved)
                })
                .await;
            assert!(result.is_ok());
            let result = if commit {
                result
            } else {
                Err(HookError::rejected("rolled back"))
            };
            let _ = guard.finish(result).await;
        }
        let hooks = chain.hooks().clone();
        let report = tokio::task::spawn_blocking(move || hooks.shutdown(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((report.queued, report.finished), (2, 2));
        let mut names: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["contact"]["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["Cy", "Dan"],
            "one POST per contact, of the committed batch only"
        );
    }
}
