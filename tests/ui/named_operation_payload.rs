use hooks::prelude::*;

pub struct Invitation {
    pub email: String,
}

hooks::operation! {
    /// Send an invitation email.
    pub SendInvitation: "team.send_invitation", Invitation => u32
}

#[before(SendInvitation)]
fn sign(_invitation: &mut String) {}

#[after(SendInvitation)]
fn count(_sent: &mut Invitation) {}

fn main() {}
