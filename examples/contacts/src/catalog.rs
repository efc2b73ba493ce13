//! The operator's view of the hooks: every registered handler, as JSON (`GET /hooks`) and as the
//! table the service prints at start-up, plus the handlers still called by hand.

use hooks::{Kind, Registration, Table};
use serde::Serialize;
use serde_json::{Value, json};

use crate::handlers::MANUAL;

/// One registered handler, as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerInfo {
    /// The handler's path.
    pub id: &'static str,
    /// The operation, such as `data.create`.
    pub operation: &'static str,
    /// The asset, such as `Contact`.
    pub asset: &'static str,
    /// `before` or `after`.
    pub phase: &'static str,
    /// `sync` or `async`.
    pub kind: &'static str,
    /// Lower runs first.
    pub priority: i32,
    /// The source file.
    pub file: &'static str,
    /// The line of the attribute.
    pub line: u32,
    /// The first line of its doc comment.
    pub doc: &'static str,
}

impl From<&Registration> for HandlerInfo {
    fn from(r: &Registration) -> Self {
        HandlerInfo {
            id: r.id(),
            operation: r.operation(),
            asset: r.asset(),
            phase: r.phase().as_str(),
            kind: match r.kind() {
                Kind::Sync => "sync",
                Kind::Async => "async",
            },
            priority: r.priority(),
            file: r.file(),
            line: r.line(),
            doc: r.doc(),
        }
    }
}

/// Every registered handler, in the table's order (operation, asset, phase, priority, id).
pub fn handlers(table: &Table) -> Vec<HandlerInfo> {
    table
        .registrations()
        .iter()
        .map(|r| HandlerInfo::from(*r))
        .collect()
}

/// The catalog as JSON: `{"handlers": [...], "manual": [...]}`.
pub fn json(table: &Table) -> Value {
    json!({ "handlers": handlers(table), "manual": MANUAL })
}

/// The catalog as a text table, one handler a line.
pub fn render(table: &Table) -> String {
    let rows = handlers(table);
    let mut lines: Vec<[String; 6]> = vec![[
        "OPERATION".into(),
        "ASSET".into(),
        "PHASE".into(),
        "PRIO".into(),
        "KIND".into(),
        "HANDLER".into(),
    ]];
    let short = |id: &str| {
        id.strip_prefix("contacts::handlers::")
            .unwrap_or(id)
            .to_owned()
    };
    for r in &rows {
        lines.push([
            r.operation.into(),
            r.asset.into(),
            r.phase.into(),
            r.priority.to_string(),
            r.kind.into(),
            format!("{}  ({}:{})", short(r.id), r.file, r.line),
        ]);
    }
    for m in MANUAL {
        lines.push([
            m.operation.into(),
            m.asset.into(),
            m.phase.into(),
            "-".into(),
            "manual".into(),
            format!("{}  (called by hand until issue 3)", short(m.id)),
        ]);
    }
    let mut widths = [0usize; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!("{} hook handlers registered\n", rows.len());
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_every_linked_handler_with_its_location() {
        let table = Table::global().unwrap();
        let json = json(table);
        let handlers = json["handlers"].as_array().unwrap();
        let audit = handlers
            .iter()
            .find(|h| h["id"] == "contacts::handlers::audit::audit_contact_updated")
            .unwrap();
        assert_eq!(audit["operation"], "data.update");
        assert_eq!(audit["phase"], "after");
        assert_eq!(audit["kind"], "async");
        assert!(audit["file"].as_str().unwrap().ends_with("audit.rs"));
        assert!(!audit["doc"].as_str().unwrap().is_empty());
        let text = render(table);
        assert!(text.contains("audit::audit_contact_updated"));
        assert!(text.contains("login_policy::count_failed_logins"));
    }
}
