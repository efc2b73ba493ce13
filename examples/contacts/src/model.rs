//! The typed tables clients reach under `/data/{table}`: [`Contact`] and [`Note`].

use hooks::prelude::*;

use crate::db::{Column, ColumnType, Stored};

/// A person in the shared address book. Every signed-in user reads every contact; only its owner
/// changes it or sees its private fields (`phone`, `notes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Entity)]
#[serde(default)]
pub struct Contact {
    /// The id the database gave it.
    pub id: Option<Id>,
    /// The id of the user who created it (set by a hook, whatever the client sent).
    pub owner: Option<String>,
    /// The full name.
    pub name: String,
    /// The email, stored trimmed and in lower case.
    pub email: String,
    /// The phone number, stored as `+` and digits (private).
    pub phone: Option<String>,
    /// The company.
    pub company: Option<String>,
    /// Whether this is a VIP (becoming one sends a notification).
    pub vip: bool,
    /// Free-form notes (private).
    pub notes: Option<String>,
    /// When it was created, in ms since the epoch (set by a hook).
    pub created: Option<i64>,
    /// When it was last changed, in ms since the epoch (set by a hook).
    pub updated: Option<i64>,
    /// Computed for responses, never stored: "name (company)".
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A record that belongs to the user who created it.
pub trait Owned {
    /// The owner's user id, once set.
    fn owner(&self) -> Option<&str>;
}

impl Owned for Contact {
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

impl Owned for Note {
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column { name, ty }
}

impl Stored for Contact {
    const SQL_TABLE: &'static str = "contacts";
    const COLUMNS: &'static [Column] = &[
        col("owner", ColumnType::Text),
        col("name", ColumnType::Text),
        col("email", ColumnType::Text),
        col("phone", ColumnType::Text),
        col("company", ColumnType::Text),
        col("vip", ColumnType::Bool),
        col("notes", ColumnType::Text),
        col("created", ColumnType::Integer),
        col("updated", ColumnType::Integer),
    ];
    const PRIVATE: &'static [&'static str] = &["phone", "notes"];

    fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    fn set_id(&mut self, id: Id) {
        self.id = Some(id);
    }
}

/// A note about a contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Entity)]
#[serde(default)]
pub struct Note {
    /// The id the database gave it.
    pub id: Option<Id>,
    /// The id of the user who wrote it (set by a hook).
    pub owner: Option<String>,
    /// The contact it is about; must exist.
    pub contact_id: i64,
    /// The text.
    pub body: String,
    /// When it was written, in ms since the epoch (set by a hook).
    pub created: Option<i64>,
}

impl Stored for Note {
    const SQL_TABLE: &'static str = "notes";
    const COLUMNS: &'static [Column] = &[
        col("owner", ColumnType::Text),
        col("contact_id", ColumnType::Integer),
        col("body", ColumnType::Text),
        col("created", ColumnType::Integer),
    ];

    fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    fn set_id(&mut self, id: Id) {
        self.id = Some(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::responses::present;
    use serde_json::Value;

    #[test]
    fn the_private_fields_a_find_masks_are_the_ones_responses_hide() {
        let full = Contact {
            id: Some(Id::Int(1)),
            owner: Some("1".into()),
            name: "Ada".into(),
            email: "ada@x.io".into(),
            phone: Some("+4420".into()),
            company: Some("AE".into()),
            vip: true,
            notes: Some("tea".into()),
            created: Some(1),
            updated: Some(2),
            display_name: None,
        };
        let mut seen = full.clone();
        present(&mut seen, Some(&User::new("2")));
        let (Ok(Value::Object(full)), Ok(Value::Object(seen))) =
            (serde_json::to_value(&full), serde_json::to_value(&seen))
        else {
            panic!("a contact is a JSON object");
        };
        let hidden: Vec<&str> = Contact::COLUMNS
            .iter()
            .map(|c| c.name)
            .filter(|name| full[*name] != seen[*name])
            .collect();
        assert_eq!(hidden, Contact::PRIVATE);
    }
}
