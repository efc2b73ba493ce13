use hooks::prelude::*;

#[derive(Debug, Clone, Entity)]
pub struct Contact {
    pub email: String,
}

#[before_create("Contact")]
fn check(ctx: &Context, contact: &mut Contact) -> Result<(), HookError> {
    let _ = (ctx, contact);
    Ok(())
}

fn main() {}
