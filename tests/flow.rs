//! The flow of one call, rule by rule, through handlers registered by the attributes.
//!
//! Each module holds its own entity type, so its handlers touch no other test.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::prelude::*;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

/// A log of what ran, one per test.
struct Log(Mutex<Vec<String>>);

impl Log {
    const fn new() -> Self {
        Log(Mutex::new(Vec::new()))
    }
    fn push(&self, what: impl Into<String>) {
        self.0.lock().unwrap().push(what.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

mod changes_input {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Upper {
        pub name: String,
    }

    #[before_create("Upper")]
    fn shout(record: &mut Upper) {
        record.name = record.name.to_uppercase();
    }

    #[tokio::test]
    async fn before_handler_changes_the_input_the_default_receives() {
        let mut ctx = Context::client();
        let seen = Mutex::new(None);
        let out = hooks()
            .create(&mut ctx, Upper { name: "ada".into() }, |r| {
                *seen.lock().unwrap() = Some(r.name.clone());
                async move { Ok(r) }
            })
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().as_deref(), Some("ADA"));
        assert_eq!(out.name, "ADA");
    }
}

mod rejection {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static LOG: Log = Log::new();

    #[derive(Debug, Clone, Entity)]
    pub struct Guarded {
        pub name: String,
    }

    #[before_create("Guarded")]
    fn refuse_short_names(record: &mut Guarded) -> Result<(), HookError> {
        if record.name.len() < 3 {
            return Err(HookError::new(
                422,
                "too_short",
                format!("name {:?} is too short", record.name),
            ));
        }
        Ok(())
    }

    #[before_create("Guarded", priority = 5)]
    fn after_the_guard(_record: &mut Guarded) {
        LOG.push("later before handler");
    }

    #[after_create("Guarded")]
    fn audit(result: &mut Result<Guarded, HookError>) {
        LOG.push(match result {
            Ok(_) => "after: ok".to_string(),
            Err(e) => format!("after: {}", e.code()),
        });
    }

    #[after_create("Guarded", priority = 1)]
    fn only_on_success(_record: &mut Guarded) {
        LOG.push("value-only after handler");
    }

    #[tokio::test]
    async fn rejection_skips_the_default_reaches_the_caller_unchanged_and_after_handlers_still_run()
    {
        let mut ctx = Context::client();
        let err = hooks()
            .create(&mut ctx, Guarded { name: "Al".into() }, |r| async move {
                DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(r)
            })
            .await
            .unwrap_err();
        assert_eq!(
            err,
            HookError::new(422, "too_short", "name \"Al\" is too short")
        );
        assert_eq!(
            DEFAULT_RUNS.load(Ordering::SeqCst),
            0,
            "the default must not run"
        );
        // The later before handler is skipped; the after handler that takes the whole result runs;
        // the one that takes only the value does not.
        assert_eq!(LOG.take(), ["after: too_short"]);
    }
}

mod short_circuit {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);
    pub static LOG: Log = Log::new();

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Cached {
        pub key: String,
        pub hits: u32,
    }

    #[before_find_by_id("Cached")]
    fn answer_from_cache(key: &mut Key<Cached>) -> Result<Flow<Cached>, HookError> {
        if key.id == Id::from("warm") {
            return Ok(Flow::Return(Cached {
                key: "warm".into(),
                hits: 1,
            }));
        }
        Ok(Flow::Continue)
    }

    #[before_find_by_id("Cached", priority = 1)]
    fn skipped_when_answered(_key: &Key<Cached>) {
        LOG.push("second before handler");
    }

    /// Returns a `Flow` without a `Result`: a result of its own, which the other handlers of the
    /// slot do not share, so it runs through its adapter.
    #[before_find_by_id("Cached", priority = 2)]
    fn never_answers(_key: &mut Key<Cached>) -> Flow<Cached> {
        Flow::Continue
    }

    #[after_find_by_id("Cached")]
    fn count_hit(record: &mut Cached) {
        record.hits += 10;
        LOG.push("after handler");
    }

    #[tokio::test]
    async fn short_circuit_skips_the_rest_and_the_default_but_after_handlers_run_while_continue_does_not()
     {
        let mut ctx = Context::client();
        let out = hooks()
            .find_by_id(&mut ctx, Key::new("warm"), |k: Key<Cached>| async move {
                DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(Cached {
                    key: k.id.to_string(),
                    hits: 0,
                })
            })
            .await
            .unwrap();
        assert_eq!(
            out,
            Cached {
                key: "warm".into(),
                hits: 11
            }
        );
        assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 0);
        assert_eq!(LOG.take(), ["after handler"]);

        // Flow::Continue runs the remaining before handlers and the default.
        let out = hooks()
            .find_by_id(&mut ctx, Key::new("cold"), |k: Key<Cached>| async move {
                DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(Cached {
                    key: k.id.to_string(),
                    hits: 0,
                })
            })
            .await
            .unwrap();
        assert_eq!(
            out,
            Cached {
                key: "cold".into(),
                hits: 10
            }
        );
        assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 1);
        assert_eq!(LOG.take(), ["second before handler", "after handler"]);
    }

    /// Every plain sync handler is handed to the dispatcher as itself, with its generic adapter,
    /// which calls it. One that may answer the call with `Result<Flow<Output>, HookError>` comes
    /// with the loop of such handlers; one that returns a `Flow` alone with the loop of that
    /// result, its own.
    #[test]
    fn a_handler_that_may_answer_comes_with_the_answer_loop_and_a_bare_flow_with_its_own() {
        use hooks::__private::diag::before_find_by_id::Own;
        use hooks::registration::{Answers, BareFlow, Owns};
        let hooks = hooks();
        let regs = hooks.table().handlers("data.find_by_id", "Cached");
        let direct = |name: &str| {
            regs.iter()
                .find(|r| r.id().ends_with(name))
                .and_then(|r| r.direct())
        };
        assert!(
            direct("answer_from_cache")
                .is_some_and(|d| d.is::<Answers<BareFlow<Key<Cached>, Cached>, Cached>>()),
            "{regs:?}"
        );
        assert!(
            direct("never_answers")
                .is_some_and(|d| d.is::<Owns<fn(*mut ()) -> Own<Flow<Cached>>, Cached>>()),
            "{regs:?}"
        );
        assert!(
            direct("skipped_when_answered").is_some_and(|d| d.is::<fn(&Key<Cached>)>()),
            "{regs:?}"
        );
        assert!(
            direct("count_hit").is_some_and(|d| d.is::<fn(&mut Cached)>()),
            "{regs:?}"
        );
    }
}

mod after_changes {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Account {
        pub owner: String,
        pub secret: String,
    }

    /// Redact the secret of every account the caller sees.
    #[after_create("Account")]
    fn redact(account: &mut Account) {
        account.secret = "***".into();
    }

    #[after_create("Account", priority = 1)]
    fn refuse_admins(result: &mut Result<Account, HookError>) -> Result<(), HookError> {
        match result {
            Ok(a) if a.owner == "admin" => {
                Err(HookError::forbidden("admins are created elsewhere"))
            }
            _ => Ok(()),
        }
    }

    #[after_create("Account", priority = 2)]
    fn recover_conflicts(result: &mut Result<Account, HookError>) {
        if matches!(result, Err(e) if e.code() == "conflict") {
            *result = Ok(Account {
                owner: "existing".into(),
                secret: "***".into(),
            });
        }
    }

    #[tokio::test]
    async fn after_handler_changes_the_value_the_caller_sees() {
        let mut ctx = Context::client();
        let out = hooks()
            .create(
                &mut ctx,
                Account {
                    owner: "ada".into(),
                    secret: "s3cr3t".into(),
                },
                |a| async move { Ok(a) },
            )
            .await
            .unwrap();
        assert_eq!(out.secret, "***");
    }

    #[tokio::test]
    async fn after_handler_error_replaces_the_result_exactly() {
        let mut ctx = Context::client();
        let err = hooks()
            .create(
                &mut ctx,
                Account {
                    owner: "admin".into(),
                    secret: "x".into(),
                },
                |a| async move { Ok(a) },
            )
            .await
            .unwrap_err();
        assert_eq!(err, HookError::forbidden("admins are created elsewhere"));
    }

    /// Takes the output: runs on success only, and so after a recovered error too.
    #[after_create("Account", priority = 3)]
    fn mark_seen(account: &mut Account) {
        account.owner.push_str(" (seen)");
    }

    #[tokio::test]
    async fn after_handler_can_turn_an_error_into_a_value_that_later_handlers_see() {
        let mut ctx = Context::client();
        let out = hooks()
            .create(
                &mut ctx,
                Account {
                    owner: "bob".into(),
                    secret: "x".into(),
                },
                |_| async move { Err::<Account, _>(HookError::conflict("exists")) },
            )
            .await
            .unwrap();
        assert_eq!(out.owner, "existing (seen)");
    }
}

mod ordering {
    use super::*;

    pub static LOG: Log = Log::new();

    #[derive(Debug, Clone, Entity)]
    pub struct Ordered {
        pub id: u32,
    }

    #[before_create("Ordered", priority = 10)]
    fn late(_: &mut Ordered) {
        LOG.push("late(10)");
    }
    #[before_create("Ordered", priority = -5)]
    fn z_early(_: &mut Ordered) {
        LOG.push("z_early(-5)");
    }
    #[before_create("Ordered")]
    fn b_middle(_: &mut Ordered) {
        LOG.push("b_middle(0)");
    }
    #[before_create("Ordered")]
    async fn a_middle(_: &mut Ordered) {
        tokio::task::yield_now().await;
        LOG.push("a_middle(0, async)");
    }
    #[after_create("Ordered", priority = 3)]
    fn after_b(_: &mut Ordered) {
        LOG.push("after_b(3)");
    }
    #[after_create("Ordered", priority = -3)]
    async fn after_a(_: &mut Ordered) {
        LOG.push("after_a(-3, async)");
    }

    #[tokio::test]
    async fn handlers_run_by_priority_then_by_id_sync_and_async_alike() {
        let hooks = hooks();
        for _ in 0..3 {
            let mut ctx = Context::client();
            hooks
                .create(&mut ctx, Ordered { id: 1 }, |o| async move { Ok(o) })
                .await
                .unwrap();
            assert_eq!(
                LOG.take(),
                [
                    "z_early(-5)",
                    "a_middle(0, async)",
                    "b_middle(0)",
                    "late(10)",
                    "after_a(-3, async)",
                    "after_b(3)"
                ]
            );
        }
        let ids: Vec<_> = hooks
            .table()
            .handlers("data.create", "Ordered")
            .iter()
            .map(|r| r.id())
            .collect();
        assert_eq!(
            ids,
            [
                "flow::ordering::z_early",
                "flow::ordering::a_middle",
                "flow::ordering::b_middle",
                "flow::ordering::late",
                "flow::ordering::after_a",
                "flow::ordering::after_b",
            ]
        );
    }
}

mod call_state {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Timed {
        pub tag: String,
        pub seen: Option<u64>,
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Started(u64);

    #[before_update("Timed")]
    fn start(changes: &mut Changes<Timed>, ctx: &Context) {
        if changes.record.tag == "mark" {
            ctx.set_state(Started(42));
        }
    }

    #[after_update("Timed")]
    fn finish(record: &mut Timed, ctx: &Context) {
        record.seen = ctx.state::<Started>().map(|s| s.0);
    }

    #[tokio::test]
    async fn before_handler_state_reaches_after_handlers_of_the_same_call_only() {
        let hooks = hooks();
        let mut ctx = Context::client();
        let marked = Changes::new(
            1,
            Timed {
                tag: "mark".into(),
                seen: None,
            },
        );
        let out = hooks
            .update(&mut ctx, marked, |c| async move { Ok(c.record) })
            .await
            .unwrap();
        assert_eq!(out.seen, Some(42));
        // The same context, reused for the next call, starts with empty state.
        let plain = Changes::new(
            2,
            Timed {
                tag: "plain".into(),
                seen: None,
            },
        );
        let out = hooks
            .update(&mut ctx, plain, |c| async move { Ok(c.record) })
            .await
            .unwrap();
        assert_eq!(out.seen, None);
    }
}

mod update_original {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Priced {
        pub price: u32,
    }

    /// Price rises above 50% need approval; the handler compares with the stored version.
    #[before_update("Priced")]
    fn limit_rise(changes: &Changes<Priced>) -> Result<(), HookError> {
        match &changes.original {
            Some(old) if changes.record.price > old.price * 3 / 2 => {
                Err(HookError::rejected(format!(
                    "price {} -> {} needs approval",
                    old.price, changes.record.price
                )))
            }
            _ => Ok(()),
        }
    }

    /// The same function serves create and update: on update it takes the new version only.
    #[before_create("Priced")]
    #[before_update("Priced", priority = 1)]
    fn round_price(record: &mut Priced) {
        record.price = record.price.div_ceil(10) * 10;
    }

    #[tokio::test]
    async fn update_handlers_see_the_original_and_one_function_serves_two_events() {
        let hooks = hooks();
        let mut ctx = Context::client();
        let ok = Changes::new(7, Priced { price: 141 }).with_original(Priced { price: 100 });
        let out = hooks
            .update(&mut ctx, ok, |c| async move { Ok(c.record) })
            .await
            .unwrap();
        assert_eq!(out.price, 150);
        let too_much = Changes::new(7, Priced { price: 151 }).with_original(Priced { price: 100 });
        let err = hooks
            .update(&mut ctx, too_much, |c| async move { Ok(c.record) })
            .await
            .unwrap_err();
        assert_eq!(err.message(), "price 100 -> 151 needs approval");
        let created = hooks
            .create(&mut ctx, Priced { price: 1 }, |p| async move { Ok(p) })
            .await
            .unwrap();
        assert_eq!(created.price, 10);
    }
}

mod find_and_delete {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    #[entity(table = "notes")]
    pub struct Note {
        pub owner: String,
        pub text: String,
        pub private: bool,
    }

    /// Clients see only their own notes.
    #[before_find("notes")]
    fn own_notes_only(query: &mut Query<Note>, ctx: &Context) -> Result<(), HookError> {
        let user = ctx.require_user()?;
        query.filter.push(hooks::Condition {
            field: "owner".into(),
            op: Op::Eq,
            value: user.id.clone().into(),
        });
        Ok(())
    }

    #[after_find("notes")]
    fn hide_private(notes: &mut Vec<Note>) {
        notes.retain(|n| !n.private);
    }

    #[before_delete("notes")]
    fn keep_pinned(key: &Key<Note>) -> Result<(), HookError> {
        if key.id == Id::Int(1) {
            return Err(HookError::forbidden("note 1 is pinned"));
        }
        Ok(())
    }

    #[after_delete("notes")]
    fn report_deleted(key: &mut Key<Note>) {
        if let Some(note) = &mut key.record {
            note.text = format!("deleted: {}", note.text);
        }
    }

    fn all_notes() -> Vec<Note> {
        vec![
            Note {
                owner: "ada".into(),
                text: "a".into(),
                private: false,
            },
            Note {
                owner: "ada".into(),
                text: "b".into(),
                private: true,
            },
        ]
    }

    #[tokio::test]
    async fn find_handlers_narrow_the_query_and_filter_the_results() {
        let hooks = hooks();
        let mut ctx = Context::client().with_user(User::new("ada"));
        let found = hooks
            .find(&mut ctx, Query::all(), |q: Query<Note>| async move {
                assert_eq!(q.filter.len(), 1);
                assert_eq!(q.filter[0].value, serde_json::json!("ada"));
                Ok(all_notes())
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        let mut anonymous = Context::client();
        let err = hooks
            .find(&mut anonymous, Query::all(), |_: Query<Note>| async {
                Ok(all_notes())
            })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 401);
    }

    #[tokio::test]
    async fn delete_handlers_guard_and_report() {
        let hooks = hooks();
        let mut ctx = Context::client();
        let err = hooks
            .delete(&mut ctx, Key::<Note>::new(1), |k| async move { Ok(k) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 403);
        let done = hooks
            .delete(&mut ctx, Key::<Note>::new(2), |k| async move {
                Ok(k.with_record(Note {
                    owner: "ada".into(),
                    text: "b".into(),
                    private: false,
                }))
            })
            .await
            .unwrap();
        assert_eq!(done.record.unwrap().text, "deleted: b");
    }
}

mod context_view {
    use super::*;

    pub static LOG: Log = Log::new();

    #[derive(Debug, Clone, Entity)]
    pub struct Seen {
        pub id: u32,
    }

    struct Tenant(&'static str);

    /// Records what the handler sees of its call.
    #[before_create("Seen", priority = 2)]
    fn look(_: &Seen, ctx: &Context) {
        LOG.push(format!(
            "{} {} {} {} {:?} {:?} {:?} {:?}",
            ctx.operation(),
            ctx.asset(),
            ctx.phase().as_str(),
            ctx.handler_id().unwrap_or("-"),
            ctx.origin(),
            ctx.user().map(|u| u.id.as_str()),
            ctx.request_id(),
            ctx.extension::<Tenant>().map(|t| t.0),
        ));
    }

    #[after_create("Seen")]
    async fn look_after(_: &mut Seen, ctx: &Context) {
        LOG.push(format!(
            "{} {}",
            ctx.phase().as_str(),
            ctx.handler_id().unwrap_or("-")
        ));
    }

    #[tokio::test]
    async fn handlers_see_the_event_their_id_and_the_callers_context() {
        let mut ctx = Context::server()
            .with_user(User::new("u1"))
            .with_request_id("r-9")
            .with_extension(Tenant("acme"));
        hooks()
            .create(&mut ctx, Seen { id: 1 }, |s| async move { Ok(s) })
            .await
            .unwrap();
        assert_eq!(
            LOG.take(),
            [
                "data.create Seen before flow::context_view::look Server Some(\"u1\") Some(\"r-9\") Some(\"acme\")",
                "after flow::context_view::look_after",
            ]
        );
        assert_eq!(
            ctx.handler_id(),
            None,
            "the handler is cleared once the call is done"
        );
    }
}

mod sync_calls {
    use super::*;

    pub static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, Entity)]
    pub struct Mixed {
        pub id: u32,
    }

    #[before_create("Mixed")]
    async fn needs_await(_: &mut Mixed) {}

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct SyncOnly {
        pub n: u32,
    }

    #[before_create("SyncOnly")]
    fn bump(n: &mut SyncOnly) {
        n.n += 1;
    }

    #[after_create("SyncOnly")]
    fn double(n: &mut SyncOnly) {
        n.n *= 2;
    }

    #[test]
    fn sync_call_runs_sync_handlers() {
        let out = hooks().run_sync::<ops::data::Create<SyncOnly>, _>(
            &mut Context::client(),
            SyncOnly { n: 1 },
            Ok,
        );
        assert_eq!(out, Ok(SyncOnly { n: 4 }));
    }

    #[test]
    fn sync_call_refuses_a_slot_with_async_handlers_before_running_anything() {
        let err = hooks()
            .run_sync::<ops::data::Create<Mixed>, _>(&mut Context::client(), Mixed { id: 1 }, |m| {
                DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(m)
            })
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(
            err.message().contains("flow::sync_calls::needs_await"),
            "{err}"
        );
        assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst), 0);
    }
}

mod no_handlers {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Quiet {
        pub n: u8,
    }

    #[tokio::test]
    async fn an_operation_without_handlers_runs_only_the_default() {
        let hooks = hooks();
        assert!(hooks.table().handlers("data.create", "Quiet").is_empty());
        let mut ctx = Context::client();
        let out = hooks
            .create(&mut ctx, Quiet { n: 1 }, |q| async move {
                Ok(Quiet { n: q.n + 1 })
            })
            .await;
        assert_eq!(out, Ok(Quiet { n: 2 }));
        let err = hooks
            .create(&mut ctx, Quiet { n: 1 }, |_| async {
                Err::<Quiet, _>(HookError::conflict("dup"))
            })
            .await;
        assert_eq!(err, Err(HookError::conflict("dup")));
    }
}

mod registrations {
    use super::*;

    #[derive(Debug, Clone, Entity)]
    pub struct Documented {
        pub id: u32,
    }

    /// The line of `stamp`'s attribute.
    const STAMP_LINE: u32 = line!() + 4;
    /// Stamp the record.
    ///
    /// More text that the catalog does not show.
    #[before_create("Documented", priority = 7)]
    fn stamp(_: &mut Documented) {}

    #[test]
    fn a_registration_records_where_and_what_the_handler_is() {
        let hooks = hooks();
        let [reg] = hooks.table().handlers("data.create", "Documented") else {
            panic!("one handler")
        };
        assert_eq!(reg.id(), "flow::registrations::stamp");
        assert_eq!(reg.priority(), 7);
        assert_eq!(reg.doc(), "Stamp the record.");
        assert_eq!(reg.file(), file!());
        assert_eq!(reg.line(), STAMP_LINE);
        assert_eq!(reg.kind(), hooks::Kind::Sync);
        assert_eq!(reg.payload(), "Documented");
        assert!(
            reg.operation_type()
                .contains("Create<flow::registrations::Documented>"),
            "{}",
            reg.operation_type()
        );
    }
}

mod generated {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct Gen {
        pub hits: Vec<String>,
    }

    /// Handlers written by a `macro_rules!`, with the name, payload and return type from its
    /// arguments: the generated glue must not depend on where those tokens came from.
    macro_rules! handlers {
        ($before:ident, $after:ident, $payload:ty, $ret:ty) => {
            #[before_create("Gen")]
            fn $before(g: &mut $payload, ctx: &Context) -> $ret {
                g.hits.push(format!("before {}", ctx.phase().as_str()));
                Ok(())
            }

            #[after_create("Gen")]
            async fn $after(g: &mut $payload) {
                g.hits.push("after".into());
            }
        };
    }

    handlers!(gen_before, gen_after, Gen, Result<(), HookError>);

    /// The whole payload and the context as `ty` fragments, which reach the attribute wrapped
    /// in an invisible group.
    macro_rules! whole_types {
        ($name:ident, $payload:ty, $ctx:ty) => {
            #[after_create("Gen", priority = 5)]
            fn $name(g: $payload, ctx: $ctx) {
                g.hits.push(format!("whole {}", ctx.phase().as_str()));
            }
        };
    }

    whole_types!(gen_whole, &mut Gen, &Context);

    #[tokio::test]
    async fn handlers_generated_by_a_declarative_macro_register_and_run() {
        let out = hooks()
            .create(
                &mut Context::client(),
                Gen { hits: vec![] },
                |g| async move { Ok(g) },
            )
            .await;
        assert_eq!(out.unwrap().hits, ["before before", "after", "whole after"]);
    }

    #[test]
    fn a_return_type_from_a_macro_fragment_still_lets_the_handler_be_called_as_itself() {
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Gen");
        let before = regs.iter().find(|r| r.id().ends_with("gen_before"));
        assert!(before.is_some_and(|r| r.direct().is_some()), "{regs:?}");
    }
}

/// A handler's id and param names are the names written, raw identifiers and keywords
/// included; a deprecated handler is still registered without a warning from the glue.
#[deny(deprecated)]
mod raw_names {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct Raw {
        pub seen: Vec<String>,
    }

    #[before_create("Raw", params(type = "kind", r#match = "all"))]
    fn r#type(r: &mut Raw, ctx: &Context) {
        r.seen.push(format!(
            "{} {:?} {:?}",
            ctx.handler_id().unwrap_or("-"),
            ctx.param("type"),
            ctx.param("match")
        ));
    }

    #[deprecated(note = "kept for old clients")]
    #[after_create("Raw")]
    fn old(r: &mut Raw) {
        r.seen.push("old".into());
    }

    #[test]
    fn raw_identifiers_and_keywords_are_read_as_the_names_they_stand_for() {
        let out = hooks().run_sync::<ops::data::Create<Raw>, _>(
            &mut Context::client(),
            Raw { seen: vec![] },
            Ok,
        );
        assert_eq!(
            out.unwrap().seen,
            ["flow::raw_names::type Some(\"kind\") Some(\"all\")", "old"]
        );
    }
}

/// Handlers named like the locals an adapter of the glue could have (`record`, `result`,
/// `input`, ...): the glue's names are its own, so each name still calls the handler.
mod glue_names {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Entity)]
    pub struct Named {
        pub hits: Vec<String>,
    }

    pub static LOG: Log = Log::new();

    #[before_create("Named", priority = 1)]
    async fn input(n: &mut Named) {
        n.hits.push("input".into());
    }

    #[before_create("Named", priority = 2)]
    async fn early(n: &mut Named, ctx: &Context) -> Result<(), HookError> {
        n.hits.push(format!("early {}", ctx.phase().as_str()));
        Ok(())
    }

    #[before_create("Named", priority = 3)]
    fn args(n: &mut Named, ctx: &Context) -> Result<Flow<Named>, HookError> {
        n.hits.push(format!("args {}", ctx.phase().as_str()));
        Ok(Flow::Continue)
    }

    #[before_create("Named", priority = 4)]
    fn ctx(n: &mut Named, c: &'_ Context) {
        n.hits.push(format!("ctx {}", c.phase().as_str()));
    }

    #[after_create("Named", priority = 1)]
    async fn result(n: &mut Result<Named, HookError>) {
        if let Ok(n) = n {
            n.hits.push("result".into());
        }
    }

    #[after_create("Named", priority = 2)]
    async fn payload(n: &mut Named, ctx: &Context) {
        n.hits.push(format!("payload {}", ctx.phase().as_str()));
    }

    #[after_create("Named", priority = 3)]
    async fn fut(n: &mut Named) {
        n.hits.push("fut".into());
    }

    #[after_create("Named", priority = 4)]
    async fn cx(n: &mut Named) {
        n.hits.push("cx".into());
    }

    #[after_create("Named", background)]
    fn owned(n: &Named, ctx: &Context) {
        LOG.push(format!("owned {} {}", n.hits.len(), ctx.phase().as_str()));
    }

    #[after_create("*")]
    fn record(r: &mut dyn Record) -> Result<(), HookError> {
        if r.table() == "Named" {
            LOG.push("record");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_handler_named_like_a_local_of_the_glue_is_the_one_called() {
        let hooks = hooks();
        let out = hooks
            .create(
                &mut Context::client(),
                Named { hits: vec![] },
                |n| async move { Ok(n) },
            )
            .await;
        assert_eq!(
            out.unwrap().hits,
            [
                "input",
                "early before",
                "args before",
                "ctx before",
                "result",
                "payload after",
                "fut",
                "cx"
            ]
        );
        hooks.shutdown(std::time::Duration::from_secs(5)).unwrap();
        let mut log = LOG.take();
        log.sort();
        assert_eq!(log, ["owned 8 after", "record"]);
    }
}

/// Async handlers that finish at their first poll run in one loop inside the call's poll; one
/// that waits is awaited, and the loop resumes after it. The order, the changes and the verdicts
/// must not depend on which handlers waited.
mod waiting_and_ready_handlers {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Relay {
        pub trail: String,
        /// `"answer"` or `"reject"` make the waiting before handler do so; with `" now"` after
        /// it, the handler does so at once, without waiting.
        pub mode: String,
    }

    /// Pends twice, as a handler waiting on I/O does.
    async fn wait() {
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }

    #[before_create("Relay", priority = 0)]
    fn b0_sync(r: &mut Relay) {
        r.trail.push_str("b0 ");
    }
    #[before_create("Relay", priority = 1)]
    async fn b1_ready(r: &mut Relay) {
        r.trail.push_str("b1 ");
    }
    #[before_create("Relay", priority = 2)]
    async fn b2_waits(r: &mut Relay) -> Result<Flow<Relay>, HookError> {
        if !r.mode.ends_with(" now") {
            wait().await;
        }
        r.trail.push_str("b2 ");
        match r.mode.trim_end_matches(" now") {
            "answer" => Ok(Flow::Return(Relay {
                trail: format!("{}answered ", r.trail),
                mode: r.mode.clone(),
            })),
            "reject" => Err(HookError::forbidden("b2 says no")),
            _ => Ok(Flow::Continue),
        }
    }
    #[before_create("Relay", priority = 3)]
    async fn b3_ready(r: &mut Relay) {
        r.trail.push_str("b3 ");
    }
    #[before_create("Relay", priority = 4)]
    async fn b4_waits(r: &mut Relay) {
        wait().await;
        r.trail.push_str("b4 ");
    }
    #[after_create("Relay", priority = 0)]
    async fn a0_waits(r: &mut Relay) {
        wait().await;
        r.trail.push_str("a0 ");
    }
    #[after_create("Relay", priority = 1)]
    fn a1_sync(r: &mut Relay) {
        r.trail.push_str("a1 ");
    }
    #[after_create("Relay", priority = 2)]
    async fn a2_ready(r: &mut Relay) {
        r.trail.push_str("a2");
    }

    fn relay(mode: &str) -> Relay {
        Relay {
            trail: String::new(),
            mode: mode.into(),
        }
    }

    async fn create(hooks: &Hooks, mode: &str) -> Result<Relay, HookError> {
        let mut ctx = Context::client();
        hooks
            .create(&mut ctx, relay(mode), |mut r: Relay| async move {
                r.trail.push_str("default ");
                Ok(r)
            })
            .await
    }

    #[tokio::test]
    async fn handlers_that_wait_and_handlers_that_do_not_run_in_order_each_seeing_the_last_ones_changes()
     {
        let hooks = hooks();
        for _ in 0..2 {
            let out = create(&hooks, "go on").await.unwrap();
            assert_eq!(out.trail, "b0 b1 b2 b3 b4 default a0 a1 a2");
        }
    }

    #[tokio::test]
    async fn an_answer_or_a_rejection_with_or_without_waiting_stops_the_rest_of_the_before_handlers()
     {
        let hooks = hooks();
        for now in ["", " now"] {
            let out = create(&hooks, &format!("answer{now}")).await.unwrap();
            assert_eq!(out.trail, "b0 b1 b2 answered a0 a1 a2");
            let err = create(&hooks, &format!("reject{now}")).await.unwrap_err();
            assert_eq!(err.status(), 403);
            assert_eq!(err.message(), "b2 says no");
        }
    }
}

/// An async after handler's error replaces the result, whether it failed at its first poll or
/// after waiting: the handlers that run on success only skip it, those that take the result see
/// it, and the caller gets it exactly.
mod failing_async_after_handlers {
    use super::*;

    /// Runs of `sees_errors` on an error result.
    pub static ERRORS_SEEN: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Audited {
        pub trail: String,
        /// `"fail"` makes `audit` fail after waiting; `"fail now"` at once.
        pub mode: String,
    }

    #[after_create("Audited", priority = 0)]
    async fn audit(a: &mut Audited) -> Result<(), HookError> {
        if a.mode != "fail now" {
            tokio::task::yield_now().await;
        }
        if a.mode.starts_with("fail") {
            return Err(HookError::conflict("the audit failed"));
        }
        a.trail.push_str("audit ");
        Ok(())
    }

    #[after_create("Audited", priority = 1)]
    async fn on_success(a: &mut Audited) {
        a.trail.push_str("on_success");
    }

    #[after_create("Audited", priority = 2)]
    async fn sees_errors(result: &mut Result<Audited, HookError>) {
        if result.is_err() {
            ERRORS_SEEN.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn create(hooks: &Hooks, mode: &str) -> Result<Audited, HookError> {
        let a = Audited {
            trail: String::new(),
            mode: mode.into(),
        };
        hooks
            .create(&mut Context::client(), a, |a| async move { Ok(a) })
            .await
    }

    #[tokio::test]
    async fn an_async_after_handler_error_with_or_without_waiting_replaces_the_result() {
        let hooks = hooks();
        assert_eq!(
            create(&hooks, "calm").await.unwrap().trail,
            "audit on_success"
        );
        for mode in ["fail", "fail now"] {
            let seen = ERRORS_SEEN.load(Ordering::SeqCst);
            let err = create(&hooks, mode).await.unwrap_err();
            assert_eq!((err.status(), err.message()), (409, "the audit failed"));
            assert_eq!(ERRORS_SEEN.load(Ordering::SeqCst), seen + 1, "{mode}");
        }
    }
}

/// An async call whose handlers are all sync runs them around the default's future, inside the
/// call's own future: the same rules as any call, checked where that flow differs.
mod sync_handlers_on_an_async_call {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context as TaskContext, Waker};

    static LOG: Log = Log::new();

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Parcel {
        pub trail: String,
        pub answer: bool,
    }

    #[before_create("Parcel")]
    fn weigh(p: &mut Parcel) -> Result<Flow<Parcel>, HookError> {
        LOG.push("before");
        p.trail.push_str("before ");
        if p.answer {
            return Ok(Flow::Return(Parcel {
                trail: format!("{}answered ", p.trail),
                answer: true,
            }));
        }
        Ok(Flow::Continue)
    }

    #[after_create("Parcel")]
    fn stamp(p: &mut Parcel) {
        LOG.push("after");
        p.trail.push_str("after");
    }

    fn parcel(answer: bool) -> Parcel {
        Parcel {
            trail: String::new(),
            answer,
        }
    }

    /// The default, pending twice first, as a database call does.
    async fn store(mut p: Parcel) -> Result<Parcel, HookError> {
        LOG.push("default");
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        p.trail.push_str("default ");
        Ok(p)
    }

    // One test: the log is shared by every call on `Parcel`.
    #[tokio::test]
    async fn handlers_run_at_the_first_poll_around_a_default_that_waits_and_a_dropped_call_stops_where_it_was()
     {
        let hooks = hooks();
        let mut ctx = Context::client();

        // Nothing runs before the first poll.
        drop(hooks.create(&mut ctx, parcel(false), store));
        assert!(LOG.take().is_empty(), "a call never polled runs no handler");

        // The after handlers see the result of a default that waited.
        let out = hooks.create(&mut ctx, parcel(false), store).await.unwrap();
        assert_eq!(out.trail, "before default after");
        assert_eq!(LOG.take(), ["before", "default", "after"]);

        // An answer skips the default, not the after handlers.
        let out = hooks.create(&mut ctx, parcel(true), store).await.unwrap();
        assert_eq!(out.trail, "before answered after");
        assert_eq!(LOG.take(), ["before", "after"]);

        // Dropped while its default waits: no after handler runs, and the context is free for
        // the next call.
        {
            let mut call = pin!(hooks.create(&mut ctx, parcel(false), store));
            let mut cx = TaskContext::from_waker(Waker::noop());
            assert!(call.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(LOG.take(), ["before", "default"]);
        let out = hooks.create(&mut ctx, parcel(false), store).await.unwrap();
        assert_eq!(out.trail, "before default after");
        assert_eq!(LOG.take(), ["before", "default", "after"]);
    }
}

/// The call's future can be spawned on a multi-threaded runtime when the default's can.
mod send {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Memo {
        pub text: String,
    }

    #[before_create("Memo")]
    fn shout(m: &mut Memo) {
        m.text = m.text.to_uppercase();
    }

    #[before_create("Memo", priority = 1)]
    async fn mark(m: &mut Memo) {
        m.text.push('!');
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_has_handlers_is_send_and_runs_spawned_on_another_thread() {
        let hooks = std::sync::Arc::new(hooks());
        let task = tokio::spawn({
            let hooks = std::sync::Arc::clone(&hooks);
            async move {
                let mut ctx = Context::client();
                let memo = Memo { text: "hi".into() };
                hooks.create(&mut ctx, memo, |m| async move { Ok(m) }).await
            }
        });
        let out = task
            .await
            .expect("the task ran")
            .expect("the call succeeded");
        assert_eq!(out.text, "HI!");
    }
}

/// Handlers may reject with a service's own error type, `E: Into<HookError>`: the caller gets
/// the converted error, and an answer still ends the call. Such a handler comes with the loop of
/// its result type, which a slot of handlers that all return it runs (`tests/policies.rs`,
/// `own_slot`); in a slot of mixed results, as here, each runs through its adapter.
mod own_error_types {
    use super::*;

    /// A service's own error, as `thiserror` types are.
    #[derive(Debug)]
    pub enum Refusal {
        Closed,
        Over(u32),
    }

    impl From<Refusal> for HookError {
        fn from(r: Refusal) -> HookError {
            match r {
                Refusal::Closed => HookError::new(503, "closed", "the shop is closed"),
                Refusal::Over(limit) => HookError::new(422, "over", format!("over {limit}")),
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Order {
        pub qty: u32,
        pub note: String,
    }

    #[before_create("Order")]
    fn open_hours(order: &mut Order) -> Result<(), Refusal> {
        if order.note == "closed" {
            return Err(Refusal::Closed);
        }
        Ok(())
    }

    #[before_create("Order", priority = 1)]
    fn bulk(order: &mut Order) -> Result<Flow<Order>, Refusal> {
        match order.qty {
            0 => Ok(Flow::Return(Order {
                qty: 0,
                note: "nothing to do".into(),
            })),
            q if q > 100 => Err(Refusal::Over(100)),
            _ => Ok(Flow::Continue),
        }
    }

    fn create(qty: u32, note: &str) -> Result<Order, HookError> {
        let order = Order {
            qty,
            note: note.into(),
        };
        hooks().run_sync::<hooks::ops::data::Create<Order>, _>(
            &mut Context::client(),
            order,
            |mut o| {
                o.note.push_str(" stored");
                Ok(o)
            },
        )
    }

    #[test]
    fn a_handlers_own_error_reaches_the_caller_converted_and_its_answer_ends_the_call() {
        let err = create(5, "closed").unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "closed"));
        let err = create(101, "").unwrap_err();
        assert_eq!((err.status(), err.message()), (422, "over 100"));
        assert_eq!(create(0, "").unwrap().note, "nothing to do");
        assert_eq!(create(5, "ok").unwrap().note, "ok stored");
    }

    /// A handler with a result of its own (its own error type) is handed over with the loop of
    /// its output and result types, which calls it as itself when every handler of its slot has
    /// that result. These two differ (one may answer), so they run through their adapters.
    #[test]
    fn a_handler_with_its_own_error_type_comes_with_the_loop_of_its_result() {
        use hooks::__private::diag::before_create::Own;
        use hooks::registration::Owns;
        let hooks = hooks();
        let regs = hooks.table().handlers("data.create", "Order");
        assert_eq!(regs.len(), 2);
        let direct = |name: &str| {
            regs.iter()
                .find(|r| r.id().ends_with(name))
                .and_then(|r| r.direct())
        };
        type Plain = Own<Result<(), Refusal>>;
        type Answers = Own<Result<Flow<Order>, Refusal>>;
        assert!(
            direct("open_hours").is_some_and(|d| d.is::<Owns<fn(*mut ()) -> Plain, Order>>()),
            "{regs:?}"
        );
        assert!(
            direct("bulk").is_some_and(|d| d.is::<Owns<fn(*mut ()) -> Answers, Order>>()),
            "{regs:?}"
        );
    }
}

mod every_plain_sync_shape_through_its_adapter {
    use super::*;

    // Plain sync handlers get one of their attribute's generic adapters (`hooks_core::diag`),
    // instantiated for each. In a slot that mixes shapes every handler runs through its adapter,
    // not as itself: here each way of taking the payload (`&mut`, `&`, each with or without the
    // context) in both phases, one with its own error type, an after handler of the whole result,
    // and one that answers the call.

    static LOG: Log = Log::new();

    #[derive(Debug)]
    pub struct Full;

    impl From<Full> for HookError {
        fn from(_: Full) -> HookError {
            HookError::new(409, "full", "no seat left")
        }
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Seat {
        pub row: u32,
        pub note: String,
    }

    #[before_create("Seat", priority = 1)]
    fn mark(seat: &mut Seat) {
        LOG.push("before &mut");
        seat.note.push('m');
    }

    #[before_create("Seat", priority = 2)]
    fn read(seat: &Seat) -> Result<(), Full> {
        LOG.push("before &");
        if seat.row > 40 { Err(Full) } else { Ok(()) }
    }

    #[before_create("Seat", priority = 3)]
    fn mark_with_ctx(seat: &mut Seat, ctx: &Context) -> Result<(), HookError> {
        LOG.push(format!(
            "before &mut, ctx {}",
            ctx.handler_id().unwrap_or("?")
        ));
        seat.note.push('c');
        Ok(())
    }

    #[before_create("Seat", priority = 4)]
    fn answer_with_ctx(seat: &Seat, ctx: &Context) -> Result<Flow<Seat>, HookError> {
        LOG.push(format!("before &, ctx {}", ctx.is_client()));
        if seat.row == 0 {
            return Ok(Flow::Return(Seat {
                row: 0,
                note: "standing".into(),
            }));
        }
        Ok(Flow::Continue)
    }

    #[after_create("Seat", priority = 1)]
    fn stamp(seat: &mut Seat) {
        LOG.push("after &mut");
        seat.note.push('s');
    }

    #[after_create("Seat", priority = 2)]
    fn look(seat: &Seat) -> Result<(), Full> {
        LOG.push(format!("after & {}", seat.note));
        Ok(())
    }

    #[after_create("Seat", priority = 3)]
    fn stamp_with_ctx(seat: &mut Seat, _ctx: &Context) {
        LOG.push("after &mut, ctx");
        seat.note.push('x');
    }

    #[after_create("Seat", priority = 4)]
    fn look_with_ctx(result: &Result<Seat, HookError>, _ctx: &Context) {
        LOG.push(format!("after &result, ctx, ok {}", result.is_ok()));
    }

    fn create(row: u32) -> Result<Seat, HookError> {
        hooks().run_sync::<hooks::ops::data::Create<Seat>, _>(
            &mut Context::client(),
            Seat {
                row,
                note: String::new(),
            },
            |mut seat| {
                seat.note.push('|');
                Ok(seat)
            },
        )
    }

    #[test]
    fn every_plain_sync_shape_runs_through_its_generic_adapter_in_a_mixed_slot() {
        LOG.take();
        let seat = create(7).unwrap();
        assert_eq!(seat.note, "mc|sx");
        let id = "flow::every_plain_sync_shape_through_its_adapter::mark_with_ctx";
        assert_eq!(
            LOG.take(),
            [
                "before &mut".to_string(),
                "before &".into(),
                format!("before &mut, ctx {id}"),
                "before &, ctx true".into(),
                "after &mut".into(),
                "after & mc|s".into(),
                "after &mut, ctx".into(),
                "after &result, ctx, ok true".into(),
            ]
        );

        // Its own error type rejects the call, converted; the after handler of the whole result
        // sees the error, those of the value do not run.
        let err = create(41).unwrap_err();
        assert_eq!((err.status(), err.code()), (409, "full"));
        assert_eq!(
            LOG.take(),
            ["before &mut", "before &", "after &result, ctx, ok false"]
        );

        // An answer ends the before phase and skips the default.
        assert_eq!(create(0).unwrap().note, "standingsx");
    }
}

mod asset_names_of_every_length {
    use super::*;

    // The attributes check a handler's asset against its entity's table at compile time: names
    // of up to fifteen bytes by one key, longer ones byte by byte. Each of these compiles only if
    // that check finds the names equal, and each handler runs.
    #[derive(Debug, Clone, PartialEq, Entity)]
    #[entity(table = "line_items_2026")]
    pub struct Fifteen {
        pub seen: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    #[entity(table = "line_items_of_2026")]
    pub struct Eighteen {
        pub seen: Vec<String>,
    }

    #[derive(Debug, Clone, PartialEq, Entity)]
    #[entity(table = "a")]
    pub struct One {
        pub seen: Vec<String>,
    }

    #[before_create("line_items_2026")]
    fn fifteen(record: &mut Fifteen) {
        record.seen.push("fifteen".into());
    }

    #[before_create("line_items_of_2026")]
    fn eighteen(record: &mut Eighteen) {
        record.seen.push("eighteen".into());
    }

    #[before_create("a")]
    fn one(record: &mut One) {
        record.seen.push("one".into());
    }

    #[test]
    fn a_handler_whose_asset_is_its_tables_name_registers_and_runs_whatever_the_names_length() {
        let hooks = hooks();
        let mut ctx = Context::client();
        let r = hooks.run_sync::<hooks::ops::data::Create<Fifteen>, _>(
            &mut ctx,
            Fifteen { seen: vec![] },
            Ok,
        );
        assert_eq!(r.unwrap().seen, ["fifteen"]);
        let r = hooks.run_sync::<hooks::ops::data::Create<Eighteen>, _>(
            &mut ctx,
            Eighteen { seen: vec![] },
            Ok,
        );
        assert_eq!(r.unwrap().seen, ["eighteen"]);
        let r =
            hooks.run_sync::<hooks::ops::data::Create<One>, _>(&mut ctx, One { seen: vec![] }, Ok);
        assert_eq!(r.unwrap().seen, ["one"]);
    }
}

/// An `async fn` handler's future is made in the dispatcher's slot: copied there word by word
/// when small, as it comes when larger, boxed when over the slot's 512 bytes. Handlers of each
/// size, waiting or not, run alike.
mod future_sizes {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Entity)]
    pub struct Sized3 {
        pub steps: Vec<String>,
        pub score: u64,
    }

    /// Waits once (returns `Pending` to the runtime) when `wait` is set.
    async fn maybe_wait(wait: bool) {
        if wait {
            tokio::task::yield_now().await;
        }
    }

    // Small: the record and the context, a few bytes of state.
    #[before_create("Sized3", priority = 1)]
    async fn small(record: &mut Sized3, ctx: &Context) {
        maybe_wait(ctx.state::<u8>().is_some()).await;
        record.steps.push("small".into());
        record.score += 1;
    }

    // Larger than 64 bytes: words held across the wait.
    #[before_create("Sized3", priority = 2)]
    async fn middle(record: &mut Sized3, ctx: &Context) -> Result<(), HookError> {
        let words = [record.score; 12];
        maybe_wait(ctx.state::<u8>().is_some()).await;
        record.steps.push("middle".into());
        record.score += words.iter().sum::<u64>();
        if record.score > 1_000 {
            return Err(HookError::rejected("too high"));
        }
        Ok(())
    }

    // Larger than the slot: boxed.
    #[before_create("Sized3", priority = 3)]
    async fn large(record: &mut Sized3, ctx: &Context) -> Result<Flow<Sized3>, HookError> {
        let bytes = [record.score as u8; 2048];
        maybe_wait(ctx.state::<u8>().is_some()).await;
        record.steps.push("large".into());
        record.score += u64::from(bytes[2047]);
        if record.score == 0 {
            return Ok(Flow::Return(record.clone()));
        }
        Ok(Flow::Continue)
    }

    #[after_create("Sized3")]
    async fn after_small(out: &mut Sized3, ctx: &Context) {
        maybe_wait(ctx.state::<u8>().is_some()).await;
        out.steps.push("after small".into());
    }

    #[after_create("Sized3", priority = 1)]
    async fn after_large(out: &mut Sized3, ctx: &Context) -> Result<(), HookError> {
        let bytes = [1u8; 2048];
        maybe_wait(ctx.state::<u8>().is_some()).await;
        out.steps.push("after large".into());
        out.score += u64::from(bytes[0]);
        Ok(())
    }

    async fn create(waiting: bool, score: u64) -> Result<Sized3, HookError> {
        let mut ctx = Context::client();
        if waiting {
            ctx.set_state(0u8);
        }
        let input = Sized3 {
            steps: Vec::new(),
            score,
        };
        hooks()
            .create(&mut ctx, input, |mut r| async move {
                r.steps.push("default".into());
                Ok(r)
            })
            .await
    }

    #[tokio::test]
    async fn async_handlers_of_every_future_size_change_the_call_alike_whether_they_wait_or_not() {
        for waiting in [false, true] {
            let out = create(waiting, 2).await.expect("the call goes on");
            assert_eq!(
                out.steps,
                [
                    "small",
                    "middle",
                    "large",
                    "default",
                    "after small",
                    "after large"
                ],
                "waiting: {waiting}"
            );
            // 2, + 1 = 3, + 12 × 3 = 39, + 39 (a byte of 39) = 78, + 1 after.
            assert_eq!(out.score, 79, "waiting: {waiting}");
        }
    }

    #[tokio::test]
    async fn a_rejection_from_a_middle_sized_future_reaches_the_caller_whether_it_waits_or_not() {
        for waiting in [false, true] {
            let err = create(waiting, 100).await.expect_err("rejected");
            assert_eq!(err.message(), "too high", "waiting: {waiting}");
        }
    }
}

/// A sync call hands its input to the flow of a slot with handlers in a copy of its own (made
/// word by word when small): every path drops the input exactly once, or moves it into the
/// default, whatever its size.
mod input_handed_over {
    use super::*;

    macro_rules! counted {
        ($m:ident, $ty:ident, $table:literal, $pad:expr) => {
            mod $m {
                use super::*;

                pub static DROPS: AtomicUsize = AtomicUsize::new(0);

                #[derive(Debug, Entity)]
                #[entity(table = $table)]
                pub struct $ty {
                    pub name: String,
                    pub pad: [u64; $pad],
                }

                impl Drop for $ty {
                    fn drop(&mut self) {
                        DROPS.fetch_add(1, Ordering::SeqCst);
                    }
                }

                #[before_create($table)]
                fn check(record: &mut $ty) -> Result<Flow<$ty>, HookError> {
                    match record.name.as_str() {
                        "reject" => Err(HookError::rejected("rejected")),
                        "panic" => panic!("the handler panicked"),
                        "answer" => Ok(Flow::Return($ty {
                            name: "answered".into(),
                            pad: [7; $pad],
                        })),
                        _ => {
                            record.name.push_str(" checked");
                            Ok(Flow::Continue)
                        }
                    }
                }

                /// Drops counted over one call of `name` through `run_sync` (or `run_sync_on`),
                /// once the call's result is dropped too; and what the call returned.
                pub fn drops_over(name: &str, on: bool, default_panics: bool) -> (usize, String) {
                    let before = DROPS.load(Ordering::SeqCst);
                    let hooks = hooks();
                    let mut ctx = Context::server();
                    let input = $ty {
                        name: name.into(),
                        pad: [1; $pad],
                    };
                    let default = |r: $ty| {
                        if default_panics {
                            panic!("the default panicked");
                        }
                        assert_eq!(r.pad, [1; $pad], "the default sees the input whole");
                        Ok(r)
                    };
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if on {
                            hooks.run_sync_on::<ops::data::Create<$ty>, _>(
                                &mut ctx, $table, input, default,
                            )
                        } else {
                            hooks.run_sync::<ops::data::Create<$ty>, _>(&mut ctx, input, default)
                        }
                    }));
                    let seen = match out {
                        Ok(Ok(r)) => r.name.clone(),
                        Ok(Err(e)) => format!("error: {}", e.message()),
                        Err(_) => "panic".into(),
                    };
                    (DROPS.load(Ordering::SeqCst) - before, seen)
                }
            }
        };
    }

    // 32 bytes, copied in words; 96 bytes, copied as it comes.
    counted!(small, SmallCounted, "SmallCounted", 1);
    counted!(large, LargeCounted, "LargeCounted", 9);

    #[test]
    fn a_sync_calls_input_is_dropped_once_on_every_path_whatever_its_size() {
        assert_eq!(std::mem::size_of::<small::SmallCounted>(), 32);
        assert_eq!(std::mem::size_of::<large::LargeCounted>(), 96);
        for on in [false, true] {
            for drops_over in [small::drops_over, large::drops_over] {
                // Moved into the default and out as the result, dropped by the caller.
                assert_eq!(drops_over("ada", on, false), (1, "ada checked".into()));
                // Rejected, or failed closed on a panic: dropped by the flow.
                assert_eq!(
                    drops_over("reject", on, false),
                    (1, "error: rejected".into())
                );
                let (drops, seen) = drops_over("panic", on, false);
                assert_eq!(drops, 1);
                assert!(seen.starts_with("error: "), "{seen}");
                // Answered: the input dropped, the answer returned (and dropped by the caller).
                assert_eq!(drops_over("answer", on, false), (2, "answered".into()));
                // A default that panics drops the input it was given, once.
                assert_eq!(drops_over("ada", on, true), (1, "panic".into()));
            }
        }
    }
}
