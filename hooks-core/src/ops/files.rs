//! File operations: upload and delete. Handlers see the file's metadata: path, size, content type
//! and owner.

use crate::operation;

/// A file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    /// The path in the service's file store, such as `"avatars/ada.png"`.
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// The content type, such as `"image/png"`.
    pub content_type: String,
    /// The id of the owning user, when there is one.
    pub owner: Option<String>,
}

operation! {
    /// Upload a file.
    pub Upload: "files.upload" on "files", FileInfo => FileInfo
}

operation! {
    /// Delete a file.
    pub DeleteFile: "files.delete" on "files", FileInfo => FileInfo
}
