//! Messaging: publish a message to a channel. The channel is the asset, so handlers subscribe to
//! one channel (`#[before_publish("chat")]`) or to all (`#[before_publish]`).

use std::collections::BTreeMap;

use crate::operation;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// The channel, such as `"chat"`.
    pub channel: String,
    /// The message body.
    pub body: serde_json::Value,
    /// Headers, such as a sender id.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// What publishing returns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// The channel the message went to.
    pub channel: String,
    /// The message's id.
    pub message_id: String,
}

operation! {
    /// Publish a message to a channel.
    pub Publish: "messaging.publish", Message => Published
}
