use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

// A login's input is `Credentials`.
#[before_login]
fn check(_contact: &mut Contact) {}

fn main() {}
