//! The catalog: what an operator looks at. Every operation (event type) with its description and
//! subscriber count, and every handler with where it is, how it runs and its execution history.
//! As data ([`Catalog`]), as a printed table (`Display`) and as JSON (`Serialize`).

use std::collections::BTreeMap;
use std::fmt;

use crate::event::{OperationInfo, Phase};
use crate::registration::{Kind, Mode, Registration, declared_operations};
use crate::stats::Stats;
use crate::table::Table;

/// One operation (event type) of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventEntry {
    /// The operation's name, such as `"data.create"`.
    pub name: String,
    /// Its asset, or `"*"` when each call names one.
    pub asset: String,
    /// A one-line description (empty for an operation that was never declared).
    pub description: String,
    /// What before handlers see.
    pub input: String,
    /// What after handlers see.
    pub output: String,
    /// How many handlers subscribe to it, over all its assets.
    pub subscribers: usize,
}

/// One handler of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HandlerEntry {
    /// The handler's id: module path and function name.
    pub id: String,
    /// The operation it handles.
    pub event: String,
    /// The asset it subscribes to (`"*"` for all).
    pub asset: String,
    /// Before or after.
    pub phase: Phase,
    /// Its priority (lower runs first).
    pub priority: i32,
    /// Blocking or background.
    pub mode: Mode,
    /// Plain fn or `async fn`.
    pub kind: Kind,
    /// Its own timeout in milliseconds, if the attribute set one.
    pub timeout_ms: Option<u64>,
    /// Whether it runs on client calls only.
    pub client_only: bool,
    /// The params written in the attribute.
    pub params: BTreeMap<String, String>,
    /// The source file.
    pub file: String,
    /// The source line.
    pub line: u32,
    /// The first line of its doc comment.
    pub doc: String,
    /// Its execution history.
    pub stats: Stats,
}

/// The catalog of a table. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Catalog {
    /// Every operation, by name.
    pub events: Vec<EventEntry>,
    /// Every handler, by operation, asset, phase and run order.
    pub handlers: Vec<HandlerEntry>,
}

impl HandlerEntry {
    fn of(reg: &Registration) -> Self {
        HandlerEntry {
            id: reg.id().to_owned(),
            event: reg.operation().to_owned(),
            asset: reg.asset().to_owned(),
            phase: reg.phase(),
            priority: reg.priority(),
            mode: reg.mode(),
            kind: reg.kind(),
            timeout_ms: reg
                .timeout()
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            client_only: reg.client_only(),
            params: reg
                .params()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            file: reg.file().to_owned(),
            line: reg.line(),
            doc: reg.doc().to_owned(),
            stats: reg.stats(),
        }
    }
}

impl Catalog {
    /// The catalog of `table`: its handlers, and every operation declared in the binary.
    pub fn of(table: &Table) -> Self {
        Self::build(table, declared_operations())
    }

    fn build<'a>(table: &Table, declared: impl Iterator<Item = &'a OperationInfo>) -> Self {
        let mut events: BTreeMap<&str, EventEntry> = BTreeMap::new();
        for op in declared {
            events.entry(op.name).or_insert_with(|| EventEntry {
                name: op.name.to_owned(),
                asset: op.asset.to_owned(),
                description: op.description.to_owned(),
                input: op.input.to_owned(),
                output: op.output.to_owned(),
                subscribers: 0,
            });
        }
        let handlers: Vec<HandlerEntry> = table
            .registrations()
            .iter()
            .map(|r| HandlerEntry::of(r))
            .collect();
        for reg in table.registrations() {
            events
                .entry(reg.operation())
                .or_insert_with(|| EventEntry {
                    name: reg.operation().to_owned(),
                    asset: reg.asset().to_owned(),
                    description: String::new(),
                    input: String::new(),
                    output: String::new(),
                    subscribers: 0,
                })
                .subscribers += 1;
        }
        Catalog {
            events: events.into_values().collect(),
            handlers,
        }
    }

    /// The catalog as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A catalog holds only strings, numbers and booleans: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The handlers of the catalog that come from `crate_name` (their id starts with it).
    pub fn handlers_of<'a>(
        &'a self,
        crate_name: &'a str,
    ) -> impl Iterator<Item = &'a HandlerEntry> {
        self.handlers.iter().filter(move |h| {
            h.id.strip_prefix(crate_name)
                .is_some_and(|rest| rest.starts_with("::"))
        })
    }

    /// The set of handlers and their settings, without the execution history: a stable text for
    /// snapshot files, one handler a line.
    pub fn snapshot(&self) -> String {
        let mut out = String::new();
        for h in &self.handlers {
            let mut parts = vec![
                h.event.clone(),
                h.asset.clone(),
                phase_name(h.phase).to_owned(),
                h.id.clone(),
                format!("priority={}", h.priority),
            ];
            if h.mode == Mode::Background {
                parts.push("background".into());
            }
            if h.kind == Kind::Async {
                parts.push("async".into());
            }
            if h.client_only {
                parts.push("client_only".into());
            }
            if let Some(t) = h.timeout_ms {
                parts.push(format!("timeout={t}ms"));
            }
            parts.push(portable(&h.file));
            out.push_str(&parts.join(" "));
            out.push('\n');
        }
        out
    }
}

/// A handler's file as a snapshot shows it, the same on every machine and system: with `/`
/// between its parts; a path in the workspace as rustc gives it (relative), and a crate's outside
/// it (a registry, git or path dependency: an absolute path) from the crate's own directory,
/// `ext-handlers/src/lib.rs`.
fn portable(file: &str) -> String {
    let file = file.replace('\\', "/");
    let bytes = file.as_bytes();
    let absolute =
        bytes.first() == Some(&b'/') || (bytes.len() > 2 && bytes[1] == b':' && bytes[2] == b'/');
    if !absolute {
        return file;
    }
    match file.rfind("/src/") {
        Some(src) => {
            let start = file[..src].rfind('/').map_or(0, |slash| slash + 1);
            file[start..].to_owned()
        }
        None => file.rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

fn phase_name(phase: Phase) -> &'static str {
    phase.as_str()
}

impl fmt::Display for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width =
            |xs: &mut dyn Iterator<Item = usize>, min: usize| xs.max().unwrap_or(0).max(min);
        let name_w = width(&mut self.events.iter().map(|e| e.name.len()), 5);
        writeln!(f, "{:<name_w$}  {:>4}  description", "event", "subs")?;
        for e in &self.events {
            writeln!(
                f,
                "{:<name_w$}  {:>4}  {}",
                e.name, e.subscribers, e.description
            )?;
        }
        writeln!(f)?;
        let id_w = width(&mut self.handlers.iter().map(|h| h.id.len()), 7);
        let ev_w = width(
            &mut self
                .handlers
                .iter()
                .map(|h| h.event.len() + h.asset.len() + 1),
            5,
        );
        writeln!(
            f,
            "{:<id_w$}  {:<ev_w$}  {:<6}  {:>4}  {:<10}  {:>7}  {:<3}  {:>7}  {:>6}  {:>6}  \
             {:>6}  {:>8}  {:>9}  source",
            "handler",
            "event",
            "phase",
            "prio",
            "mode",
            "timeout",
            "on",
            "calls",
            "reject",
            "errors",
            "panics",
            "timeouts",
            "time"
        )?;
        for h in &self.handlers {
            let event = format!("{}:{}", h.event, h.asset);
            let mode = match (h.mode, h.kind) {
                (Mode::Background, _) => "background",
                (Mode::Blocking, Kind::Async) => "async",
                (Mode::Blocking, Kind::Sync) => "sync",
            };
            let timeout = match h.timeout_ms {
                None => "-".to_owned(),
                Some(ms) if ms % 1000 == 0 => format!("{}s", ms / 1000),
                Some(ms) => format!("{ms}ms"),
            };
            // Kept with `History::Timed` only.
            let time = if h.stats.time_spent.is_zero() {
                "-".to_owned()
            } else {
                format!("{:.1?}", h.stats.time_spent)
            };
            writeln!(
                f,
                "{:<id_w$}  {:<ev_w$}  {:<6}  {:>4}  {:<10}  {:>7}  {:<3}  {:>7}  {:>6}  {:>6}  \
                 {:>6}  {:>8}  {:>9}  {}:{}",
                h.id,
                event,
                phase_name(h.phase),
                h.priority,
                mode,
                timeout,
                if h.stats.enabled { "on" } else { "off" },
                h.stats.calls,
                h.stats.rejections,
                h.stats.errors,
                h.stats.panics,
                h.stats.timeouts,
                time,
                h.file,
                h.line
            )?;
            // What does not fit a column, on a line of its own under the handler's.
            let mut notes: Vec<String> = Vec::new();
            if !h.doc.is_empty() {
                notes.push(h.doc.clone());
            }
            if h.client_only {
                notes.push("client calls only".to_owned());
            }
            if !h.params.is_empty() {
                let params: Vec<String> =
                    h.params.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                notes.push(format!("params: {}", params.join(", ")));
            }
            if !notes.is_empty() {
                writeln!(f, "    {}", notes.join("; "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::portable;

    #[test]
    fn a_snapshot_shows_a_file_outside_the_workspace_from_its_crates_directory() {
        // In the workspace: as rustc gives it.
        assert_eq!(portable("src/handlers.rs"), "src/handlers.rs");
        assert_eq!(
            portable("examples/contacts/src/lib.rs"),
            "examples/contacts/src/lib.rs"
        );
        // A path, registry or git dependency: from the crate's own directory.
        assert_eq!(
            portable("/tmp/review/ext-handlers/src/lib.rs"),
            "ext-handlers/src/lib.rs"
        );
        assert_eq!(
            portable("/root/.cargo/registry/src/index.crates.io-1949/foo-1.2.3/src/api/mod.rs"),
            "foo-1.2.3/src/api/mod.rs"
        );
        // On Windows: the same text.
        assert_eq!(
            portable("C:\\Users\\me\\ext\\src\\lib.rs"),
            "ext/src/lib.rs"
        );
        assert_eq!(portable("C:/Users/me/ext/src/lib.rs"), "ext/src/lib.rs");
        assert_eq!(portable("tests\\testing_kit.rs"), "tests/testing_kit.rs");
        assert_eq!(portable("/opt/gen/handlers.rs"), "handlers.rs");
    }
}
