//! Errors: [`HookError`], what a handler or the runtime returns to the caller, and [`TableError`], what
//! building the dispatch table reports.
//!
//! A [`HookError`] carries an HTTP-like status, a machine-readable code and a human message. The
//! dispatcher never rewrites one: the caller sees exactly what the handler returned.

use std::borrow::Cow;
use std::fmt;

/// The error a handler (or the runtime) returns: an HTTP-like status, a machine code and a message.
///
/// ```
/// use hooks_core::HookError;
///
/// let e = HookError::rejected("email is required");
/// assert_eq!(e.status(), 400);
/// assert_eq!(e.code(), "rejected");
/// assert_eq!(e.message(), "email is required");
/// ```
///
/// A `HookError` is one pointer wide (its parts live in a box), so `Result<T, HookError>` stays
/// small and handlers that succeed pay nothing for the error they did not return.
///
/// Read back from JSON (`{"status": 404, "code": "...", "message": "..."}`), it is made as
/// [`HookError::new`] makes it, its status checked the same way.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "Parts", into = "Parts")]
pub struct HookError {
    inner: Box<Parts>,
}

/// The status of an error made with one that is not an HTTP error status: 500, with a warning.
#[cold]
#[inline(never)]
fn not_an_error_status(status: u16) -> u16 {
    tracing::warn!(
        status,
        "a HookError's status must be an HTTP error status (400 to 599): 500 is used instead"
    );
    500
}

impl From<Parts> for HookError {
    fn from(parts: Parts) -> Self {
        HookError::new(parts.status, parts.code, parts.message)
    }
}

impl From<HookError> for Parts {
    fn from(e: HookError) -> Self {
        *e.inner
    }
}

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
struct Parts {
    status: u16,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl HookError {
    /// An error with an explicit status, code and message. A status outside `400..=599` is
    /// replaced by 500, so the error always maps to an HTTP error response (a 2xx or 3xx
    /// "error" would reach a client as a success or a redirect with an error's body).
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            not_an_error_status(status)
        };
        HookError {
            inner: Box::new(Parts {
                status,
                code: code.into(),
                message: message.into(),
            }),
        }
    }

    /// A handler refused the call (400, code `rejected`): the usual way a before handler says no.
    pub fn rejected(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, "rejected", message)
    }

    /// The input is malformed (400, code `bad_request`).
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// The caller is not authenticated (401, code `unauthorized`).
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    /// The caller may not do this (403, code `forbidden`).
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// The addressed record does not exist (404, code `not_found`).
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// The call conflicts with the current state (409, code `conflict`).
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(409, "conflict", message)
    }

    /// The payload is over a size limit (413, code `payload_too_large`).
    pub fn payload_too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(413, "payload_too_large", message)
    }

    /// Something went wrong on the server side (500, code `internal`).
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The HTTP-like status, always within `400..=599`.
    pub fn status(&self) -> u16 {
        self.inner.status
    }

    /// The machine-readable code, such as `rejected` or `not_found`.
    pub fn code(&self) -> &str {
        &self.inner.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HookError({} {}: {})",
            self.status(),
            self.code(),
            self.message()
        )
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.message(), self.status(), self.code())
    }
}

impl std::error::Error for HookError {}

impl From<std::convert::Infallible> for HookError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// One thing wrong with the set of registered handlers, naming the handler and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{handler} ({file}:{line}): {problem}")]
pub struct TableProblem {
    /// The handler's id (module path and function name).
    pub handler: String,
    /// The source file of the handler.
    pub file: String,
    /// The line of the handler's attribute.
    pub line: u32,
    /// What is wrong, and how to fix it.
    pub problem: String,
}

/// Building the dispatch table failed: every offending handler is listed, none is dropped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// Every problem found, in a stable order.
    pub problems: Vec<TableProblem>,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the hook table has {} problem(s):", self.problems.len())?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TableError {}

impl From<TableError> for HookError {
    fn from(e: TableError) -> Self {
        HookError::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_outside_the_http_error_range_becomes_500() {
        for status in [0, 42, 100, 200, 204, 304, 399, 600, 1000] {
            assert_eq!(HookError::new(status, "x", "y").status(), 500, "{status}");
        }
        for status in [400, 418, 599] {
            assert_eq!(HookError::new(status, "x", "y").status(), status);
        }
    }

    #[test]
    fn an_error_read_from_json_has_its_status_checked_as_new_checks_it() {
        let read = |status: u16| {
            let json = serde_json::json!({"status": status, "code": "x", "message": "y"});
            serde_json::from_value::<HookError>(json).map(|e| e.status())
        };
        assert_eq!(read(0).unwrap(), 500);
        assert_eq!(read(1000).unwrap(), 500);
        assert_eq!(read(404).unwrap(), 404);
        let e = HookError::new(409, "dup", "already there");
        let back: HookError = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn an_error_is_one_pointer_wide() {
        assert_eq!(
            std::mem::size_of::<HookError>(),
            std::mem::size_of::<usize>()
        );
        assert_eq!(
            std::mem::size_of::<Result<(), HookError>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_error_serializes_as_status_code_and_message() {
        let json = serde_json::to_value(HookError::new(409, "dup", "already there")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": 409, "code": "dup", "message": "already there"})
        );
    }

    #[test]
    fn the_error_keeps_status_code_and_message() {
        let e = HookError::new(409, "dup", "already there");
        assert_eq!(
            (e.status(), e.code(), e.message()),
            (409, "dup", "already there")
        );
        assert_eq!(e.to_string(), "already there (409 dup)");
    }
}
