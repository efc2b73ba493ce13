//! The standard operations that handlers hook. Each is a marker type implementing
//! [`Operation`](crate::Operation); the attribute macros name them for you.
//!
//! | module | operations | attributes |
//! |---|---|---|
//! | [`data`] | create, update, delete, find, find by id; bulk create, update, delete | `before_create("Contact")`, `after_find("Contact")`, `before_bulk_update("Contact")`, ... |
//! | [`users`] | register, login, logout, password reset, update, delete | `before_register`, `after_login`, ... |
//! | [`files`] | upload, delete | `before_upload`, `after_file_delete`, ... |
//! | [`messaging`] | publish | `before_publish("chat")`, `after_publish` |
//! | [`events`] | custom events raised with `emit` | `on_event` |

pub mod data;
pub mod events;
pub mod files;
pub mod messaging;
pub mod users;
