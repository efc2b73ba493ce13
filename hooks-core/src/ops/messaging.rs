//! Messaging: publish a message to a channel. The channel is the asset, so handlers subscribe to
//! one channel (`#[before_publish("chat")]`) or to all (`#[before_publish]`).

use std::collections::BTreeMap;

use crate::event::Operation;
use crate::table::SlotCache;

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

/// Publish a message to a channel.
///
/// A call runs the handlers of the message's channel and those of every channel: the message
/// names the channel, as a [`DynRecord`](crate::DynRecord) names its table.
pub struct Publish;

impl Operation for Publish {
    type Input = Message;
    type Output = Published;
    const NAME: &'static str = "messaging.publish";
    const ASSET: &'static str = "*";
    const DESCRIPTION: &'static str = "Publish a message to a channel.";
    const DYNAMIC: bool = true;
    const INPUT_NAMES_ASSET: bool = true;

    fn input_asset(input: &Message) -> Option<&str> {
        Some(&input.channel)
    }

    fn slot_cache() -> Option<&'static SlotCache> {
        static CACHE: SlotCache = SlotCache::new();
        Some(&CACHE)
    }
}

const _: () = {
    crate::__register_operation!(crate::event::OperationInfo {
        name: Publish::NAME,
        asset: "*",
        description: Publish::DESCRIPTION,
        input: "Message",
        output: "Published",
    });
};
