use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

pub struct Service;

impl Service {
    #[before_create("Contact")]
    fn check(_contact: &mut Contact) {}
}

fn main() {}
