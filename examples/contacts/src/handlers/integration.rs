//! Use case: **integrating with a third-party service.** Every new contact is sent to a CRM: an
//! HTTP POST of JSON to the configured endpoint (`--webhook`). The after handler only queues the
//! call on the unit of work; the service makes it once the create has committed, in the
//! background, so the caller never waits for the third party and the third party never hears of
//! a contact that was rolled back. A failed delivery is logged.
//!
//! The framework has no background handlers yet; [`crate::work`] stands in for them.

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::handlers::{app, work};
use crate::http;
use crate::model::Contact;

/// The event name sent with a new contact.
pub const CONTACT_CREATED: &str = "contact.created";

/// POST `payload` to `url`, logging the outcome.
pub async fn deliver(url: String, payload: Value) {
    match http::post_json(&url, &payload).await {
        Ok(r) if (200..300).contains(&r.status) => {
            tracing::info!(%url, status = r.status, "webhook delivered");
        }
        Ok(r) => tracing::warn!(%url, status = r.status, "webhook refused"),
        Err(e) => tracing::warn!(%url, error = %e, "webhook failed"),
    }
}

/// Send every new contact to the CRM, once the create has committed.
#[after_create("Contact")]
pub fn sync_new_contact_to_crm(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let Some(url) = app(ctx)?.config.webhook_url.clone() else {
        return Ok(());
    };
    let payload = json!({ "event": CONTACT_CREATED, "contact": contact });
    work(ctx)?.after_commit(deliver(url, payload));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;

    #[tokio::test]
    async fn a_new_contact_is_sent_only_after_the_commit() {
        // A one-shot stub of the third party on a free loopback port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/crm", listener.local_addr().unwrap());
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<Value>();
        let seen_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(seen_tx)));
        let stub = axum::Router::new().route(
            "/crm",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                if let Some(tx) = seen_tx.lock().unwrap().take() {
                    let _ = tx.send(v);
                }
                async { "ok" }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, stub).await });

        let app = testing::app(Config {
            webhook_url: Some(url),
            ..Config::for_tests()
        })
        .await;
        let mut contact = Contact {
            name: "Ada".into(),
            ..Contact::default()
        };
        // Rolled back: nothing is sent.
        let (ctx, work) = testing::ctx(&app, Some("1"));
        sync_new_contact_to_crm(&mut contact, &ctx).unwrap();
        let _ = work
            .finish::<()>(Err(HookError::rejected("no")), &app.background)
            .await;
        app.background.drain().await;
        // Committed: sent.
        let (ctx, work) = testing::ctx(&app, Some("1"));
        contact.name = "Bob".into();
        sync_new_contact_to_crm(&mut contact, &ctx).unwrap();
        work.finish(Ok(()), &app.background).await.unwrap();
        app.background.drain().await;
        let seen = seen_rx.await.unwrap();
        assert_eq!(seen["event"], CONTACT_CREATED);
        assert_eq!(seen["contact"]["name"], "Bob");
    }
}
