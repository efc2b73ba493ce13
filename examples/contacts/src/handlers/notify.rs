//! Use case: **a notification on a condition.** When a contact is created as a VIP, or an update
//! makes it one, an after handler writes a message to the `outbox` table, in the call's
//! transaction, for a mailer or queue to deliver.
//!
//! These are blocking after handlers on purpose, not background ones: the message is part of the
//! all-or-nothing write (a change and its message commit together, or neither does), so it must
//! be written inside the call's transaction, before the commit. It is one row; the caller hardly
//! waits. Delivering the message to the outside world is a separate job, which reads the outbox.

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::db::{self, now_ms};
use crate::handlers::audit::Original;
use crate::handlers::work;
use crate::model::Contact;

/// The topic of the message sent when a contact becomes a VIP.
pub const VIP_TOPIC: &str = "contact.vip";

/// Write a message to the outbox, in the call's transaction.
pub async fn enqueue(ctx: &Context, topic: &str, payload: &Value) -> Result<(), HookError> {
    let mut tx = work(ctx)?.tx().await?;
    sqlx::query("INSERT INTO outbox (at, topic, payload) VALUES (?, ?, ?)")
        .bind(now_ms())
        .bind(topic)
        .bind(payload.to_string())
        .execute(tx.conn()?)
        .await
        .map_err(db::error)?;
    Ok(())
}

fn vip_message(contact: &Contact) -> Value {
    json!({
        "contact_id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "owner": contact.owner,
    })
}

/// Tell the team when a VIP is added.
#[after_create("Contact")]
pub async fn notify_new_vip(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    if contact.vip {
        enqueue(ctx, VIP_TOPIC, &vip_message(contact)).await?;
    }
    Ok(())
}

/// Tell the team when a contact becomes a VIP (not on every change of one).
#[after_update("Contact")]
pub async fn notify_promoted_vip(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let was_vip = ctx.state::<Original<Contact>>().is_some_and(|o| o.0.vip);
    if contact.vip && !was_vip {
        enqueue(ctx, VIP_TOPIC, &vip_message(contact)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::handlers::testing;

    async fn outbox(app: &crate::App) -> Vec<String> {
        sqlx::query_scalar("SELECT topic FROM outbox")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_message_is_queued_only_when_a_contact_becomes_a_vip() {
        let app = testing::app(Config::for_tests()).await;
        let vip = Contact {
            vip: true,
            ..Contact::default()
        };
        // Already a VIP: an update is not news.
        let (ctx, work) = testing::ctx(&app, Some("1"));
        ctx.set_state(Original(vip.clone()));
        notify_promoted_vip(&mut vip.clone(), &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        assert!(outbox(&app).await.is_empty());
        // Promoted: news.
        let (ctx, work) = testing::ctx(&app, Some("1"));
        ctx.set_state(Original(Contact::default()));
        notify_promoted_vip(&mut vip.clone(), &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        assert_eq!(outbox(&app).await, [VIP_TOPIC]);
        // Not a VIP at all.
        let (ctx, work) = testing::ctx(&app, Some("1"));
        notify_new_vip(&mut Contact::default(), &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        assert_eq!(outbox(&app).await.len(), 1);
    }
}
