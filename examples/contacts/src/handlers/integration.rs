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
//! ([`sync_new_contacts_to_crm`]): the CRM's API takes one contact a call. The deliveries run
//! inside the handler's own future, [`PARALLEL_DELIVERIES`] at a time ([`deliver_all`]): they
//! are tasks of a `JoinSet` the handler owns, spawned on the service's runtime for its I/O, so
//! when the handler is cut at its timeout they are aborted with it: none runs on detached, where its outcome would reach no one and shutdown would not wait for
//! it. Each failed delivery is logged with the contact's id; the handler's run then ends in an
//! error that says how many of its deliveries failed, counted in its history.
//!
//! Each handler has a timeout long enough for its deliveries: the HTTP client gives a request
//! 10 s ([`crate::http::post_json`]), so one contact takes at most that (`15s`), and a batch
//! of the default `--bulk-max` (100 contacts), 8 at a time, 13 rounds of 10 s (`150s`). A
//! batch cut short anyway (a larger `--bulk-max` and an endpoint that never answers) logs how
//! many of its deliveries it did not see end.

use hooks::prelude::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::App;
use crate::db;
use crate::handlers::{app, work};
use crate::http;
use crate::model::Contact;

/// The event name sent with a new contact.
pub const CONTACT_CREATED: &str = "contact.created";

/// The most deliveries of one batch that run at once.
pub const PARALLEL_DELIVERIES: usize = 8;

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

/// Logs, when a batch of deliveries is dropped before it has seen each of them end, how many it
/// did not: they were aborted with it.
struct Unfinished {
    left: usize,
    total: usize,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.left > 0 {
            tracing::error!(
                left = self.left,
                total = self.total,
                "webhook deliveries aborted before they ended (the handler was cut at its \
                 timeout): whether the endpoint got them is unknown"
            );
        }
    }
}

/// Send each committed contact of `ids` to `url`, at most [`PARALLEL_DELIVERIES`] at once, and
/// wait for every delivery; returns the failures, each logged as it comes.
///
/// The deliveries run on the service's runtime (`App::runtime`, which has the I/O driver that
/// the background worker lacks), as tasks of a `JoinSet` that this future owns: dropping the
/// future aborts them.
pub async fn deliver_all(app: &App, url: &str, ids: Vec<Id>) -> Vec<HookError> {
    let total = ids.len();
    let mut unfinished = Unfinished { left: total, total };
    let mut waiting = ids.into_iter();
    let mut running = JoinSet::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < PARALLEL_DELIVERIES {
            let Some(id) = waiting.next() else { break };
            let delivery = send_committed(app.clone(), id.clone(), url.to_owned());
            running.spawn_on(async move { (id, delivery.await) }, &app.runtime);
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        unfinished.left -= 1;
        let error = match done {
            Ok((_, Ok(()))) => continue,
            Ok((id, Err(e))) => {
                tracing::warn!(%id, code = e.code(), "webhook delivery failed: {:?}", e.message());
                e
            }
            Err(e) => {
                tracing::error!(error = %e, "a webhook delivery stopped");
                HookError::internal(format!("a webhook delivery stopped: {e}"))
            }
        };
        failed.push(error);
    }
    failed
}

/// The error of a run whose deliveries `failed`, of `total`: the first failure's status and
/// code, and how many failed.
fn failures(failed: Vec<HookError>, total: usize) -> Result<(), HookError> {
    match failed.first() {
        None => Ok(()),
        Some(first) if total == 1 => Err(first.clone()),
        Some(first) => Err(HookError::new(
            first.status(),
            first.code().to_owned(),
            format!(
                "{} of {total} deliveries failed; the first: {}",
                failed.len(),
                first.message()
            ),
        )),
    }
}

/// Send every new contact to the CRM, once its create has committed.
#[after_create("Contact", background, timeout = "15s")]
pub async fn sync_new_contact_to_crm(contact: &Contact, ctx: &Context) -> Result<(), HookError> {
    let app = app(ctx)?;
    let (Some(url), Some(id)) = (app.config.webhook_url.clone(), contact.id.clone()) else {
        return Ok(());
    };
    if !work(ctx)?.committed().await {
        tracing::debug!(%id, "contact create rolled back: not sent");
        return Ok(());
    }
    failures(deliver_all(app, &url, vec![id]).await, 1)
}

/// Send each contact of a bulk create to the CRM, once the batch has committed.
///
/// One POST per contact, as a single create sends one, 8 at a time, all inside this handler.
/// A failed delivery does not stop the others; it is logged, and the handler's error then says
/// how many failed (and is counted in its history).
#[after_bulk_create("Contact", background, timeout = "150s")]
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
    let ids: Vec<Id> = contacts.iter().filter_map(|c| c.id.clone()).collect();
    let total = ids.len();
    failures(deliver_all(app, &url, ids).await, total)
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

    /// What [`slow_crm`] saw: the requests that arrived, and the most it held at once.
    #[derive(Default)]
    struct Seen {
        arrived: usize,
        in_flight: usize,
        most_at_once: usize,
    }

    /// A stub of the third party that answers each request after `delay`: its URL and what it
    /// saw.
    async fn slow_crm(delay: Duration) -> (String, Arc<Mutex<Seen>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/crm", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = Arc::clone(&seen);
        let stub = axum::Router::new().route(
            "/crm",
            axum::routing::post(move || {
                let record = Arc::clone(&record);
                async move {
                    {
                        let mut seen = record.lock().unwrap();
                        seen.arrived += 1;
                        seen.in_flight += 1;
                        seen.most_at_once = seen.most_at_once.max(seen.in_flight);
                    }
                    tokio::time::sleep(delay).await;
                    record.lock().unwrap().in_flight -= 1;
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, stub).await });
        (url, seen)
    }

    /// `n` contacts of user 1, committed, and a context whose unit of work committed them.
    async fn committed_contacts(app: &crate::App, n: usize) -> (Vec<Contact>, Context) {
        let (ctx, guard) = testing::ctx(app, Some("1"));
        let mut saved = Vec::new();
        {
            let mut tx = work(&ctx).unwrap().tx().await.unwrap();
            for i in 0..n {
                let contact = Contact {
                    name: format!("C{i}"),
                    ..Contact::default()
                };
                saved.push(db::insert(tx.conn().unwrap(), contact).await.unwrap());
            }
        }
        guard.finish(Ok(())).await.unwrap();
        (saved, ctx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deliveries_of_a_bulk_create_run_at_most_a_few_at_a_time_and_all_end_in_the_handler()
     {
        let (url, seen) = slow_crm(Duration::from_millis(30)).await;
        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let n = 3 * PARALLEL_DELIVERIES;
        let (contacts, ctx) = committed_contacts(&app, n).await;
        sync_new_contacts_to_crm(&contacts, &ctx).await.unwrap();
        let seen = seen.lock().unwrap();
        // Every delivery ended inside the handler's run, and no more ran at once than allowed.
        assert_eq!((seen.arrived, seen.in_flight), (n, 0));
        assert!(
            (1..=PARALLEL_DELIVERIES).contains(&seen.most_at_once),
            "{} at once",
            seen.most_at_once
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bulk_webhook_cut_at_its_timeout_leaves_no_delivery_running() {
        let (url, seen) = slow_crm(Duration::from_millis(300)).await;
        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let n = 3 * PARALLEL_DELIVERIES;
        let (contacts, ctx) = committed_contacts(&app, n).await;
        // What the runtime does to a handler at its timeout: drop its future.
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            sync_new_contacts_to_crm(&contacts, &ctx),
        )
        .await;
        assert!(cut.is_err(), "the handler was still delivering");
        // Long enough for detached deliveries to have reached the endpoint, wave after wave.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let arrived = seen.lock().unwrap().arrived;
        assert!(
            arrived <= PARALLEL_DELIVERIES,
            "{arrived} deliveries went on after the handler was cut"
        );
    }

    #[tokio::test]
    async fn each_failed_delivery_of_a_batch_is_counted_in_the_handlers_error() {
        // An endpoint that is not there: a port that was free a moment ago.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/crm", closed.local_addr().unwrap());
        drop(closed);
        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let (contacts, ctx) = committed_contacts(&app, 3).await;
        let err = sync_new_contacts_to_crm(&contacts, &ctx).await.unwrap_err();
        assert_eq!(err.code(), "webhook_failed");
        assert!(
            err.message().starts_with("3 of 3 deliveries failed"),
            "{err}"
        );
        let err = sync_new_contact_to_crm(&contacts[0], &ctx)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "webhook_failed");
    }

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
