//! Use case: **injecting properties into responses.** After handlers shape what a client sees:
//! a computed field (`display_name`, never stored) on every contact, and the private fields
//! (`phone`, `notes`) removed for everyone but the contact's owner. They run last among the after
//! handlers (priority 100), so audit, notification and integration see the full record, and they
//! run on every path that returns contacts: find, find by id, create, bulk create and update.

use hooks::prelude::*;

use crate::model::Contact;

/// Add the computed fields and, unless `viewer` owns the contact, remove the private ones.
pub fn present(contact: &mut Contact, viewer: Option<&User>) {
    contact.display_name = Some(match &contact.company {
        Some(company) => format!("{} ({company})", contact.name),
        None => contact.name.clone(),
    });
    let owner = contact.owner.as_deref();
    if viewer.is_none_or(|v| Some(v.id.as_str()) != owner) {
        contact.phone = None;
        contact.notes = None;
    }
}

/// Contacts found by a query: computed fields in, private fields out.
#[after_find("Contact", priority = 100)]
pub fn present_found(contacts: &mut Vec<Contact>, ctx: &Context) {
    for contact in contacts {
        present(contact, ctx.user());
    }
}

/// A contact read by id: computed fields in, private fields out.
#[after_find_by_id("Contact", priority = 100)]
pub fn present_one(contact: &mut Contact, ctx: &Context) {
    present(contact, ctx.user());
}

/// A created contact, as its creator sees it.
#[after_create("Contact", priority = 100)]
pub fn present_created(contact: &mut Contact, ctx: &Context) {
    present(contact, ctx.user());
}

/// The contacts of a bulk create, each as a single create's answer shows it.
#[after_bulk_create("Contact", priority = 100)]
pub fn present_bulk_created(contacts: &mut Vec<Contact>, ctx: &Context) {
    for contact in contacts {
        present_created(contact, ctx);
    }
}

/// An updated contact, as its owner sees it.
#[after_update("Contact", priority = 100)]
pub fn present_updated(contact: &mut Contact, ctx: &Context) {
    present(contact, ctx.user());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            owner: Some("1".into()),
            name: "Ada".into(),
            company: Some("Analytical Engines".into()),
            phone: Some("+4420".into()),
            notes: Some("likes tea".into()),
            ..Contact::default()
        }
    }

    #[test]
    fn the_owner_sees_private_fields_and_others_do_not() {
        let mut mine = vec![contact()];
        present_found(&mut mine, &Context::client().with_user(User::new("1")));
        assert_eq!(mine[0].phone.as_deref(), Some("+4420"));
        assert_eq!(
            mine[0].display_name.as_deref(),
            Some("Ada (Analytical Engines)")
        );

        let mut theirs = contact();
        present_one(&mut theirs, &Context::client().with_user(User::new("2")));
        assert_eq!((theirs.phone, theirs.notes), (None, None));
        assert_eq!(
            theirs.display_name.as_deref(),
            Some("Ada (Analytical Engines)")
        );
    }

    #[test]
    fn each_contact_of_a_bulk_create_is_presented_as_a_single_one() {
        let ada = Context::client().with_user(User::new("1"));
        let mut batch = vec![contact(), contact()];
        present_bulk_created(&mut batch, &ada);
        let mut single = contact();
        present_created(&mut single, &ada);
        assert_eq!(batch, [single.clone(), single]);
        // Were another user to see them, the private fields would go, as they do for one.
        let mut theirs = vec![contact()];
        present_bulk_created(&mut theirs, &Context::client().with_user(User::new("2")));
        assert_eq!((&theirs[0].phone, &theirs[0].notes), (&None, &None));
    }
}
