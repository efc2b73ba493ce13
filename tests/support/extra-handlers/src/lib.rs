//! Test fixture: an entity and its handlers in a crate of their own, as a service's `handlers`
//! crate would be. A binary collects them only if it names this crate (`use extra_handlers as _;`).

use hooks::prelude::*;

/// An invoice, stored in the `invoices` table.
#[derive(Debug, Clone, PartialEq, Entity)]
#[entity(table = "invoices")]
pub struct Invoice {
    /// Amount in cents.
    pub cents: i64,
    /// Set by [`number_invoice`].
    pub number: Option<String>,
}

/// Refuse invoices with a negative amount.
#[before_create("invoices")]
pub fn refuse_negative(invoice: &Invoice) -> Result<(), HookError> {
    if invoice.cents < 0 {
        return Err(HookError::rejected("an invoice amount cannot be negative"));
    }
    Ok(())
}

/// Give every stored invoice a number.
#[after_create("invoices")]
pub async fn number_invoice(invoice: &mut Invoice) {
    invoice.number = Some(format!("INV-{:05}", invoice.cents));
}
