//! Two event types with the same name (by default their bare type names) cannot both have
//! handlers: the table build names every handler involved and tells how to rename an event.

use hooks::prelude::*;

mod billing {
    use super::*;

    #[derive(Serialize, Event)]
    pub struct Paid {
        pub invoice: u32,
    }

    #[on_event]
    fn book(_: &Paid) {}
}

mod shop {
    use super::*;

    #[derive(Serialize, Event)]
    pub struct Paid {
        pub order: u32,
    }

    #[on_event]
    fn ship(_: &Paid) {}
}

#[test]
fn events_sharing_a_name_fail_the_table_build_with_a_hint_to_rename_the_event() {
    let err = Hooks::new().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("event_name_clash::billing::book")
            && text.contains("event_name_clash::shop::ship"),
        "{text}"
    );
    assert!(text.contains("#[event(name = \"...\")]"), "{text}");
    assert!(!text.contains("#[entity("), "{text}");
}

#[test]
fn a_test_chain_of_a_clashing_event_fails_as_the_service_would() {
    let chain = std::panic::catch_unwind(|| {
        hooks::testing::Chain::<hooks::ops::events::Emit<billing::Paid>>::all()
    });
    let failure = chain.expect_err("the chain refuses the clash");
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("2 operations or events are named \"Paid\""),
        "{message}"
    );
}
