// A handler that takes its payload by `&` and the context, with a payload of another operation
// and a return type no attribute accepts: each mistake is reported once, on its token, in the
// attribute's words, as for any other handler.
use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(_query: &Query<Contact>, _ctx: &Context) -> Result<(), String> {
    Ok(())
}

#[after_create("Contact")]
fn audit(_contact: &Vec<Contact>, _ctx: &Context) -> Option<()> {
    None
}

fn main() {}
