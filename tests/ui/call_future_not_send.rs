// The future of a call is `Send` only when everything it keeps is: here the default's future is,
// but the default itself (which the call keeps until its first poll, when handlers run first)
// holds an `Rc`, so the call cannot be spawned on a multi-threaded runtime.
use std::rc::Rc;

use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Note {
    pub text: String,
}

#[before_create("Note")]
fn trim(n: &mut Note) {
    n.text = n.text.trim().to_owned();
}

fn spawnable<T: Send>(_: T) {}

fn main() {
    let hooks = Hooks::new().unwrap();
    let mut ctx = Context::client();
    let note = Note { text: " hi ".into() };
    let suffix = Rc::new(String::from("."));
    spawnable(hooks.create(&mut ctx, note, move |mut n: Note| {
        n.text.push_str(&suffix);
        async move { Ok(n) }
    }));
}
