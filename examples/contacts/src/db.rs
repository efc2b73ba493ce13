//! The data layer: the connection pool, the embedded migrations, and generic SQL for the typed
//! tables ([`Stored`]).
//!
//! Everything that knows the SQL dialect lives here, behind sqlx: `?` placeholders,
//! `RETURNING id` and the pool options. A PostgreSQL backend would swap this module's pool type and
//! placeholders; the handlers and the API only see [`Stored`] records, [`Query`]s and [`HookError`]s.
//!
//! Table and column names are never taken from a client: they come from a [`Stored`] type's constants,
//! and a client's field names are checked against them ([`column()`]). Values are always bound.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use hooks::{Condition, Entity, HookError, Id, Op, Query};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, Sqlite, Transaction};

use crate::config::Database;

/// The migrations, compiled into the binary so that it starts from any directory.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "login_failures",
        include_str!("../migrations/0002_login_failures.sql"),
    ),
];

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 'static>,
    > {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Open the database (creating the file on first start) and bring its schema up to date.
pub async fn connect(database: &Database) -> Result<SqlitePool, sqlx::Error> {
    let pool = match database {
        Database::File(path) => {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?
        }
        Database::Memory => {
            // Every connection to `:memory:` is a database of its own: keep exactly one, forever.
            let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        }
    };
    Migrator::new(Embedded).await?.run(&pool).await?;
    Ok(pool)
}

/// Begin a write transaction: `BEGIN IMMEDIATE` takes SQLite's write lock at once (waiting, up to
/// the busy timeout, for another writer to finish), so what the transaction reads before it writes
/// stays true until it commits. A deferred `BEGIN` would read a snapshot that another writer could
/// make stale, and its first write would then fail with `SQLITE_BUSY` instead of waiting.
pub async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, HookError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(error)
}

/// The SQL type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer.
    Integer,
    /// A double.
    Real,
    /// UTF-8 text.
    Text,
    /// A boolean, stored as 0 or 1.
    Bool,
}

/// A stored column of a [`Stored`] type's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name, which is also the JSON field's name.
    pub name: &'static str,
    /// Its SQL type.
    pub ty: ColumnType,
}

/// The id column every table has.
pub const ID: Column = Column {
    name: "id",
    ty: ColumnType::Integer,
};

/// A typed entity stored in a SQL table, with its columns listed once. (Not to be confused with
/// `hooks::Record`, the dynamic field view that wildcard handlers get.)
pub trait Stored:
    Entity + Serialize + DeserializeOwned + Clone + Default + std::fmt::Debug + Send + Sync
{
    /// The SQL table.
    const SQL_TABLE: &'static str;
    /// The stored columns, without `id`.
    const COLUMNS: &'static [Column];
    /// The columns only the record's owner sees (the `owner` column says who that is). A find
    /// filters and sorts on them as its caller sees them: null in anyone else's records.
    const PRIVATE: &'static [&'static str] = &[];
    /// The record's id, once stored.
    fn id(&self) -> Option<&Id>;
    /// Set the id the database gave the record.
    fn set_id(&mut self, id: Id);
}

/// The column `name` of `E`'s table (`id` included), or `None` when it has no such column.
pub fn column<E: Stored>(name: &str) -> Option<Column> {
    if name == ID.name {
        return Some(ID);
    }
    E::COLUMNS.iter().copied().find(|c| c.name == name)
}

/// A value to bind.
#[derive(Debug, Clone, PartialEq)]
enum Bind {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// `value` as a bind of `column`'s type, or a 400 naming the field.
fn bind_value(column: Column, value: &Value) -> Result<Bind, HookError> {
    let bind = match (column.ty, value) {
        (_, Value::Null) => Some(Bind::Null),
        (ColumnType::Integer, Value::Number(n)) => n.as_i64().map(Bind::Int),
        (ColumnType::Real, Value::Number(n)) => n.as_f64().map(Bind::Real),
        (ColumnType::Text, Value::String(s)) => Some(Bind::Text(s.clone())),
        (ColumnType::Bool, Value::Bool(b)) => Some(Bind::Int(i64::from(*b))),
        (ColumnType::Bool, Value::Number(n)) => match n.as_i64() {
            Some(v @ (0 | 1)) => Some(Bind::Int(v)),
            _ => None,
        },
        _ => None,
    };
    bind.ok_or_else(|| {
        HookError::bad_request(format!(
            "field `{}` takes {}, not {}",
            column.name,
            match column.ty {
                ColumnType::Integer => "an integer",
                ColumnType::Real => "a number",
                ColumnType::Text => "a string",
                ColumnType::Bool => "true or false",
            },
            echo(&value.to_string())
        ))
    })
}

/// The bind of a record id. Ids are integers: a text id names no row (it binds as NULL, which
/// `id = ?` never matches), so `'3.0'` cannot reach record 3 through SQLite's type affinity.
fn id_bind(id: &Id) -> Bind {
    match id {
        Id::Int(i) => Bind::Int(*i),
        Id::Text(_) => Bind::Null,
    }
}

/// The most characters of a client's input that an error message repeats.
pub const ECHO_MAX: usize = 40;

/// A client's input as an error message repeats it: at most [`ECHO_MAX`] characters, then `…`,
/// with each backtick written as `'`. The service quotes a client's text between backticks: one
/// inside it would end the quote early, and [`echo_quoted`] would then take the service's own
/// words after it for a quote and cut them.
pub fn echo(input: &str) -> String {
    clip(input, ECHO_MAX).replace('`', "'")
}

/// The longest error message a client gets, in characters: the backstop of [`echo_quoted`].
pub const MESSAGE_MAX: usize = 400;

/// An error message with every quoted run in it (between backticks, or a double-quoted string
/// as Rust and serde write one, escapes and all) cut to [`echo`]'s length, and the whole cut to
/// [`MESSAGE_MAX`] characters.
///
/// For messages the service does not write itself and that may quote what the client sent:
/// serde's (`invalid type: string "…"`, `unknown field `…``) and the framework's. serde writes
/// an unknown field's name as sent, backticks included, so that message is read from its ends.
/// Every answered error passes through it ([`echoed`]), the service's own too, and leaves those
/// as they are: each of their quotes is a short one of the service's or an [`echo`], at most
/// [`ECHO_MAX`] characters and without a backtick.
pub fn echo_quoted(message: &str) -> String {
    for prefix in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest
                .rfind("`, expected ")
                .or_else(|| rest.rfind("`, there are no "))
        {
            let tail = echo_quoted(&rest[end + 1..]);
            return clip(
                &format!("{prefix}{}`{tail}", echo(&rest[..end])),
                MESSAGE_MAX,
            );
        }
    }
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        let quoted = &rest[open + 1..];
        let close = if quote == "\"" {
            closing_double_quote(quoted)
        } else {
            quoted.find('`')
        };
        match close {
            Some(close) => {
                out.push_str(&echo(&quoted[..close]));
                out.push_str(quote);
                rest = &quoted[close + 1..];
            }
            None => {
                out.push_str(&echo(quoted));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    clip(&out, MESSAGE_MAX)
}

/// Where the string that `text` starts inside ends: its first `"` not escaped by a backslash.
fn closing_double_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// `err` with its message passed through [`echo_quoted`].
pub fn echoed(err: HookError) -> HookError {
    let message = echo_quoted(err.message());
    if message == err.message() {
        return err;
    }
    HookError::new(err.status(), err.code().to_owned(), message)
}

/// `text` cut to at most `max` characters, with `…` when something was cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// A query whose SQL text was assembled only from a [`Stored`] type's constants and fixed keywords.
fn query(
    sql: String,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        q = match bind {
            Bind::Null => q.bind(None::<i64>),
            Bind::Int(i) => q.bind(i),
            Bind::Real(r) => q.bind(r),
            Bind::Text(s) => q.bind(s),
        };
    }
    q
}

/// How long a connection waits for another one's write lock before it gives up with
/// `SQLITE_BUSY` ([`busy`]).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a connection of the pool before it gives up with a 503 [`busy`]:
/// well within a handler's timeout (10 s) and a request's (30 s), so that a starved pool is
/// answered as busy, with a retry hint, not as a timeout. (sqlx waits 30 s by default.)
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's primary result codes for "another connection holds the lock": `SQLITE_BUSY` (the
/// database file) and `SQLITE_LOCKED` (a table, within one connection's shared cache). The
/// extended codes carry them in their low byte.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Whether `e` says that another connection held the lock longer than [`BUSY_TIMEOUT`], or that
/// every connection of the pool stayed taken past its acquire timeout.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// The 503 of a database busy with other writes: not the caller's fault, nor a failure of the
/// service, and likely to pass; the answer carries `Retry-After` ([`crate::api::ApiError`]).
pub fn busy() -> HookError {
    HookError::new(
        503,
        "busy",
        "the database is busy with other writes: try again in a moment",
    )
}

/// A database error as the caller sees it: details go to the log, not to the client. A busy
/// database is a 503 `busy` ([`busy`]), a broken reference or a taken value a 409, anything
/// else a 500.
pub fn error(e: sqlx::Error) -> HookError {
    if is_busy(&e) {
        tracing::warn!(error = %e, "database busy");
        return busy();
    }
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return HookError::conflict("a record with this value already exists");
        }
        // The write raced the deletion of a record it refers to (a note's contact, say): the
        // check that it exists ran before the deletion committed.
        if db.is_foreign_key_violation() {
            return HookError::conflict(
                "a record this one refers to does not exist (it may just have been deleted)",
            );
        }
    }
    tracing::error!(error = %e, "database error");
    HookError::internal("database error")
}

/// The record's column values, in [`Stored::COLUMNS`] order.
fn column_values<E: Stored>(record: &E) -> Result<Vec<Bind>, HookError> {
    let value = serde_json::to_value(record)
        .map_err(|e| HookError::internal(format!("cannot serialise a {}: {e}", E::TABLE)))?;
    let Value::Object(fields) = value else {
        return Err(HookError::internal(format!(
            "a {} is not a JSON object",
            E::TABLE
        )));
    };
    E::COLUMNS
        .iter()
        .map(|c| bind_value(*c, fields.get(c.name).unwrap_or(&Value::Null)))
        .collect()
}

fn select_list<E: Stored>() -> String {
    let mut list = String::from("id");
    for c in E::COLUMNS {
        list.push_str(", ");
        list.push_str(c.name);
    }
    list
}

/// Read a row of `E`'s table (selected with [`select_list`]) back into an `E`.
fn from_row<E: Stored>(row: &SqliteRow) -> Result<E, HookError> {
    let mut fields = Map::new();
    for c in std::iter::once(&ID).chain(E::COLUMNS) {
        let value = match c.ty {
            ColumnType::Integer => row.try_get::<Option<i64>, _>(c.name).map(|v| v.into()),
            ColumnType::Real => row.try_get::<Option<f64>, _>(c.name).map(|v| v.into()),
            ColumnType::Text => row.try_get::<Option<String>, _>(c.name).map(|v| v.into()),
            ColumnType::Bool => row
                .try_get::<Option<i64>, _>(c.name)
                .map(|v| v.map(|v| v != 0).into()),
        }
        .map_err(error)?;
        fields.insert(c.name.to_owned(), value);
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| HookError::internal(format!("a stored {} does not read back: {e}", E::TABLE)))
}

/// Insert `record`; returns it with the id the database gave it.
pub async fn insert<E: Stored>(conn: &mut SqliteConnection, mut record: E) -> Result<E, HookError> {
    let names: Vec<&str> = E::COLUMNS.iter().map(|c| c.name).collect();
    let marks = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks}) RETURNING id",
        E::SQL_TABLE,
        names.join(", ")
    );
    let row = query(sql, column_values(&record)?)
        .fetch_one(conn)
        .await
        .map_err(error)?;
    let id: i64 = row.try_get(0).map_err(error)?;
    record.set_id(Id::Int(id));
    Ok(record)
}

/// `WHERE id = ?`, and, with `expected`, `AND` every column still holds the value `expected` has.
fn where_row<E: Stored>(id: &Id, expected: Option<&E>) -> Result<(String, Vec<Bind>), HookError> {
    let mut sql = String::from(" WHERE id = ?");
    let mut binds = vec![id_bind(id)];
    if let Some(expected) = expected {
        for (c, value) in E::COLUMNS.iter().zip(column_values(expected)?) {
            sql.push_str(&format!(" AND {} IS ?", c.name));
            binds.push(value);
        }
    }
    Ok((sql, binds))
}

/// Why a write to the row `id` that `expected` described changed nothing: it is gone (404), or
/// someone else changed it since it was read (409).
async fn missed<E: Stored>(conn: &mut SqliteConnection, id: &Id) -> HookError {
    match get::<E>(conn, id).await {
        Ok(None) => not_found::<E>(id),
        Ok(Some(_)) => HookError::conflict(format!(
            "{} {id} was changed by someone else meanwhile; read it again and retry",
            E::TABLE
        )),
        Err(e) => e,
    }
}

/// Write every column of `record` to the row `id`; a 404 when there is no such row. With
/// `expected` (the version the change was made from), a 409 when the row no longer is that
/// version, so a change made from a stale read never overwrites another one.
pub async fn update<E: Stored>(
    conn: &mut SqliteConnection,
    id: &Id,
    mut record: E,
    expected: Option<&E>,
) -> Result<E, HookError> {
    let set: Vec<String> = E::COLUMNS
        .iter()
        .map(|c| format!("{} = ?", c.name))
        .collect();
    let (where_sql, where_binds) = where_row(id, expected)?;
    let sql = format!("UPDATE {} SET {}{where_sql}", E::SQL_TABLE, set.join(", "));
    let mut binds = column_values(&record)?;
    binds.extend(where_binds);
    let done = query(sql, binds).execute(&mut *conn).await.map_err(error)?;
    if done.rows_affected() == 0 {
        return Err(missed::<E>(conn, id).await);
    }
    record.set_id(id.clone());
    Ok(record)
}

/// Delete the row `id`; a 404 when there is no such row. With `expected` (the version the caller
/// read), a 409 when the row no longer is that version.
pub async fn delete<E: Stored>(
    conn: &mut SqliteConnection,
    id: &Id,
    expected: Option<&E>,
) -> Result<(), HookError> {
    let (where_sql, binds) = where_row(id, expected)?;
    let sql = format!("DELETE FROM {}{where_sql}", E::SQL_TABLE);
    let done = query(sql, binds).execute(&mut *conn).await.map_err(error)?;
    if done.rows_affected() == 0 {
        return Err(missed::<E>(conn, id).await);
    }
    Ok(())
}

/// The record `id`, if there is one.
pub async fn get<E: Stored>(conn: &mut SqliteConnection, id: &Id) -> Result<Option<E>, HookError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE id = ?",
        select_list::<E>(),
        E::SQL_TABLE
    );
    let row = query(sql, vec![id_bind(id)])
        .fetch_optional(conn)
        .await
        .map_err(error)?;
    row.as_ref().map(from_row::<E>).transpose()
}

/// The 404 of a missing record.
pub fn not_found<E: Stored>(id: &Id) -> HookError {
    no_record::<E>(&id.to_string())
}

/// The 404 of a record a client named by `raw`, which may be anything: it is echoed shortened.
pub fn no_record<E: Stored>(raw: &str) -> HookError {
    HookError::not_found(format!("{} {} does not exist", E::TABLE, echo(raw)))
}

/// The SQL a find filters and sorts `column` by, for `viewer`: the column itself, or, for a
/// private one, the column in the viewer's own records and NULL in everyone else's (what the
/// viewer sees of them), with its bind.
fn seen_by<E: Stored>(column: Column, viewer: Option<&str>, binds: &mut Vec<Bind>) -> String {
    if !E::PRIVATE.contains(&column.name) {
        return column.name.to_owned();
    }
    match viewer {
        Some(viewer) => {
            binds.push(Bind::Text(viewer.to_owned()));
            format!("(CASE WHEN owner = ? THEN {} END)", column.name)
        }
        None => "NULL".to_owned(),
    }
}

/// The SQL of one condition, as `viewer` sees the records, with its binds; a 400 for a field `E`
/// does not have.
fn condition<E: Stored>(
    c: &Condition,
    viewer: Option<&str>,
    binds: &mut Vec<Bind>,
) -> Result<String, HookError> {
    let column = column::<E>(&c.field).ok_or_else(|| unknown_field::<E>(&c.field))?;
    let op = match c.op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Like => "LIKE",
    };
    if c.value.is_null() {
        let field = seen_by::<E>(column, viewer, binds);
        return match c.op {
            Op::Eq => Ok(format!("{field} IS NULL")),
            Op::Ne => Ok(format!("{field} IS NOT NULL")),
            _ => Err(HookError::bad_request(format!(
                "`{}` cannot be compared with null by {op}",
                c.field
            ))),
        };
    }
    let bind = if c.op == Op::Like {
        match &c.value {
            Value::String(s) => Bind::Text(s.clone()),
            other => {
                return Err(HookError::bad_request(format!(
                    "LIKE takes a string pattern, not {}",
                    echo(&other.to_string())
                )));
            }
        }
    } else {
        bind_value(column, &c.value)?
    };
    let field = seen_by::<E>(column, viewer, binds);
    binds.push(bind);
    Ok(format!("{field} {op} ?"))
}

/// The 400 of a field `E` does not have.
pub fn unknown_field<E: Stored>(field: &str) -> HookError {
    let mut known: Vec<&str> = vec![ID.name];
    known.extend(E::COLUMNS.iter().map(|c| c.name));
    HookError::new(
        400,
        "unknown_field",
        format!(
            "{} has no field `{}`; its fields are {}",
            E::TABLE,
            echo(field),
            known.join(", ")
        ),
    )
}

/// What selects the records of `q` in SQL, as `viewer` sees them ([`find`]): ` WHERE` every
/// condition, each in parentheses and joined by AND, then ` ORDER BY` its sort keys and the id,
/// and ` LIMIT ? OFFSET ?` (no limit when it has none), with the binds appended to `binds`.
fn selection<E: Stored>(
    q: &Query<E>,
    viewer: Option<&str>,
    binds: &mut Vec<Bind>,
) -> Result<String, HookError> {
    let mut sql = String::new();
    let conditions = q
        .filter
        .iter()
        .map(|c| condition::<E>(c, viewer, binds).map(|c| format!("({c})")))
        .collect::<Result<Vec<_>, _>>()?;
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let mut order = Vec::new();
    for s in &q.sort {
        let column = column::<E>(&s.field).ok_or_else(|| unknown_field::<E>(&s.field))?;
        order.push(format!(
            "{} {}",
            seen_by::<E>(column, viewer, binds),
            if s.descending { "DESC" } else { "ASC" }
        ));
    }
    order.push("id ASC".into());
    sql.push_str(" ORDER BY ");
    sql.push_str(&order.join(", "));
    sql.push_str(" LIMIT ? OFFSET ?");
    binds.push(Bind::Int(q.limit.map_or(-1, i64::from)));
    binds.push(Bind::Int(i64::from(q.offset)));
    Ok(sql)
}

/// The records matching `q`: all its conditions, in its sort order (then by id), one page
/// (every record when it has no limit).
///
/// Conditions and sort keys see the records as `viewer` (the caller's user id) does: a private
/// column ([`Stored::PRIVATE`]) is null in the records `viewer` does not own, so neither the
/// records found nor their order tell anything about a value the caller may not read. Each
/// condition is kept whole (in its own parentheses, joined to the others by AND), so one that a
/// before handler adds to narrow the query holds whatever the others say.
pub async fn find<E: Stored>(
    conn: &mut SqliteConnection,
    q: &Query<E>,
    viewer: Option<&str>,
) -> Result<Vec<E>, HookError> {
    let mut binds = Vec::new();
    let sql = format!(
        "SELECT {} FROM {}{}",
        select_list::<E>(),
        E::SQL_TABLE,
        selection::<E>(q, viewer, &mut binds)?
    );
    let rows = query(sql, binds).fetch_all(conn).await.map_err(error)?;
    rows.iter().map(from_row::<E>).collect()
}

/// `id IN (...)`: the ids of exactly the records [`find`] returns for `q` and `viewer`, so that
/// a bulk update or delete acts on the records a handler read with the same query.
fn ids_of<E: Stored>(
    q: &Query<E>,
    viewer: Option<&str>,
    binds: &mut Vec<Bind>,
) -> Result<String, HookError> {
    Ok(format!(
        "id IN (SELECT id FROM {}{})",
        E::SQL_TABLE,
        selection::<E>(q, viewer, binds)?
    ))
}

/// Set the fields of `changes` (column name → value) in every record `q` selects, as `viewer`
/// sees them ([`find`]); returns how many records it selected. A value of the wrong type is a
/// 400 naming its field, a name that is no column 400 `unknown_field`, and `id` 400
/// `read_only_field`: a record's id never changes. No changes at all write nothing and count
/// the records selected.
pub async fn update_where<E: Stored>(
    conn: &mut SqliteConnection,
    q: &Query<E>,
    changes: &Map<String, Value>,
    viewer: Option<&str>,
) -> Result<u64, HookError> {
    let mut set = Vec::new();
    let mut binds = Vec::new();
    for (field, value) in changes {
        if field == ID.name {
            return Err(HookError::new(
                400,
                "read_only_field",
                "the id of a record cannot be changed",
            ));
        }
        let column = E::COLUMNS
            .iter()
            .find(|c| c.name == field)
            .ok_or_else(|| unknown_field::<E>(field))?;
        set.push(format!("{} = ?", column.name));
        binds.push(bind_value(*column, value)?);
    }
    let ids = ids_of::<E>(q, viewer, &mut binds)?;
    if set.is_empty() {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE {ids}", E::SQL_TABLE);
        let row = query(sql, binds).fetch_one(conn).await.map_err(error)?;
        let count: i64 = row.try_get(0).map_err(error)?;
        return Ok(u64::try_from(count).unwrap_or_default());
    }
    let sql = format!("UPDATE {} SET {} WHERE {ids}", E::SQL_TABLE, set.join(", "));
    let done = query(sql, binds).execute(conn).await.map_err(error)?;
    Ok(done.rows_affected())
}

/// Delete every record `q` selects, as `viewer` sees them ([`find`]); returns how many.
pub async fn delete_where<E: Stored>(
    conn: &mut SqliteConnection,
    q: &Query<E>,
    viewer: Option<&str>,
) -> Result<u64, HookError> {
    let mut binds = Vec::new();
    let sql = format!(
        "DELETE FROM {} WHERE {}",
        E::SQL_TABLE,
        ids_of::<E>(q, viewer, &mut binds)?
    );
    let done = query(sql, binds).execute(conn).await.map_err(error)?;
    Ok(done.rows_affected())
}

/// How many records `q` selects, as `viewer` sees them ([`find`]): what a bulk update or delete
/// of `q` would change, counted without reading them.
pub async fn count_where<E: Stored>(
    conn: &mut SqliteConnection,
    q: &Query<E>,
    viewer: Option<&str>,
) -> Result<u64, HookError> {
    let mut binds = Vec::new();
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT id FROM {}{})",
        E::SQL_TABLE,
        selection::<E>(q, viewer, &mut binds)?
    );
    let row = query(sql, binds).fetch_one(conn).await.map_err(error)?;
    let count: i64 = row.try_get(0).map_err(error)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Contact;

    async fn memory() -> SqlitePool {
        connect(&Database::Memory).await.unwrap()
    }

    fn contact(name: &str, email: &str) -> Contact {
        Contact {
            name: name.into(),
            email: email.into(),
            ..Contact::default()
        }
    }

    #[tokio::test]
    async fn a_record_reads_back_as_it_was_written() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        let mut ada = contact("Ada", "ada@example.com");
        ada.vip = true;
        ada.phone = Some("+44 20".into());
        let stored = insert(&mut conn, ada.clone()).await.unwrap();
        assert_eq!(stored.id, Some(Id::Int(1)));
        let read: Contact = get(&mut conn, &Id::Int(1)).await.unwrap().unwrap();
        assert_eq!(
            read,
            Contact {
                id: Some(Id::Int(1)),
                ..ada
            }
        );
    }

    #[tokio::test]
    async fn find_filters_sorts_and_pages_with_bound_values() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        for (name, email) in [("Cy", "c@x.io"), ("Ada", "a@x.io"), ("Bob", "b@y.io")] {
            insert(&mut conn, contact(name, email)).await.unwrap();
        }
        let q = Query::<Contact>::all()
            .filter("email", Op::Like, "%@x.io")
            .sort("name", false);
        let names: Vec<String> = find(&mut conn, &q, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["Ada", "Cy"]);
        let q = Query::<Contact>::all().sort("name", true).page(1, 1);
        let page = find(&mut conn, &q, None).await.unwrap();
        assert_eq!(page[0].name, "Bob");
        // A value that looks like SQL is only ever a value.
        let q = Query::<Contact>::all().filter("name", Op::Eq, "x' OR '1'='1");
        assert!(find(&mut conn, &q, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_field_outside_the_whitelist_is_a_400() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        let q = Query::<Contact>::all().filter("1=1; DROP TABLE contacts; --", Op::Eq, 1);
        let err = find(&mut conn, &q, None).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (400, "unknown_field"));
        let q = Query::<Contact>::all().sort("password_hash", false);
        assert_eq!(find(&mut conn, &q, None).await.unwrap_err().status(), 400);
    }

    #[tokio::test]
    async fn a_change_or_delete_made_from_a_stale_read_is_a_409_and_writes_nothing() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        let read = insert(&mut conn, contact("Ada", "a@x.io")).await.unwrap();
        let id = Id::Int(1);
        let mut other = read.clone();
        other.company = Some("AE".into());
        update(&mut conn, &id, other.clone(), Some(&read))
            .await
            .unwrap();
        // `read` is stale now: a change made from it would undo `company`.
        let mut stale = read.clone();
        stale.vip = true;
        let err = update(&mut conn, &id, stale, Some(&read))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (409, "conflict"));
        let err = delete(&mut conn, &id, Some(&read)).await.unwrap_err();
        assert_eq!(err.status(), 409);
        let stored: Contact = get(&mut conn, &id).await.unwrap().unwrap();
        assert_eq!((stored.company.as_deref(), stored.vip), (Some("AE"), false));
        delete(&mut conn, &id, Some(&stored)).await.unwrap();
        let err = delete(&mut conn, &id, Some(&stored)).await.unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn a_reference_to_a_record_that_does_not_exist_is_a_409_not_a_500() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        let note = crate::model::Note {
            contact_id: 42,
            body: "orphan".into(),
            ..Default::default()
        };
        let err = insert(&mut conn, note).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (409, "conflict"));
    }

    #[tokio::test]
    async fn a_busy_or_locked_database_is_a_503_busy_not_a_500() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let pool = connect(&Database::File(path.clone())).await.unwrap();
        let holder = begin(&pool).await.unwrap();
        // A second writer that does not wait at all: SQLite answers SQLITE_BUSY at once.
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::ZERO);
        let mut other = SqliteConnection::connect_with(&options).await.unwrap();
        let e = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap_err();
        let err = error(e);
        assert_eq!((err.status(), err.code()), (503, "busy"), "{err}");
        assert_eq!(error(sqlx::Error::PoolTimedOut).status(), 503);
        assert_eq!(error(sqlx::Error::RowNotFound).status(), 500);
        holder.rollback().await.unwrap();
    }

    #[test]
    fn an_echo_of_client_input_is_cut_short() {
        assert_eq!(echo("3.0"), "3.0");
        let long = "é".repeat(5000);
        let echoed = echo(&long);
        assert_eq!(echoed.chars().count(), ECHO_MAX + 1);
        assert!(echoed.ends_with('…'));
        assert!(not_found::<Contact>(&Id::Text(long)).message().len() < 200);
    }

    #[test]
    fn a_message_quotes_at_most_a_short_prefix_of_each_thing_it_quotes() {
        let long = "x".repeat(60_000);
        let cut = format!("{}…", "x".repeat(ECHO_MAX));
        // serde's, with a string written as Rust writes one, quotes and escapes included.
        let serde = format!(
            "invalid type: string {:?}, expected a map at line 1 column 9",
            long
        );
        assert_eq!(
            echo_quoted(&serde),
            format!("invalid type: string \"{cut}\", expected a map at line 1 column 9")
        );
        let tricky = format!("{long}\"`{long}");
        let serde = format!("invalid value: string {tricky:?}, expected a date");
        let shortened = echo_quoted(&serde);
        assert!(shortened.ends_with("…\", expected a date"), "{shortened}");
        assert!(shortened.chars().count() < 100, "{shortened}");
        // An unknown field's name is written raw, backticks and all.
        for name in [
            long.clone(),
            format!("a`{long}"),
            format!("a`, expected `{long}"),
        ] {
            let serde = format!(
                "unknown field `{name}`, expected `email` or `password` at line 1 column 70000"
            );
            let shortened = echo_quoted(&serde);
            assert!(shortened.chars().count() < 140, "{shortened}");
            assert!(
                shortened.ends_with("`, expected `email` or `password` at line 1 column 70000"),
                "{shortened}"
            );
        }
        // Short quotes and plain text stay as they are; an unclosed quote is cut too.
        let plain = "Contact has no field `nme`; its fields are id, name";
        assert_eq!(echo_quoted(plain), plain);
        assert_eq!(echo_quoted(&format!("`{long}")), format!("`{cut}"));
        assert!(echo_quoted(&"y".repeat(5000)).chars().count() <= MESSAGE_MAX + 1);
        let err = echoed(HookError::new(400, "invalid_field", format!("`{long}`")));
        assert_eq!((err.status(), err.code()), (400, "invalid_field"));
        assert_eq!(err.message(), format!("`{cut}`"));
    }

    #[test]
    fn a_message_the_service_writes_is_answered_whole_whatever_the_client_quoted() {
        let sent = format!("x`{}", "y".repeat(60));
        let err = unknown_field::<Contact>(&sent);
        assert!(!err.message().contains("x`"), "{}", err.message());
        let answered = echoed(err.clone());
        assert_eq!(answered.message(), err.message());
        let mut fields = vec![ID.name];
        fields.extend(Contact::COLUMNS.iter().map(|c| c.name));
        let list = format!("`; its fields are {}", fields.join(", "));
        assert!(
            answered.message().ends_with(&list),
            "{}",
            answered.message()
        );
        assert_eq!(echo("a`b"), "a'b");
    }

    #[tokio::test]
    async fn updating_or_deleting_a_missing_row_is_a_404() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        let err = update(&mut conn, &Id::Int(7), contact("A", "a@b.c"), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        let err = delete::<Contact>(&mut conn, &Id::Int(7), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn a_bulk_update_or_delete_acts_on_exactly_the_records_a_find_selects() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        for (name, owner) in [("Ann", "1"), ("Bea", "2"), ("Cy", "1")] {
            let c = Contact {
                owner: Some(owner.into()),
                ..contact(name, "x@x.io")
            };
            insert(&mut conn, c).await.unwrap();
        }
        let mine =
            Query::<Contact>::all()
                .filter("name", Op::Ne, "Cy")
                .filter("owner", Op::Eq, "1");
        let mut changes = Map::new();
        changes.insert("vip".into(), Value::Bool(true));
        changes.insert("company".into(), Value::from("AE"));
        assert_eq!(count_where(&mut conn, &mine, Some("1")).await.unwrap(), 1);
        assert_eq!(
            update_where(&mut conn, &mine, &changes, Some("1"))
                .await
                .unwrap(),
            1
        );
        let vips = Query::<Contact>::all().filter("vip", Op::Eq, true);
        let found = find(&mut conn, &vips, None).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].name.as_str(), found[0].company.as_deref()),
            ("Ann", Some("AE"))
        );
        // Sort and paging narrow it too, as a find's.
        let first_two = Query::<Contact>::all().sort("name", true).page(2, 0);
        assert_eq!(
            update_where(&mut conn, &first_two, &Map::new(), None)
                .await
                .unwrap(),
            2
        );
        assert_eq!(delete_where(&mut conn, &first_two, None).await.unwrap(), 2);
        let left = find(&mut conn, &Query::<Contact>::all(), None)
            .await
            .unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].name, "Ann");
    }

    #[tokio::test]
    async fn a_bulk_update_changes_no_id_and_no_field_with_a_value_of_the_wrong_type() {
        let pool = memory().await;
        let mut conn = pool.acquire().await.unwrap();
        insert(&mut conn, contact("Ann", "a@x.io")).await.unwrap();
        let all = Query::<Contact>::all();
        for (field, value, code) in [
            ("id", Value::from(7), "read_only_field"),
            ("vip", Value::from("yes"), "bad_request"),
            ("password_hash", Value::from("x"), "unknown_field"),
        ] {
            let mut changes = Map::new();
            changes.insert(field.into(), value);
            let err = update_where(&mut conn, &all, &changes, None)
                .await
                .unwrap_err();
            assert_eq!((err.status(), err.code()), (400, code), "{field}");
        }
        let stored: Contact = get(&mut conn, &Id::Int(1)).await.unwrap().unwrap();
        assert!(!stored.vip);
    }
}
