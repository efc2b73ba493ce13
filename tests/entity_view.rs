//! The dynamic field view of `#[derive(Entity)]` (what wildcard handlers see through `Record`)
//! shows a record as serde's JSON shows it: the same names, the same values, the same fields.

use std::collections::BTreeMap;

use hooks::prelude::*;
use serde_json::{Value, json};

/// Uppercase in JSON, lowercase in Rust: a `with` module.
mod upper {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_uppercase())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(String::deserialize(d)?.to_lowercase())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub city: String,
    pub zip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Entity)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub first_name: String,
    #[serde(rename = "mail")]
    pub email: String,
    #[serde(flatten)]
    pub address: Address,
    #[serde(skip)]
    pub cache: u32,
    pub r#type: String,
    #[serde(with = "upper")]
    pub shout: String,
}

fn ada() -> Person {
    Person {
        first_name: "Ada".into(),
        email: "a@x".into(),
        address: Address {
            city: "L".into(),
            zip: "1".into(),
        },
        cache: 7,
        r#type: "t".into(),
        shout: "hey".into(),
    }
}

fn code(result: Result<impl std::fmt::Debug, HookError>) -> String {
    let err = result.expect_err("an error");
    format!("{} {}", err.status(), err.code())
}

/// The keys of `value`'s JSON object, in order.
fn json_keys(value: &impl Serialize) -> Vec<String> {
    // serde_json's map keeps keys sorted, so the order comes from the JSON text.
    let text = serde_json::to_string(value).unwrap();
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(&text);
    let map: serde_json::Map<String, Value> = serde::Deserialize::deserialize(&mut de).unwrap();
    // Order by position in the text.
    let mut positioned: Vec<(usize, String)> = map
        .keys()
        .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k.clone()))
        .collect();
    positioned.sort();
    keys.extend(positioned.into_iter().map(|(_, k)| k));
    keys
}

#[test]
fn the_view_shows_the_json_names_and_values_of_serde() {
    let person = ada();
    assert_eq!(
        serde_json::to_value(&person).unwrap(),
        json!({"firstName": "Ada", "mail": "a@x", "city": "L", "zip": "1", "type": "t", "shout": "HEY"})
    );
    assert_eq!(
        person.field_names(),
        ["firstName", "mail", "city", "zip", "type", "shout"]
    );
    assert_eq!(person.field_names(), json_keys(&person));
    assert_eq!(
        person.to_json().unwrap(),
        serde_json::to_value(&person).unwrap()
    );
    assert_eq!(person.get("firstName").unwrap(), json!("Ada"));
    assert_eq!(person.get("mail").unwrap(), json!("a@x"));
    assert_eq!(person.get("type").unwrap(), json!("t"));
    // The Rust names are not the JSON's.
    for rust in ["first_name", "email", "address", "r#type"] {
        assert_eq!(code(person.get(rust)), "400 unknown_field", "{rust}");
        assert!(!person.has_field(rust), "{rust}");
    }
}

#[test]
fn set_takes_the_json_names_and_reads_the_value_as_serde_does() {
    let mut person = ada();
    person.set("firstName", json!("Grace")).unwrap();
    person.set("mail", json!("g@x")).unwrap();
    person.set("type", json!("admin")).unwrap();
    assert_eq!(
        (
            person.first_name.as_str(),
            person.email.as_str(),
            person.r#type.as_str()
        ),
        ("Grace", "g@x", "admin")
    );
    assert_eq!(
        code(person.set("first_name", json!("x"))),
        "400 unknown_field"
    );
    assert_eq!(code(person.set("firstName", json!(1))), "400 invalid_field");
}

#[test]
fn a_field_serde_skips_is_not_in_the_view() {
    let mut person = ada();
    assert_eq!(code(person.get("cache")), "400 unknown_field");
    assert_eq!(code(person.set("cache", json!(1))), "400 unknown_field");
    assert_eq!(person.cache, 7);
    assert!(!person.has_field("cache"));
}

/// A field the API never shows needs no serde support, nor `#[entity(skip)]`.
#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Account {
    pub login: String,
    #[serde(skip)]
    pub password_hash: Hash,
    /// Accepted from a client, never shown: `Deserialize` only.
    #[serde(skip_serializing)]
    pub salt: Salt,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Salt(#[allow(dead_code)] String);

#[derive(Debug, Clone, Default)]
pub struct Hash(#[allow(dead_code)] [u8; 4]);

#[test]
fn a_field_serde_never_shows_needs_no_serde_and_is_hidden_from_the_view() {
    let mut account = Account {
        login: "ada".into(),
        password_hash: Hash([1, 2, 3, 4]),
        salt: Salt::default(),
    };
    assert_eq!(account.field_names(), ["login"]);
    assert_eq!(account.to_json().unwrap(), json!({"login": "ada"}));
    for hidden in ["password_hash", "salt"] {
        assert_eq!(code(account.get(hidden)), "400 unknown_field");
        assert_eq!(code(account.set(hidden, json!([0]))), "400 unknown_field");
    }
}

#[test]
fn with_functions_read_and_write_the_value_as_the_json_shows_it() {
    let mut person = ada();
    assert_eq!(person.get("shout").unwrap(), json!("HEY"));
    person.set("shout", json!("YO")).unwrap();
    assert_eq!(person.shout, "yo");
    assert_eq!(code(person.set("shout", json!(5))), "400 invalid_field");
}

fn seconds<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn from_minutes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(u64::deserialize(d)? * 60)
}

/// A type with no serde support of its own, seen through its functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Celsius(f64);

fn celsius<S: serde::Serializer>(c: &Celsius, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(c.0)
}

fn to_celsius<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Celsius, D::Error> {
    f64::deserialize(d).map(Celsius)
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Timer {
    #[serde(serialize_with = "seconds", skip_deserializing)]
    pub elapsed: std::time::Duration,
    #[serde(deserialize_with = "from_minutes")]
    pub limit_seconds: u64,
    #[serde(serialize_with = "celsius", deserialize_with = "to_celsius")]
    pub temperature: Celsius,
}

#[test]
fn serialize_with_and_deserialize_with_are_followed_each_way() {
    let mut timer = Timer {
        elapsed: std::time::Duration::from_millis(2500),
        limit_seconds: 0,
        temperature: Celsius(20.5),
    };
    assert_eq!(
        timer.to_json().unwrap(),
        serde_json::to_value(&timer).unwrap()
    );
    assert_eq!(timer.get("elapsed").unwrap(), json!(2));
    timer.set("limit_seconds", json!(2)).unwrap();
    assert_eq!(timer.limit_seconds, 120);
    timer.set("temperature", json!(-3.5)).unwrap();
    assert_eq!(timer.temperature, Celsius(-3.5));
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Post {
    pub title: String,
    /// Set by the server only: clients never send it.
    #[serde(skip_deserializing)]
    pub views: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
}

#[test]
fn a_field_serde_never_reads_is_read_only_in_the_view() {
    let mut post = Post {
        title: "t".into(),
        views: 3,
        subtitle: None,
    };
    assert_eq!(post.get("views").unwrap(), json!(3));
    let err = post.set("views", json!(1_000_000)).unwrap_err();
    assert_eq!((err.status(), err.code()), (400, "read_only_field"));
    assert!(err.message().contains("views"), "{err}");
    assert_eq!(post.views, 3);
}

#[test]
fn a_field_skipped_only_when_empty_stays_in_the_view() {
    let mut post = Post {
        title: "t".into(),
        views: 0,
        subtitle: None,
    };
    assert_eq!(post.field_names(), ["title", "views", "subtitle"]);
    assert_eq!(post.get("subtitle").unwrap(), Value::Null);
    post.set("subtitle", json!("s")).unwrap();
    assert_eq!(post.subtitle.as_deref(), Some("s"));
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
#[serde(rename_all(serialize = "SCREAMING-KEBAB-CASE", deserialize = "kebab-case"))]
pub struct Sides {
    pub first_name: String,
    #[serde(rename(serialize = "Mail"), alias = "e_mail")]
    pub email: String,
    #[serde(rename(deserialize = "in"), alias = "entry")]
    pub entry_point: String,
}

#[test]
fn each_side_of_a_rename_and_every_alias_name_the_field() {
    let mut sides = Sides {
        first_name: "a".into(),
        email: "b".into(),
        entry_point: "c".into(),
    };
    // The listed names are those the JSON shows.
    assert_eq!(sides.field_names(), ["FIRST-NAME", "Mail", "ENTRY-POINT"]);
    assert_eq!(sides.field_names(), json_keys(&sides));
    // A client's names (and aliases) reach the same fields; a name serde shows but never reads
    // is read, not written.
    sides.set("first-name", json!("y")).unwrap();
    assert_eq!(sides.first_name, "y");
    assert_eq!(sides.get("FIRST-NAME").unwrap(), json!("y"));
    assert_eq!(
        code(sides.set("FIRST-NAME", json!("z"))),
        "400 unknown_field"
    );
    assert_eq!(code(sides.set("Mail", json!("z"))), "400 unknown_field");
    assert_eq!(sides.first_name, "y");
    sides.set("email", json!("e1")).unwrap();
    assert_eq!(sides.get("e_mail").unwrap(), json!("e1"));
    sides.set("in", json!("i")).unwrap();
    assert_eq!(sides.get("entry").unwrap(), json!("i"));
    assert_eq!(code(sides.get("entry_point")), "400 unknown_field");
}

macro_rules! casing {
    ($($ty:ident: $rule:literal;)*) => {$(
        #[derive(Debug, Clone, Default, Serialize, Deserialize, Entity)]
        #[serde(rename_all = $rule)]
        pub struct $ty {
            pub id: u32,
            pub first_name: String,
            pub _private_note: String,
            pub http_status_2xx: u32,
        }
    )*

        #[test]
        fn the_view_follows_every_rename_all_rule_of_serde() {
            $(
                let mut record = $ty::default();
                assert_eq!(record.field_names(), json_keys(&record), $rule);
                let de: $ty = serde_json::from_value(record.to_json().unwrap()).unwrap();
                assert_eq!(de.first_name, record.first_name);
                let first = record.field_names()[1].to_owned();
                record.set(&first, json!("x")).unwrap();
                assert_eq!(record.first_name, "x", $rule);
            )*
        }
    };
}

casing! {
    Lower: "lowercase";
    Upper: "UPPERCASE";
    Pascal: "PascalCase";
    Camel: "camelCase";
    Snake: "snake_case";
    ScreamingSnake: "SCREAMING_SNAKE_CASE";
    Kebab: "kebab-case";
    ScreamingKebab: "SCREAMING-KEBAB-CASE";
}

#[test]
fn a_flattened_struct_s_keys_are_the_record_s_own_to_read() {
    let mut person = ada();
    assert_eq!(person.get("city").unwrap(), json!("L"));
    assert!(person.has_field("zip"));
    // Written, one key would read the whole struct back from its JSON: read-only.
    assert_eq!(code(person.set("zip", json!("2"))), "400 read_only_field");
    assert_eq!(person.address.zip, "1");
    assert_eq!(
        code(person.set("country", json!("UK"))),
        "400 unknown_field"
    );
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stamp {
    #[serde(skip_deserializing)]
    pub created_by: String,
    #[serde(skip)]
    pub token_hash: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Stamped {
    pub name: String,
    #[serde(flatten)]
    pub stamp: Stamp,
}

#[test]
fn a_write_never_loses_what_a_flattened_struct_s_json_does_not_show() {
    let mut stamped = Stamped {
        name: "n".into(),
        stamp: Stamp {
            created_by: "alice".into(),
            token_hash: "H".into(),
            note: "old".into(),
        },
    };
    for key in ["note", "created_by"] {
        assert_eq!(code(stamped.set(key, json!("x"))), "400 read_only_field");
    }
    assert_eq!(
        (
            stamped.stamp.created_by.as_str(),
            stamped.stamp.token_hash.as_str(),
            stamped.stamp.note.as_str()
        ),
        ("alice", "H", "old")
    );
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Entity)]
pub struct Catchall {
    pub name: String,
    #[serde(skip_serializing, default)]
    pub password_hash: String,
    #[entity(skip)]
    #[serde(skip)]
    pub internal: u8,
    #[serde(rename(serialize = "Label"))]
    pub label: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[test]
fn a_flattened_map_never_takes_the_name_of_a_field_left_out_of_the_view() {
    let mut record = Catchall::default();
    for key in ["password_hash", "internal", "Label"] {
        assert_eq!(
            code(record.set(key, json!("evil"))),
            "400 unknown_field",
            "{key}"
        );
    }
    assert!(record.extra.is_empty(), "{:?}", record.extra);
    record.set("label", json!("ok")).unwrap();
    record.set("color", json!("red")).unwrap();
    assert_eq!((record.label.as_str(), record.extra.len()), ("ok", 1));
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
pub struct Member {
    pub name: String,
    #[serde(skip_deserializing)]
    pub owner: String,
    #[serde(alias = "mail")]
    pub email: String,
    #[serde(rename(serialize = "Age"))]
    pub age: u32,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(flatten)]
    pub stamp: Stamp,
}

#[test]
fn the_fields_a_bulk_update_may_change_are_those_a_client_may_write() {
    assert_eq!(
        <Member as hooks::Entity>::FIELDS,
        Some(&["name", "email", "mail", "age"][..])
    );
    for bad in ["owner", "password_hash", "Age", "note"] {
        let changes = hooks::BulkChanges::<Member>::from_json(Query::all(), json!({ bad: 1 }));
        assert!(changes.is_err(), "{bad}");
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Entity)]
pub struct Product {
    pub name: String,
    /// Every other key of the client's JSON.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[test]
fn a_flattened_map_s_entries_are_fields_of_the_record() {
    let mut product: Product =
        serde_json::from_value(json!({"name": "pen", "color": "red"})).unwrap();
    assert_eq!(product.get("color").unwrap(), json!("red"));
    assert!(product.has_field("color"));
    product.set("size", json!(3)).unwrap();
    assert_eq!(product.extra.get("size"), Some(&json!(3)));
    assert_eq!(
        product.to_json().unwrap(),
        serde_json::to_value(&product).unwrap()
    );
    // A map's keys are not `'static`: `field_names` lists the named fields only.
    assert_eq!(product.field_names(), ["name"]);
}

#[derive(Debug, Clone, Serialize, Deserialize, Entity)]
#[serde(tag = "kind", rename = "note")]
pub struct Tagged {
    pub text: String,
}

#[test]
fn a_struct_s_serde_tag_is_a_read_only_field() {
    let mut tagged = Tagged { text: "t".into() };
    assert_eq!(tagged.field_names(), json_keys(&tagged));
    assert_eq!(tagged.get("kind").unwrap(), json!("note"));
    assert_eq!(
        tagged.to_json().unwrap(),
        serde_json::to_value(&tagged).unwrap()
    );
    assert_eq!(
        code(tagged.set("kind", json!("other"))),
        "400 read_only_field"
    );
}

/// Stamp the first name of every record of every table: a wildcard handler names the field as
/// clients do.
#[before_create("*")]
fn stamp(record: &mut dyn Record) -> Result<(), HookError> {
    if record.has_field("firstName") {
        let name = record.get("firstName")?;
        record.set(
            "firstName",
            json!(format!("{} (checked)", name.as_str().unwrap_or("?"))),
        )?;
    }
    Ok(())
}

#[test]
fn a_wildcard_handler_sees_the_json_names() {
    let hooks = Hooks::new().expect("a valid table");
    let out = hooks.run_sync::<ops::data::Create<Person>, _>(&mut Context::client(), ada(), Ok);
    assert_eq!(out.unwrap().first_name, "Ada (checked)");
}

/// The derives need nothing of the prelude: every path they emit is absolute.
#[no_implicit_prelude]
mod without_prelude {
    #[derive(::std::fmt::Debug, ::serde::Serialize, ::serde::Deserialize, ::hooks::Entity)]
    #[serde(rename_all = "camelCase")]
    pub struct Bare {
        pub first_name: ::std::string::String,
        #[serde(flatten)]
        pub more: ::std::collections::BTreeMap<::std::string::String, u32>,
    }

    #[derive(::serde::Serialize, ::hooks::Event)]
    #[event(name = "bare.happened")]
    pub struct Happened {
        pub n: u32,
    }
}

#[test]
fn the_derives_work_in_a_module_without_the_prelude() {
    use hooks::Event;
    let bare = without_prelude::Bare {
        first_name: "a".into(),
        more: BTreeMap::new(),
    };
    assert_eq!(bare.field_names(), ["firstName"]);
    assert_eq!(<without_prelude::Happened as Event>::NAME, "bare.happened");
    let _ = without_prelude::Happened { n: 1 }.n;
}

#[test]
fn an_error_quotes_at_most_a_few_dozen_characters_of_a_clients_name_or_value() {
    let mut person = ada();
    let long = "x".repeat(60_000);
    let unknown = person.set(&long, json!(1)).unwrap_err();
    assert_eq!(unknown.code(), "unknown_field");
    assert!(unknown.message().len() < 200, "{}", unknown.message());
    assert!(unknown.message().contains(&format!("{}…", "x".repeat(40))));
    // A value of the wrong type: serde's message quotes it, cut short.
    let invalid = person.set("firstName", json!([long])).unwrap_err();
    assert_eq!(invalid.code(), "invalid_field");
    assert!(invalid.message().len() < 300, "{}", invalid.message());
    let invalid = person
        .set("firstName", json!({ long.as_str(): 1 }))
        .unwrap_err();
    assert!(invalid.message().len() < 300, "{}", invalid.message());
}
