//! `/data/{table}[/{id}]`: create, find, read, change and delete records of the typed tables, each
//! call through the hooks runtime, in its own unit of work.
//!
//! The table name in the path picks the Rust type ([`Contact`] or [`Note`]); any other name is a
//! 404. Field names a client sends are checked against the type's columns before anything runs.
//! An id in a path is a record's id only in its canonical form (`3`, not `3.0`, `03` or ` 3`).
//!
//! A change reads the stored record, merges what the client sent, runs the hooks and writes the
//! result. Two changes of one record in this process take turns (`edit_lock`), so each merges
//! into what the other wrote; and the write itself only applies to the version that was read (a
//! 409 otherwise), which covers another process writing the same database file.
//!
//! `/data/bulk/{table}` creates many records (`POST`, a JSON array of at most
//! [`Config::bulk_max`](crate::Config::bulk_max) records), or changes (`PUT`, a JSON object of
//! field changes) or deletes (`DELETE`) every record a `where` clause selects, which they need
//! ([`query::parse_bulk`]). Each is one call of the runtime (`bulk_create`, `bulk_update`,
//! `bulk_delete`) in one unit of work: all of it is written, or none. A bulk update changes the
//! selected records in place (one SQL `UPDATE` of the fields sent), in the call's write
//! transaction, so it needs no edit lock: a single update that read a record before it then
//! gets its 409.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hooks::{Affected, BulkChanges, Changes, Entity, HookError, Id, Key};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, MutexGuard};

use crate::App;
use crate::api::{ApiError, CurrentUser, JsonBody, Rid, context, query, rejection};
use crate::db::{self, Stored, echo};
use crate::handlers::in_record;
use crate::model::{Contact, Note};

/// Run `$body` with `$E` standing for the type of the table `$table`, or answer 404.
macro_rules! by_table {
    ($table:expr, $E:ident => $body:expr) => {{
        let table: &str = &$table;
        if table == <Contact as Entity>::TABLE {
            type $E = Contact;
            $body
        } else if table == <Note as Entity>::TABLE {
            type $E = Note;
            $body
        } else {
            Err(ApiError(HookError::not_found(format!(
                "there is no table `{}`; the tables are {}, {}",
                echo(table),
                <Contact as Entity>::TABLE,
                <Note as Entity>::TABLE
            ))))
        }
    }};
}

/// An id from a path: an integer written the way it is written back (`3`, not `3.0`, `03`, `+3`
/// or ` 3`), so a record has one name only, in responses and in the audit trail alike; `None`
/// for anything else.
pub fn parse_id(raw: &str) -> Option<Id> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| id.to_string() == raw)
        .map(Id::Int)
}

/// The id of a record of `E` from a path, or a 404 that repeats at most a short prefix of it.
fn id_of<E: Stored>(raw: &str) -> Result<Id, ApiError> {
    parse_id(raw).ok_or_else(|| ApiError(db::no_record::<E>(raw)))
}

/// Locks that changes and deletes of one record take in turn, from their read of the stored
/// version to their commit. Striped: a fixed number of locks, a record's picked by its table and
/// id, so memory stays bounded; two records that share a stripe merely take turns too.
static EDIT_LOCKS: [Mutex<()>; 64] = [const { Mutex::const_new(()) }; 64];

/// Wait for the turn to change or delete the record `id` of `E`.
async fn edit_lock<E: Stored>(id: &Id) -> MutexGuard<'static, ()> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((E::TABLE, id));
    let stripe = usize::try_from(hash % EDIT_LOCKS.len() as u64).unwrap_or_default();
    EDIT_LOCKS[stripe].lock().await
}

/// An `E` from a client's fields: every field must be a column, and of the column's type.
fn record_from<E: Stored>(fields: Map<String, Value>) -> Result<E, HookError> {
    if let Some(field) = fields.keys().find(|k| db::column::<E>(k).is_none()) {
        return Err(db::unknown_field::<E>(field));
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        // serde quotes the value it could not take: each quote cut short.
        let reason = db::echo_quoted(&e.to_string());
        HookError::bad_request(format!("not a valid {}: {reason}", E::TABLE))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, HookError> {
    serde_json::to_value(value).map_err(|e| HookError::internal(format!("cannot serialise: {e}")))
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|r| rejection(r.status(), r.body_text()))
}

/// `POST /data/{table}`: create a record.
pub async fn create(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    table: Result<Path<String>, PathRejection>,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    by_table!(path(table)?, E => create_in::<E>(&app, &rid, user, fields).await)
}

async fn create_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    let record: E = record_from(fields)?;
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .create(&mut ctx, record, |record| async move {
            let mut tx = w.tx().await?;
            db::insert(tx.conn()?, record).await
        })
        .await;
    let saved = guard.finish(result).await?;
    Ok((StatusCode::CREATED, Json(to_json(&saved)?)).into_response())
}

/// `GET /data/{table}?where=&sortBy=&pageSize=&offset=`: find records.
pub async fn find(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    table: Result<Path<String>, PathRejection>,
    params: Result<UrlQuery<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlQuery(params) = params.map_err(|r| rejection(r.status(), r.body_text()))?;
    by_table!(path(table)?, E => find_in::<E>(&app, &rid, user, &params).await)
}

async fn find_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let q = query::parse::<E>(params)?;
    let viewer = user.user.id.clone();
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let pool = app.pool.clone();
    let result = app
        .hooks
        .find(&mut ctx, q, |q| async move {
            let mut conn = pool.acquire().await.map_err(db::error)?;
            db::find(&mut conn, &q, Some(&viewer)).await
        })
        .await;
    let found = guard.finish(result).await?;
    Ok(Json(to_json(&found)?).into_response())
}

/// `GET /data/{table}/{id}`: read one record.
pub async fn find_by_id(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (table, id) = path(p)?;
    by_table!(table, E => find_by_id_in::<E>(&app, &rid, user, id_of::<E>(&id)?).await)
}

async fn load<E: Stored>(app: &App, id: &Id) -> Result<E, HookError> {
    let mut conn = app.pool.acquire().await.map_err(db::error)?;
    db::get::<E>(&mut conn, id)
        .await?
        .ok_or_else(|| db::not_found::<E>(id))
}

async fn find_by_id_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    id: Id,
) -> Result<Response, ApiError> {
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let a = app.clone();
    let result = app
        .hooks
        .find_by_id(&mut ctx, Key::<E>::new(id), |key| async move {
            load::<E>(&a, &key.id).await
        })
        .await;
    let found = guard.finish(result).await?;
    Ok(Json(to_json(&found)?).into_response())
}

/// `PUT /data/{table}/{id}`: change the fields sent, keep the others.
pub async fn update(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    p: Result<Path<(String, String)>, PathRejection>,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let (table, id) = path(p)?;
    by_table!(table, E => update_in::<E>(&app, &rid, user, id_of::<E>(&id)?, fields).await)
}

async fn update_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    id: Id,
    fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    if let Some(field) = fields.keys().find(|k| db::column::<E>(k).is_none()) {
        return Err(db::unknown_field::<E>(field).into());
    }
    // From the read to the commit, no other change of this record runs here: each merges the
    // fields it was sent into what the one before it wrote.
    let _turn = edit_lock::<E>(&id).await;
    let original: E = load(app, &id).await?;
    let Value::Object(mut merged) = to_json(&original)? else {
        return Err(HookError::internal("a record is not a JSON object").into());
    };
    merged.extend(fields);
    let record: E = record_from(merged)?;
    let expected = original.clone();
    let changes = Changes::new(id, record).with_original(original);
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .update(&mut ctx, changes, |changes| async move {
            let mut tx = w.tx().await?;
            db::update(tx.conn()?, &changes.id, changes.record, Some(&expected)).await
        })
        .await;
    let saved = guard.finish(result).await?;
    Ok(Json(to_json(&saved)?).into_response())
}

/// `DELETE /data/{table}/{id}`: delete a record.
pub async fn delete(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (table, id) = path(p)?;
    by_table!(table, E => delete_in::<E>(&app, &rid, user, id_of::<E>(&id)?).await)
}

async fn delete_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    id: Id,
) -> Result<Response, ApiError> {
    let _turn = edit_lock::<E>(&id).await;
    let record: E = load(app, &id).await?;
    let expected = record.clone();
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .delete(
            &mut ctx,
            Key::new(id).with_record(record),
            |key| async move {
                let mut tx = w.tx().await?;
                db::delete::<E>(tx.conn()?, &key.id, Some(&expected)).await?;
                Ok(key)
            },
        )
        .await;
    let deleted = guard.finish(result).await?;
    Ok(Json(json!({ "deleted": deleted.id })).into_response())
}

/// `POST /data/bulk/{table}`: create several records in one call, all or none. The body is a
/// JSON array of records, each as `POST /data/{table}` takes one; the answer (201) is the array
/// of created records, each as that route answers it. An error about one record names its index
/// (`records[2]: ...`).
pub async fn bulk_create(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    table: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let Value::Array(records) = body else {
        return Err(HookError::bad_request(
            "a bulk create takes a JSON array of records, such as [{\"name\": ...}, ...]",
        )
        .into());
    };
    if records.is_empty() {
        return Err(HookError::bad_request("a bulk create needs at least one record").into());
    }
    let max = app.config.bulk_max;
    if records.len() > max {
        return Err(HookError::new(
            413,
            "too_many_records",
            format!(
                "a bulk create takes at most {max} records, not {}; send them in several calls",
                records.len()
            ),
        )
        .into());
    }
    by_table!(path(table)?, E => bulk_create_in::<E>(&app, &rid, user, records).await)
}

async fn bulk_create_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    records: Vec<Value>,
) -> Result<Response, ApiError> {
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let Value::Object(fields) = record else {
                return Err(in_record(
                    format_args!("records[{i}]"),
                    HookError::bad_request(format!("a {} is a JSON object", E::TABLE)),
                ));
            };
            record_from::<E>(fields).map_err(|e| in_record(format_args!("records[{i}]"), e))
        })
        .collect::<Result<Vec<E>, HookError>>()?;
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .bulk_create(&mut ctx, records, |records| async move {
            let mut tx = w.tx().await?;
            let conn = tx.conn()?;
            let mut saved = Vec::with_capacity(records.len());
            for (i, record) in records.into_iter().enumerate() {
                let record = db::insert(conn, record)
                    .await
                    .map_err(|e| in_record(format_args!("records[{i}]"), e))?;
                saved.push(record);
            }
            Ok(saved)
        })
        .await;
    let saved = guard.finish(result).await?;
    Ok((StatusCode::CREATED, Json(to_json(&saved)?)).into_response())
}

/// `PUT /data/bulk/{table}?where=...`: make the changes of the body (a JSON object of fields and
/// values, at least one) to every record the `where` clause selects (it is required), all or
/// none; answers `{"updated": n}`.
pub async fn bulk_update(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    table: Result<Path<String>, PathRejection>,
    params: Result<UrlQuery<Vec<(String, String)>>, QueryRejection>,
    JsonBody(fields): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let UrlQuery(params) = params.map_err(|r| rejection(r.status(), r.body_text()))?;
    by_table!(path(table)?, E => bulk_update_in::<E>(&app, &rid, user, &params, fields).await)
}

async fn bulk_update_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    params: &[(String, String)],
    fields: Map<String, Value>,
) -> Result<Response, ApiError> {
    let q = query::parse_bulk::<E>(params)?;
    if fields.is_empty() {
        return Err(HookError::bad_request(
            "a bulk update needs at least one field to change, such as {\"vip\": true}",
        )
        .into());
    }
    if let Some(field) = fields.keys().find(|k| db::column::<E>(k).is_none()) {
        return Err(db::unknown_field::<E>(field).into());
    }
    let changes = BulkChanges::<E>::from_json(q, Value::Object(fields))?;
    let viewer = user.user.id.clone();
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .bulk_update(&mut ctx, changes, |changes| async move {
            let mut tx = w.tx().await?;
            let count =
                db::update_where(tx.conn()?, &changes.query, changes.changes(), Some(&viewer))
                    .await?;
            Ok(Affected::new(count))
        })
        .await;
    let updated = guard.finish(result).await?;
    Ok(Json(json!({ "updated": updated.count })).into_response())
}

/// `DELETE /data/bulk/{table}?where=...`: delete every record the `where` clause selects (it is
/// required), all or none; answers `{"deleted": n}`.
pub async fn bulk_delete(
    State(app): State<App>,
    rid: Rid,
    user: CurrentUser,
    table: Result<Path<String>, PathRejection>,
    params: Result<UrlQuery<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlQuery(params) = params.map_err(|r| rejection(r.status(), r.body_text()))?;
    by_table!(path(table)?, E => bulk_delete_in::<E>(&app, &rid, user, &params).await)
}

async fn bulk_delete_in<E: Stored>(
    app: &App,
    rid: &Rid,
    user: CurrentUser,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let q = query::parse_bulk::<E>(params)?;
    let viewer = user.user.id.clone();
    let (mut ctx, guard) = context(app, rid, Some(user.user));
    let w = guard.work();
    let result = app
        .hooks
        .bulk_delete(&mut ctx, q, |q| async move {
            let mut tx = w.tx().await?;
            let count = db::delete_where(tx.conn()?, &q, Some(&viewer)).await?;
            Ok(Affected::new(count))
        })
        .await;
    let deleted = guard.finish(result).await?;
    Ok(Json(json!({ "deleted": deleted.count })).into_response())
}
