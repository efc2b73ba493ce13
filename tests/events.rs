//! Every API event beyond data: users and auth, files, messaging, the service's own operations and
//! custom events.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::prelude::*;

fn hooks() -> Hooks {
    Hooks::new().expect("the handlers of this test binary form a valid table")
}

mod users {
    use super::*;

    pub static AFTER_LOGIN_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[before_register]
    fn strong_password(user: &NewUser) -> Result<(), HookError> {
        if user.password.len() < 8 {
            return Err(HookError::rejected(
                "the password needs at least 8 characters",
            ));
        }
        if user.email.ends_with("@spam.example") {
            return Err(HookError::forbidden("this email domain is banned"));
        }
        Ok(())
    }

    #[after_register]
    fn default_role(user: &mut User) {
        user.roles.push("member".into());
    }

    #[after_login]
    fn observe_session(result: &mut Result<Session, HookError>) {
        // After handlers of login see the session or the error; logging them never shows a secret.
        AFTER_LOGIN_SAW.lock().unwrap().push(format!("{result:?}"));
    }

    #[before_user_update]
    fn keep_roles(user: &mut User, ctx: &Context) -> Result<(), HookError> {
        if !ctx.require_user()?.has_role("admin") && !user.roles.is_empty() {
            return Err(HookError::forbidden("only admins change roles"));
        }
        Ok(())
    }

    #[before_password_reset]
    fn known_domains_only(request: &ResetRequest) -> Result<(), HookError> {
        if !request.email.contains('@') {
            return Err(HookError::bad_request("not an email"));
        }
        Ok(())
    }

    #[tokio::test]
    async fn registration_handlers_validate_and_enrich_the_new_user() {
        let hooks = hooks();
        let mut ctx = Context::client();
        let register = |email: &str, password: &str| NewUser {
            email: email.into(),
            password: Secret::new(password),
            fields: Default::default(),
        };
        let store = |u: NewUser| async move {
            Ok(User {
                id: "u1".into(),
                email: Some(u.email),
                roles: vec![],
            })
        };
        let weak = hooks
            .run::<ops::users::Register, _, _>(&mut ctx, register("a@b.c", "short"), store)
            .await;
        assert_eq!(
            weak.unwrap_err().message(),
            "the password needs at least 8 characters"
        );
        let banned = hooks
            .run::<ops::users::Register, _, _>(
                &mut ctx,
                register("x@spam.example", "long enough"),
                store,
            )
            .await;
        assert_eq!(banned.unwrap_err().status(), 403);
        let ok = hooks
            .run::<ops::users::Register, _, _>(&mut ctx, register("a@b.c", "long enough"), store)
            .await;
        assert_eq!(ok.unwrap().roles, ["member"]);
    }

    #[tokio::test]
    async fn login_after_handlers_never_see_a_password_or_token_in_clear() {
        let hooks = hooks();
        let creds = Credentials {
            login: "ada@example.com".into(),
            password: Secret::new("correct horse"),
        };
        let session = hooks
            .run::<ops::users::Login, _, _>(
                &mut Context::client(),
                creds,
                |c: Credentials| async move {
                    assert_eq!(
                        c.password.expose(),
                        "correct horse",
                        "the default logic can read it"
                    );
                    Ok(Session {
                        user: User::new("u1"),
                        token: Secret::new("tok-123"),
                    })
                },
            )
            .await
            .unwrap();
        assert_eq!(
            session.token.expose(),
            "tok-123",
            "the caller gets the token"
        );
        let saw = AFTER_LOGIN_SAW.lock().unwrap().join("\n");
        assert!(saw.contains("Secret(***)"), "{saw}");
        assert!(
            !saw.contains("tok-123") && !saw.contains("correct horse"),
            "{saw}"
        );
        let json = serde_json::to_string(&session).unwrap();
        assert!(!json.contains("tok-123"), "{json}");
    }

    #[tokio::test]
    async fn user_update_and_password_reset_handlers_guard_their_operations() {
        let hooks = hooks();
        let mut member = Context::client().with_user(User::new("u1"));
        let promote = Changes::new(
            "u1",
            User {
                id: "u1".into(),
                email: None,
                roles: vec!["admin".into()],
            },
        );
        let err =
            hooks
                .run::<ops::users::UpdateUser, _, _>(&mut member, promote, |c| async move {
                    Ok(c.record)
                })
                .await;
        assert_eq!(err.unwrap_err().status(), 403);
        let reset = hooks
            .run::<ops::users::PasswordReset, _, _>(
                &mut member,
                ResetRequest {
                    email: "nope".into(),
                },
                |_| async { Ok(()) },
            )
            .await;
        assert_eq!(reset.unwrap_err().code(), "bad_request");
    }
}

mod files {
    use super::*;

    #[before_upload]
    fn limit_size(file: &FileInfo) -> Result<(), HookError> {
        if file.size > 5 * 1024 * 1024 {
            return Err(HookError::payload_too_large(format!(
                "{} is over 5 MiB",
                file.path
            )));
        }
        Ok(())
    }

    #[before_upload(priority = 1)]
    fn own_it(file: &mut FileInfo, ctx: &Context) {
        file.owner = ctx.user().map(|u| u.id.clone());
    }

    #[after_file_delete]
    fn note_deletion(file: &mut FileInfo) {
        file.content_type = format!("deleted:{}", file.content_type);
    }

    #[tokio::test]
    async fn file_handlers_see_path_size_type_and_owner() {
        let hooks = hooks();
        let mut ctx = Context::client().with_user(User::new("ada"));
        let file = |size| FileInfo {
            path: "avatars/ada.png".into(),
            size,
            content_type: "image/png".into(),
            owner: None,
        };
        let big = hooks
            .run::<ops::files::Upload, _, _>(&mut ctx, file(6 << 20), |f| async move { Ok(f) })
            .await;
        assert_eq!(big.unwrap_err().status(), 413);
        let ok = hooks
            .run::<ops::files::Upload, _, _>(&mut ctx, file(1024), |f| async move { Ok(f) })
            .await
            .unwrap();
        assert_eq!(ok.owner.as_deref(), Some("ada"));
        let gone = hooks
            .run::<ops::files::DeleteFile, _, _>(&mut ctx, ok, |f| async move { Ok(f) })
            .await
            .unwrap();
        assert_eq!(gone.content_type, "deleted:image/png");
    }
}

mod messaging {
    use super::*;

    #[before_publish("chat")]
    fn no_shouting(message: &mut Message) -> Result<(), HookError> {
        if let Some(text) = message.body.as_str()
            && text.len() > 3
            && text == text.to_uppercase()
        {
            return Err(HookError::rejected("no shouting in chat"));
        }
        Ok(())
    }

    /// Every channel: stamp the sender.
    #[before_publish(priority = -1)]
    fn stamp_sender(message: &mut Message, ctx: &Context) {
        let sender = ctx.user().map_or("anonymous", |u| u.id.as_str()).to_owned();
        message.headers.insert("sender".into(), sender);
    }

    #[after_publish("alerts")]
    fn tag_alerts(published: &mut Published) {
        published.message_id = format!("alert-{}", published.message_id);
    }

    async fn deliver(m: Message) -> Result<Published, HookError> {
        if m.headers.get("sender").map(String::as_str) != Some("ada") {
            return Err(HookError::internal("the sender stamp is missing"));
        }
        Ok(Published {
            channel: m.channel,
            message_id: "1".into(),
        })
    }

    fn message(channel: &str, body: &str) -> Message {
        Message {
            channel: channel.into(),
            body: body.into(),
            headers: Default::default(),
        }
    }

    #[tokio::test]
    async fn channel_handlers_and_all_channel_handlers_merge_into_one_order() {
        let hooks = hooks();
        let mut ctx = Context::client().with_user(User::new("ada"));
        let err = hooks
            .publish(&mut ctx, message("chat", "HELLO ALL"), deliver)
            .await
            .unwrap_err();
        assert_eq!(err.message(), "no shouting in chat");
        let alert = hooks
            .publish(&mut ctx, message("alerts", "DISK FULL"), deliver)
            .await
            .unwrap();
        assert_eq!(alert.message_id, "alert-1");
        let chat = hooks
            .publish(&mut ctx, message("chat", "hello"), deliver)
            .await
            .unwrap();
        assert_eq!(chat.message_id, "1");
        let ids: Vec<_> = hooks
            .table()
            .handlers_for("messaging.publish", "chat")
            .iter()
            .map(|r| r.id())
            .collect();
        assert_eq!(
            ids,
            [
                "events::messaging::stamp_sender",
                "events::messaging::no_shouting"
            ]
        );
    }

    #[tokio::test]
    async fn a_message_without_a_plain_channel_or_over_the_limit_gets_a_clear_error() {
        let hooks = Hooks::builder().max_payload_bytes(64).build().unwrap();
        let mut ctx = Context::client();
        for channel in [" ", "", "*", "chat ", "chat\n", "a b"] {
            let err = hooks
                .publish(&mut ctx, message(channel, "hi"), deliver)
                .await
                .unwrap_err();
            assert_eq!(err.status(), 400, "{channel:?}");
            assert!(
                err.message().contains("is not a channel name"),
                "{channel:?}: {err}"
            );
        }
        let err = hooks
            .publish(&mut ctx, message("chat", &"x".repeat(100)), deliver)
            .await
            .unwrap_err();
        assert_eq!(err.status(), 413);
    }
}

mod own_operations {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    pub struct Invitation {
        pub email: String,
        pub sent_by: Option<String>,
    }

    hooks::operation! {
        /// Send an invitation email to a new member.
        pub SendInvitation: "team.send_invitation", Invitation => u32
    }

    #[before(SendInvitation)]
    fn sign(invitation: &mut Invitation, ctx: &Context) -> Result<(), HookError> {
        invitation.sent_by = Some(ctx.require_user()?.id.clone());
        Ok(())
    }

    #[before(SendInvitation, priority = 5)]
    fn throttle(invitation: &Invitation) -> Result<Flow<u32>, HookError> {
        // Already invited: answer without sending again.
        Ok(if invitation.email == "old@example.com" {
            Flow::Return(0)
        } else {
            Flow::Continue
        })
    }

    #[after(SendInvitation)]
    async fn count(sent: &mut u32) {
        *sent += 100;
    }

    hooks::operation! {
        /// Reserve seats at a team event: how many asked for, how many reserved.
        pub ReserveSeats: "team.reserve_seats", u32 => u32
    }

    /// The service's own error type.
    #[derive(Debug)]
    pub struct NoSeats(u32);

    impl From<NoSeats> for HookError {
        fn from(NoSeats(left): NoSeats) -> HookError {
            HookError::new(409, "no_seats", format!("only {left} seats left"))
        }
    }

    #[before(ReserveSeats)]
    fn nothing_asked(seats: &mut u32) -> Result<Flow<u32>, NoSeats> {
        Ok(if *seats == 0 {
            Flow::Return(0)
        } else {
            Flow::Continue
        })
    }

    #[before(ReserveSeats, priority = 1)]
    fn capped(seats: &u32) -> Result<Flow<u32>, NoSeats> {
        if *seats > 10 {
            return Err(NoSeats(10));
        }
        Ok(Flow::Continue)
    }

    /// A declared operation's handlers with a result of their own come with the loop of that
    /// result (checked through `before(Op)`'s own `Return`), and keep every rule there.
    #[test]
    fn a_declared_operations_handlers_with_their_own_error_type_run_in_their_own_loop() {
        use hooks::__private::diag::before::Own;
        use hooks::registration::Owns;
        let hooks = hooks();
        let regs: Vec<_> = hooks
            .table()
            .registrations()
            .iter()
            .filter(|r| r.operation() == "team.reserve_seats")
            .collect();
        assert_eq!(regs.len(), 2);
        type Mine = Own<ReserveSeats, Result<Flow<u32>, NoSeats>>;
        assert!(
            regs.iter().all(|r| r
                .direct()
                .is_some_and(|d| d.is::<Owns<fn(*mut ()) -> Mine, u32>>())),
            "{regs:?}"
        );
        let reserve = |asked: u32| {
            hooks.run_sync::<ReserveSeats, _>(&mut Context::client(), asked, |n| Ok(n + 100))
        };
        assert_eq!(reserve(3), Ok(103));
        assert_eq!(reserve(0), Ok(0), "answered: no default");
        let err = reserve(11).unwrap_err();
        assert_eq!((err.status(), err.message()), (409, "only 10 seats left"));
    }

    #[tokio::test]
    async fn a_declared_operation_gets_before_and_after_handlers_with_the_same_rules() {
        let hooks = hooks();
        let mut ctx = Context::client().with_user(User::new("boss"));
        let send = |i: Invitation| async move {
            assert_eq!(i.sent_by.as_deref(), Some("boss"));
            Ok(1)
        };
        let new = Invitation {
            email: "new@example.com".into(),
            sent_by: None,
        };
        assert_eq!(
            hooks.run::<SendInvitation, _, _>(&mut ctx, new, send).await,
            Ok(101)
        );
        let old = Invitation {
            email: "old@example.com".into(),
            sent_by: None,
        };
        assert_eq!(
            hooks.run::<SendInvitation, _, _>(&mut ctx, old, send).await,
            Ok(100)
        );
        let anonymous = Invitation {
            email: "x@example.com".into(),
            sent_by: None,
        };
        let err = hooks
            .run::<SendInvitation, _, _>(&mut Context::client(), anonymous, send)
            .await;
        assert_eq!(err.unwrap_err().status(), 401);
    }
}

mod custom_events {
    use super::*;
    use hooks::ops::events::Emit;
    use hooks::testing::Chain;

    pub static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
    pub static BACKGROUND_RUNS: AtomicUsize = AtomicUsize::new(0);

    /// An invoice was paid.
    #[derive(Debug, Clone, Serialize, Event)]
    #[event(name = "invoice.paid")]
    pub struct InvoicePaid {
        pub invoice: String,
        pub cents: i64,
        pub memo: String,
    }

    #[on_event(priority = 2)]
    fn second(e: &InvoicePaid) {
        LOG.lock().unwrap().push(format!("second {}", e.invoice));
    }

    #[on_event]
    fn first_fails(e: &InvoicePaid) -> Result<(), HookError> {
        LOG.lock().unwrap().push(format!("first {}", e.invoice));
        Err(HookError::internal("the ledger is down"))
    }

    #[on_event(priority = 3)]
    async fn third_async(e: &InvoicePaid, ctx: &Context) {
        LOG.lock()
            .unwrap()
            .push(format!("third {} {}", e.invoice, ctx.operation()));
    }

    #[on_event(background)]
    async fn mail_receipt(_e: &InvoicePaid) {
        BACKGROUND_RUNS.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn every_handler_of_an_event_runs_in_order_even_after_one_fails() {
        let hooks = hooks();
        let paid = InvoicePaid {
            invoice: "INV-1".into(),
            cents: 500,
            memo: String::new(),
        };
        hooks.emit(&mut Context::server(), paid).await.unwrap();
        assert_eq!(
            *LOG.lock().unwrap(),
            ["first INV-1", "second INV-1", "third INV-1 invoice.paid"]
        );
        let report = hooks.shutdown(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(report.finished, 1);
        assert_eq!(BACKGROUND_RUNS.load(Ordering::SeqCst), 1);
        let failing = hooks
            .table()
            .registrations()
            .iter()
            .find(|r| r.id().ends_with("first_fails"))
            .unwrap();
        assert_eq!(failing.stats().errors, 1);
    }

    #[tokio::test]
    async fn an_event_over_the_payload_limit_is_refused_with_a_clear_error() {
        let hooks = Hooks::builder().max_payload_bytes(1024).build().unwrap();
        let huge = InvoicePaid {
            invoice: "INV-2".into(),
            cents: 1,
            memo: "x".repeat(2000),
        };
        let err = hooks.emit(&mut Context::server(), huge).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (413, "payload_too_large"));
        assert!(err.message().contains("invoice.paid"), "{err}");
    }

    /// A refund, whose handlers panic on purpose.
    #[derive(Debug, Clone, Serialize, Event)]
    #[event(name = "invoice.refunded")]
    pub struct Refunded {
        pub invoice: String,
    }

    pub static REFUND_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

    #[on_event(priority = 1)]
    fn refund_panics(e: &Refunded) {
        REFUND_LOG
            .lock()
            .unwrap()
            .push(format!("sync {}", e.invoice));
        panic!("the refund ledger panicked");
    }

    #[on_event(priority = 2)]
    async fn refund_panics_async(e: &Refunded) {
        REFUND_LOG
            .lock()
            .unwrap()
            .push(format!("async {}", e.invoice));
        panic!("the async refund ledger panicked");
    }

    #[on_event(priority = 3)]
    fn refund_last(e: &Refunded) {
        REFUND_LOG
            .lock()
            .unwrap()
            .push(format!("last {}", e.invoice));
    }

    #[tokio::test]
    async fn an_events_handlers_all_run_even_when_after_failures_fail_calls() {
        let hooks = Hooks::builder()
            .after_failure(hooks::AfterFailure::Fail)
            .build()
            .unwrap();
        let refund = Refunded {
            invoice: "INV-3".into(),
        };
        let out = hooks.emit(&mut Context::server(), refund).await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(
            *REFUND_LOG.lock().unwrap(),
            ["sync INV-3", "async INV-3", "last INV-3"]
        );
    }

    /// A shipment, raised through `run`, `run_sync` and the test kit rather than `emit`.
    #[derive(Debug, Clone, Serialize, Event)]
    #[event(name = "order.shipped")]
    pub struct Shipped {
        pub order: String,
        pub memo: String,
    }

    thread_local! {
        /// What the shipment's handlers saw, on this test's thread.
        static SHIP_LOG: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn shipped(order: &str) -> Shipped {
        Shipped {
            order: order.into(),
            memo: String::new(),
        }
    }

    fn ship_log() -> Vec<String> {
        SHIP_LOG.with(|l| l.borrow_mut().drain(..).collect())
    }

    #[on_event(priority = 1)]
    fn ship_fails(e: &Shipped) -> Result<(), HookError> {
        SHIP_LOG.with(|l| l.borrow_mut().push(format!("fails {}", e.order)));
        Err(HookError::internal("the carrier is down"))
    }

    #[on_event(priority = 2)]
    fn ship_panics(e: &Shipped) {
        SHIP_LOG.with(|l| l.borrow_mut().push(format!("panics {}", e.order)));
        panic!("the label printer panicked");
    }

    #[on_event(priority = 3)]
    fn ship_last(e: &Shipped) {
        SHIP_LOG.with(|l| l.borrow_mut().push(format!("last {}", e.order)));
    }

    #[tokio::test]
    async fn an_event_run_through_run_run_sync_or_the_test_kit_runs_as_emit_runs_it() {
        let hooks = hooks();
        let everyone = |order: &str| {
            vec![
                format!("fails {order}"),
                format!("panics {order}"),
                format!("last {order}"),
            ]
        };
        hooks
            .emit(&mut Context::server(), shipped("A"))
            .await
            .unwrap();
        assert_eq!(ship_log(), everyone("A"));
        let run =
            hooks
                .run::<Emit<Shipped>, _, _>(&mut Context::server(), shipped("B"), |e| async move {
                    Ok(e)
                })
                .await;
        assert_eq!(run.map(|e| e.order), Ok("B".to_owned()));
        assert_eq!(ship_log(), everyone("B"));
        let sync = hooks.run_sync::<Emit<Shipped>, _>(&mut Context::server(), shipped("C"), Ok);
        assert_eq!(sync.map(|e| e.order), Ok("C".to_owned()));
        assert_eq!(ship_log(), everyone("C"));
        let chain = Chain::<Emit<Shipped>>::all();
        let chained = chain
            .run(
                &mut Context::server(),
                shipped("D"),
                |e| async move { Ok(e) },
            )
            .await;
        assert_eq!(chained.map(|e| e.order), Ok("D".to_owned()));
        assert_eq!(ship_log(), everyone("D"));
        assert_eq!(
            chain.ran_lines(),
            [
                "events::custom_events::ship_fails errored",
                "events::custom_events::ship_panics panicked",
                "events::custom_events::ship_last done",
            ]
        );
    }

    #[tokio::test]
    async fn an_event_over_the_payload_limit_is_refused_however_it_is_run() {
        let hooks = Hooks::builder().max_payload_bytes(256).build().unwrap();
        let huge = || Shipped {
            order: "E".into(),
            memo: "x".repeat(1000),
        };
        let run = hooks
            .run::<Emit<Shipped>, _, _>(&mut Context::server(), huge(), |e| async move { Ok(e) })
            .await;
        assert_eq!(run.map_err(|e| e.status()).map(drop), Err(413));
        let sync = hooks.run_sync::<Emit<Shipped>, _>(&mut Context::server(), huge(), Ok);
        assert_eq!(sync.map_err(|e| e.status()).map(drop), Err(413));
        let on =
            hooks.run_sync_on::<Emit<Shipped>, _>(&mut Context::server(), "events", huge(), Ok);
        assert_eq!(on.map_err(|e| e.status()).map(drop), Err(413));
        assert_eq!(ship_log(), Vec::<String>::new(), "no handler ran");
    }

    hooks::operation! {
        /// Ship order `n`, announced by an after handler that raises `order.shipped`; the handler
        /// opts its event in to the nested handlers when `n` is 1.
        pub ShipOrder: "order.ship", u32 => u32
    }

    #[after(ShipOrder)]
    async fn announce_shipment(n: &mut u32, ctx: &Context) -> Result<(), HookError> {
        let hooks = ctx.require_extension::<Hooks>()?.clone();
        let mut child = ctx.child();
        if *n == 1 {
            child = child.with_nested_events(1);
        }
        hooks
            .emit(&mut child, shipped(&format!("nested {n}")))
            .await
    }

    #[tokio::test]
    async fn an_event_raised_from_a_handler_runs_its_handlers_only_when_opted_in() {
        let hooks = hooks();
        let mut ctx = Context::server().with_extension(hooks.clone());
        let quiet = hooks
            .run::<ShipOrder, _, _>(&mut ctx, 0, |n| async move { Ok(n) })
            .await;
        assert_eq!(quiet, Ok(0));
        assert_eq!(
            ship_log(),
            Vec::<String>::new(),
            "the recursion guard ran none"
        );
        let opted_in = hooks
            .run::<ShipOrder, _, _>(&mut ctx, 1, |n| async move { Ok(n) })
            .await;
        assert_eq!(opted_in, Ok(1));
        assert_eq!(
            ship_log(),
            ["fails nested 1", "panics nested 1", "last nested 1"]
        );
    }

    #[test]
    fn the_default_payload_limit_is_one_mebibyte() {
        assert_eq!(hooks::dispatch::DEFAULT_MAX_PAYLOAD_BYTES, 1024 * 1024);
    }
}
