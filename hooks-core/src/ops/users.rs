//! User and authentication operations. Passwords and tokens travel as [`Secret`]s, which never
//! print or serialize their value, so after handlers and logs cannot leak them.

use std::fmt;

use crate::context::User;
use crate::entity::{Changes, Key};
use crate::operation;

/// A password or token: readable on purpose with [`Secret::expose`], redacted everywhere else
/// (`Debug`, `Display` and `Serialize` all show `***`).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself: call this only where the value is needed (hashing, comparing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The length of the secret, in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A registration: the new user's email, password and any other profile fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewUser {
    /// The email, which is also the login.
    pub email: String,
    /// The chosen password.
    pub password: Secret,
    /// Other profile fields (in JSON, beside `email` and `password`).
    #[serde(default, flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A login attempt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// The login (an email).
    pub login: String,
    /// The password given.
    pub password: Secret,
}

/// A logged-in session: what login returns and logout ends.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The session token.
    pub token: Secret,
}

/// A password reset request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResetRequest {
    /// The email of the account.
    pub email: String,
}

operation! {
    /// Register a new user account.
    pub Register: "users.register" on "users", NewUser => User
}

operation! {
    /// Log a user in; after handlers see the session, never the password.
    pub Login: "users.login" on "users", Credentials => Session
}

operation! {
    /// Log a user out, ending the session.
    pub Logout: "users.logout" on "users", Session => ()
}

operation! {
    /// Ask for a password reset email.
    pub PasswordReset: "users.password_reset" on "users", ResetRequest => ()
}

operation! {
    /// Update a user's profile.
    pub UpdateUser: "users.update" on "users", Changes<User> => User
}

operation! {
    /// Delete a user account.
    pub DeleteUser: "users.delete" on "users", Key<User> => Key<User>
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_or_serializes_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        let creds = Credentials {
            login: "a@b.c".into(),
            password: s.clone(),
        };
        let json = serde_json::to_string(&creds).unwrap();
        assert!(!json.contains("hunter2"), "{json}");
        assert!(!format!("{creds:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
        let back: Credentials = serde_json::from_str(r#"{"login":"a","password":"pw"}"#).unwrap();
        assert_eq!(back.password.expose(), "pw");
        let new: NewUser =
            serde_json::from_str(r#"{"email":"a@b.c","password":"pw","name":"Ada"}"#).unwrap();
        assert_eq!(new.fields.get("name"), Some(&serde_json::json!("Ada")));
        assert!(!serde_json::to_string(&new).unwrap().contains("\"pw\""));
    }
}
