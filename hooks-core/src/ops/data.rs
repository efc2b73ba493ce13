//! Data operations on an entity's table: create, update, delete, find and find by id, and the
//! bulk forms of create, update and delete.
//!
//! | operation | name | input (before handlers) | output (after handlers) |
//! |---|---|---|---|
//! | [`Create<E>`] | `data.create` | `E` | `E` |
//! | [`Update<E>`] | `data.update` | [`Changes<E>`] (or `E`) | `E` |
//! | [`Delete<E>`] | `data.delete` | [`Key<E>`] | [`Key<E>`] |
//! | [`Find<E>`] | `data.find` | [`Query<E>`] | `Vec<E>` |
//! | [`FindById<E>`] | `data.find_by_id` | [`Key<E>`] | `E` |
//! | [`BulkCreate<E>`] | `data.bulk_create` | `Vec<E>` | `Vec<E>` |
//! | [`BulkUpdate<E>`] | `data.bulk_update` | [`BulkChanges<E>`] | [`Affected<E>`] |
//! | [`BulkDelete<E>`] | `data.bulk_delete` | [`Query<E>`] | [`Affected<E>`] |
//!
//! Wildcard handlers (`"*"`) see every record of a create, of an update's result, of a deleted
//! or found key and of a find's result, and every record of a bulk create, before and after; a
//! query, a bulk update's changes and a count hold no record, so they see none there.
//!
//! The calls of a [`DynRecord`](crate::DynRecord) table whose input names no table (a delete,
//! a find, a find by id, and every bulk form: a list of records may name several) go through
//! `Hooks::run_on` with the table.

use std::marker::PhantomData;

use crate::entity::{Affected, BulkChanges, Changes, Entity, Key, Query, RecordsMut};
use crate::event::Operation;
use crate::table::SlotCache;

macro_rules! data_op {
    (#[doc = $first:literal] $(#[doc = $more:literal])* $ty:ident, $name:literal, $slot:ident, $input:ty, $output:ty,
     |$i:ident| $in_records:expr, |$o:ident| $out_records:expr,
     names_table: $names:literal, |$t:ident| $table:expr
     $(, other_table: |$oi:ident, $oa:ident| $other:expr)?) => {
        #[doc = $first]
        $(#[doc = $more])*
        pub struct $ty<E>(PhantomData<fn() -> E>);

        impl<E: Entity> Operation for $ty<E> {
            type Input = $input;
            type Output = $output;
            const NAME: &'static str = $name;
            const ASSET: &'static str = E::TABLE;
            // A dynamic entity's handlers name their tables.
            const ASSET_KEY: u128 = if E::DYNAMIC {
                crate::registration::ANY_ASSET
            } else {
                crate::registration::asset_key(E::TABLE)
            };
            const DESCRIPTION: &'static str = crate::event::trim_doc($first);
            const DYNAMIC: bool = E::DYNAMIC;
            const INPUT_NAMES_ASSET: bool = $names;

            fn input_asset($t: &Self::Input) -> Option<&str> {
                $table
            }

            $(
                fn input_names_other<'i>($oi: &'i Self::Input, $oa: &str) -> Option<&'i str> {
                    $other
                }
            )?

            fn slot_cache() -> Option<&'static SlotCache> {
                E::__data_slots().map(|s| &s.$slot)
            }

            fn input_records($i: &mut Self::Input) -> RecordsMut<'_> {
                $in_records
            }

            fn output_records($o: &mut Self::Output) -> RecordsMut<'_> {
                $out_records
            }
        }

        const _: () = {
            crate::__register_operation!(crate::event::OperationInfo {
                name: $name,
                asset: "*",
                description: crate::event::trim_doc($first),
                input: stringify!($input),
                output: stringify!($output),
            });
        };
    };
}

data_op!(
    /// Create a record.
    ///
    /// Before handlers see the new record, after handlers the stored one.
    Create, "data.create", create, E, E,
    |i| RecordsMut::One(i), |o| RecordsMut::One(o),
    names_table: true, |i| i.dynamic_table()
);
data_op!(
    /// Update a record; handlers can compare it with the original.
    ///
    /// Before handlers see [`Changes`] (new version and, when known, the original), after
    /// handlers the stored record.
    Update, "data.update", update, Changes<E>, E,
    |i| RecordsMut::One(&mut i.record), |o| RecordsMut::One(o),
    names_table: true, |i| i.record.dynamic_table(),
    other_table: |i, asset| std::iter::once(&i.record)
        .chain(i.original.as_ref())
        .filter_map(|r| r.dynamic_table())
        .find(|t| *t != asset)
);
data_op!(
    /// Delete a record by id.
    ///
    /// Before handlers see the [`Key`], after handlers the deleted one.
    Delete, "data.delete", delete, Key<E>, Key<E>,
    |i| key_record(i), |o| key_record(o),
    names_table: false, |_i| None,
    other_table: |i, asset| key_table_other(i, asset)
);
data_op!(
    /// Find records by filter, sort order and page.
    ///
    /// Before handlers see (and may narrow) the [`Query`], after handlers the records found.
    Find, "data.find", find, Query<E>, Vec<E>,
    |_i| RecordsMut::None, |o| RecordsMut::Many(o),
    names_table: false, |_i| None
);
data_op!(
    /// Find one record by id.
    ///
    /// Before handlers see the [`Key`], after handlers the record.
    FindById, "data.find_by_id", find_by_id, Key<E>, E,
    |i| key_record(i), |o| RecordsMut::One(o),
    names_table: false, |_i| None,
    other_table: |i, asset| key_table_other(i, asset)
);

data_op!(
    /// Create several records in one call.
    ///
    /// Before handlers see the new records, after handlers the stored ones.
    BulkCreate, "data.bulk_create", bulk_create, Vec<E>, Vec<E>,
    |i| RecordsMut::Many(i), |o| RecordsMut::Many(o),
    names_table: false, |_i| None,
    other_table: |i, asset| i.iter().filter_map(|r| r.dynamic_table()).find(|t| *t != asset)
);
data_op!(
    /// Update every record a query selects with the same changes.
    ///
    /// Before handlers see the [`BulkChanges`] (the query and the changes, field by field), after
    /// handlers how many records were updated ([`Affected`]).
    BulkUpdate, "data.bulk_update", bulk_update, BulkChanges<E>, Affected<E>,
    |_i| RecordsMut::None, |_o| RecordsMut::None,
    names_table: false, |_i| None
);
data_op!(
    /// Delete every record a query selects.
    ///
    /// Before handlers see (and may narrow) the [`Query`], after handlers how many records were
    /// deleted ([`Affected`]).
    BulkDelete, "data.bulk_delete", bulk_delete, Query<E>, Affected<E>,
    |_i| RecordsMut::None, |_o| RecordsMut::None,
    names_table: false, |_i| None
);

/// The table a key's loaded record names, when it is not `asset`.
fn key_table_other<'k, E: Entity>(key: &'k Key<E>, asset: &str) -> Option<&'k str> {
    key.record
        .as_ref()
        .and_then(|r| r.dynamic_table())
        .filter(|t| *t != asset)
}

fn key_record<E: Entity>(key: &mut Key<E>) -> RecordsMut<'_> {
    match &mut key.record {
        Some(r) => RecordsMut::One(r),
        None => RecordsMut::None,
    }
}
