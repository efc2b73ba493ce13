use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// Three type mistakes, three errors, each on its own token: the payload, the context, the return.
#[before_create("Contact")]
fn check(_query: &mut Query<Contact>, _limit: &u32) -> String {
    String::new()
}

fn main() {}
