use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// Three mistakes, three errors, each on its own token.
#[before_create("Contact", priority = 1, priority = 2, timeout = "soon")]
async unsafe fn check(_contact: &mut Contact) {}

fn main() {}
