//! Use case: **a notification on a condition.** When a contact is created as a VIP, or an update
//! makes it one, an after handler writes a message to the `outbox` table, in the call's
//! transaction, for a mailer or queue to deliver.
//!
//! These are blocking after handlers on purpose, not background ones: the message is part of the
//! all-or-nothing write (a change and its message commit together, or neither does), so it must
//! be written inside the call's transaction, before the commit. It is one row; the caller hardly
//! waits. Delivering the message to the outside world is a separate job, which reads the outbox.
//!
//! Bulk calls notify as single ones do: one message for each VIP a bulk create adds, and one for
//! each contact a bulk update makes a VIP (the audit's [`bulk_updated`] pairs tell which).

use hooks::prelude::*;
use serde_json::{Value, json};

use crate::db::{self, now_ms};
use crate::handlers::audit::{Original, bulk_updated};
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

/// Whether a change from `before` (if it was stored) to `after` makes the contact a VIP.
pub fn becomes_vip(before: Option<&Contact>, after: &Contact) -> bool {
    after.vip && !before.is_some_and(|b| b.vip)
}

/// Tell the team when a contact becomes a VIP (not on every change of one).
#[after_update("Contact")]
pub async fn notify_promoted_vip(contact: &mut Contact, ctx: &Context) -> Result<(), HookError> {
    let original = ctx.state::<Original<Contact>>().map(|o| o.0);
    if becomes_vip(original.as_ref(), contact) {
        enqueue(ctx, VIP_TOPIC, &vip_message(contact)).await?;
    }
    Ok(())
}

/// Tell the team of each VIP a bulk create adds.
#[after_bulk_create("Contact")]
pub async fn notify_new_vips(contacts: &mut Vec<Contact>, ctx: &Context) -> Result<(), HookError> {
    for contact in contacts {
        notify_new_vip(contact, ctx).await?;
    }
    Ok(())
}

/// Tell the team of each contact a bulk update makes a VIP.
#[after_bulk_update("Contact")]
pub async fn notify_promoted_vips(
    _affected: &mut Affected<Contact>,
    ctx: &Context,
) -> Result<(), HookError> {
    for (original, stored) in bulk_updated::<Contact>(ctx).await?.0.iter() {
        if becomes_vip(Some(original), stored) {
            enqueue(ctx, VIP_TOPIC, &vip_message(stored)).await?;
        }
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

    #[test]
    fn a_contact_becomes_a_vip_when_it_is_one_now_and_was_not_before() {
        let vip = Contact {
            vip: true,
            ..Contact::default()
        };
        let plain = Contact::default();
        assert!(becomes_vip(None, &vip));
        assert!(becomes_vip(Some(&plain), &vip));
        assert!(!becomes_vip(Some(&vip), &vip));
        assert!(!becomes_vip(Some(&vip), &plain));
        assert!(!becomes_vip(None, &plain));
    }

    #[tokio::test]
    async fn a_bulk_create_queues_one_message_per_new_vip() {
        let app = testing::app(Config::for_tests()).await;
        let (ctx, work) = testing::ctx(&app, Some("1"));
        let vip = Contact {
            vip: true,
            ..Contact::default()
        };
        let mut contacts = vec![vip.clone(), Contact::default(), vip];
        notify_new_vips(&mut contacts, &ctx).await.unwrap();
        work.finish(Ok(())).await.unwrap();
        assert_eq!(outbox(&app).await, [VIP_TOPIC, VIP_TOPIC]);
    }
}
