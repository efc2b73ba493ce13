//! The service's settings: where it listens, where it keeps its data, and the knobs of its hooks.
//!
//! Settings come from `CONTACTS_*` environment variables, then command-line flags (a flag wins).
//! Every setting has a default, so the service starts with none at all.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::handlers::validation::is_email;
use crate::users::normalise_email;

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, created on first start.
    File(PathBuf),
    /// A SQLite database in memory, gone when the service stops (for tests and demos).
    Memory,
}

/// How expensive password hashing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCost {
    /// Argon2id with the OWASP-recommended parameters (19 MiB, 2 passes): for real use.
    Standard,
    /// Argon2id with the smallest parameters: fast, and only for tests.
    Minimal,
}

/// The service's settings. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Config {
    /// The TCP port on 127.0.0.1; 0 picks a free one (the service prints which).
    pub port: u16,
    /// Where the data lives.
    pub database: Database,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// The most records one bulk call takes: a bulk create (`POST /data/bulk/{table}`) sends,
    /// or a bulk update or delete selects of the caller's; more get 413 `too_many_records`. The
    /// body limit applies too.
    pub bulk_max: usize,
    /// The third-party endpoint told about new contacts (`http://host:port/path`), if any.
    pub webhook_url: Option<String>,
    /// Failed logins in a row that lock an account.
    pub max_failed_logins: u32,
    /// How long a locked account stays locked.
    pub lockout: Duration,
    /// Email domains that may not register.
    pub banned_domains: Vec<String>,
    /// The emails, normalised as logins are ([`normalise_email`]), whose accounts get the
    /// `admin` role ([`crate::users::ADMIN`]), which opens `GET /hooks`. None by default.
    pub admins: Vec<String>,
    /// How long a login's token stays valid.
    pub session_ttl: Duration,
    /// How expensive password hashing is.
    pub password_cost: PasswordCost,
    /// How long a graceful shutdown waits for the requests in flight, then for queued background
    /// handlers (webhook deliveries).
    pub shutdown_deadline: Duration,
    /// How long a client may take to send a request's head (line and headers); a connection
    /// that has not sent one by then is closed.
    pub header_timeout: Duration,
    /// How long a request may take, from its head to its answer, body upload included; past
    /// it the client gets 408 `request_timeout`.
    pub request_timeout: Duration,
    /// The log filter, such as `info` or `contacts=debug,info`.
    pub log: String,
    /// Run with hooks switched off: the runtime is built over an empty table, so every call runs
    /// only its default logic (no validation, injection, audit, ...). For measuring what the
    /// hooks cost end to end (`BENCHMARKS.md`, item 3); not for real use.
    pub no_hooks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 8080,
            database: Database::File(PathBuf::from("contacts.db")),
            body_limit: 64 * 1024,
            bulk_max: 100,
            webhook_url: None,
            max_failed_logins: 5,
            lockout: Duration::from_secs(15 * 60),
            banned_domains: vec!["mailinator.com".into(), "trashmail.com".into()],
            admins: Vec::new(),
            session_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            password_cost: PasswordCost::Standard,
            shutdown_deadline: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            log: "info".into(),
            no_hooks: false,
        }
    }
}

/// A setting that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The usage text that `--help` prints.
pub const USAGE: &str = "\
contacts: a contacts service showing hook handlers at work

USAGE: contacts [--port N] [--db PATH | --memory] [--admin EMAIL]... [--webhook URL] [--no-hooks]

FLAGS (each also read from the environment variable in brackets; a flag wins)
  --port N              port on 127.0.0.1, 0 for any free one       [CONTACTS_PORT, 8080]
  --db PATH             SQLite file, created on first start          [CONTACTS_DB, contacts.db]
  --memory              keep the data in memory only                 [CONTACTS_DB=:memory:]
  --admin EMAIL         the account with this email is an admin, who may read GET /hooks;
                        repeat the flag for more admins  [CONTACTS_ADMINS, comma-separated]
  --webhook URL         http:// endpoint told about new contacts     [CONTACTS_WEBHOOK_URL]
  --body-limit BYTES    largest request body                         [CONTACTS_BODY_LIMIT, 65536]
  --bulk-max N          most records in one bulk call                [CONTACTS_BULK_MAX, 100]
  --max-failed-logins N failed logins that lock an account           [CONTACTS_MAX_FAILED_LOGINS, 5]
  --lockout-secs N      how long a locked account stays locked       [CONTACTS_LOCKOUT_SECS, 900]
  --session-secs N      how long a login's token stays valid         [CONTACTS_SESSION_SECS, 2592000]
  --shutdown-secs N     how long shutdown waits for background work  [CONTACTS_SHUTDOWN_SECS, 30]
  --banned-domains LIST comma-separated email domains that may not register
                                                                     [CONTACTS_BANNED_DOMAINS]
  --log FILTER          log filter, such as info or contacts=debug   [CONTACTS_LOG, info]
  --no-hooks            run no hook handler at all: only each call's default logic, for
                        measuring what the hooks cost (BENCHMARKS.md) [CONTACTS_NO_HOOKS=1]
  -h, --help            print this text
";

impl Config {
    /// Settings for a test: an in-memory database, a free port, minimal password hashing.
    pub fn for_tests() -> Self {
        Config {
            port: 0,
            database: Database::Memory,
            password_cost: PasswordCost::Minimal,
            ..Config::default()
        }
    }

    /// Read the settings from the environment (`env` looks a variable up) and then the
    /// command-line `args` (without the program name). `Ok(None)` means `--help` was asked for.
    pub fn from_env_and_args(
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Option<Config>, ConfigError> {
        let mut config = Config::default();
        let settings: [(&str, &str); 12] = [
            ("CONTACTS_PORT", "--port"),
            ("CONTACTS_DB", "--db"),
            ("CONTACTS_WEBHOOK_URL", "--webhook"),
            ("CONTACTS_BODY_LIMIT", "--body-limit"),
            ("CONTACTS_BULK_MAX", "--bulk-max"),
            ("CONTACTS_MAX_FAILED_LOGINS", "--max-failed-logins"),
            ("CONTACTS_LOCKOUT_SECS", "--lockout-secs"),
            ("CONTACTS_BANNED_DOMAINS", "--banned-domains"),
            ("CONTACTS_LOG", "--log"),
            ("CONTACTS_SESSION_SECS", "--session-secs"),
            ("CONTACTS_PASSWORD_COST", "--password-cost"),
            ("CONTACTS_SHUTDOWN_SECS", "--shutdown-secs"),
        ];
        for (var, flag) in settings {
            if let Some(value) = env(var) {
                config.set(flag, &value)?;
            }
        }
        if let Some(value) = env("CONTACTS_ADMINS") {
            config.admins = Vec::new();
            for email in value.split(',').filter(|e| !e.trim().is_empty()) {
                config.add_admin("CONTACTS_ADMINS", email)?;
            }
        }
        if let Some(value) = env("CONTACTS_NO_HOOKS") {
            config.no_hooks = match value.trim() {
                "1" | "true" | "yes" => true,
                "" | "0" | "false" | "no" => false,
                other => {
                    return Err(ConfigError(format!(
                        "CONTACTS_NO_HOOKS is 1 or 0, not `{other}`"
                    )));
                }
            };
        }
        // The first `--admin` replaces the environment's list (a flag wins); the others add to it.
        let mut admins_from_flags = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--memory" => config.database = Database::Memory,
                "--no-hooks" => config.no_hooks = true,
                flag if flag.starts_with("--") => {
                    let (flag, value) = match flag.split_once('=') {
                        Some((flag, value)) => (flag.to_owned(), value.to_owned()),
                        None => {
                            let value = args.next().ok_or_else(|| {
                                ConfigError(format!("{flag} needs a value; see --help"))
                            })?;
                            (flag.to_owned(), value)
                        }
                    };
                    if flag == "--admin" && !std::mem::replace(&mut admins_from_flags, true) {
                        config.admins.clear();
                    }
                    config.set(&flag, &value)?;
                }
                other => {
                    return Err(ConfigError(format!(
                        "unexpected argument `{other}`; see --help"
                    )));
                }
            }
        }
        Ok(Some(config))
    }

    /// Name `email` an admin, normalised as a login is; `setting` (the flag or variable it came
    /// from) names it in the error when it is not an email address.
    fn add_admin(&mut self, setting: &str, email: &str) -> Result<(), ConfigError> {
        let normal = normalise_email(email);
        if !is_email(&normal) {
            return Err(ConfigError(format!(
                "{setting} takes email addresses, and `{}` is not one",
                email.escape_debug()
            )));
        }
        if !self.admins.contains(&normal) {
            self.admins.push(normal);
        }
        Ok(())
    }

    fn set(&mut self, flag: &str, value: &str) -> Result<(), ConfigError> {
        fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{flag} takes a number, not `{value}`")))
        }
        match flag {
            "--port" => self.port = number(flag, value)?,
            "--db" => {
                self.database = match value {
                    ":memory:" => Database::Memory,
                    "" => return Err(ConfigError("--db needs a file path".into())),
                    path => Database::File(PathBuf::from(path)),
                }
            }
            "--webhook" => {
                self.webhook_url = match value.trim() {
                    "" => None,
                    url if url.starts_with("http://") => Some(url.to_owned()),
                    url => {
                        return Err(ConfigError(format!(
                            "--webhook takes an http:// URL, not `{url}`"
                        )));
                    }
                }
            }
            "--body-limit" => self.body_limit = number(flag, value)?,
            "--bulk-max" => {
                self.bulk_max = number(flag, value)?;
                if self.bulk_max == 0 {
                    return Err(ConfigError("--bulk-max must be at least 1".into()));
                }
            }
            "--max-failed-logins" => {
                self.max_failed_logins = number(flag, value)?;
                if self.max_failed_logins == 0 {
                    return Err(ConfigError("--max-failed-logins must be at least 1".into()));
                }
            }
            "--lockout-secs" => self.lockout = Duration::from_secs(number(flag, value)?),
            "--session-secs" => self.session_ttl = Duration::from_secs(number(flag, value)?),
            "--shutdown-secs" => {
                self.shutdown_deadline = Duration::from_secs(number(flag, value)?);
            }
            "--banned-domains" => {
                self.banned_domains = value
                    .split(',')
                    .map(|d| d.trim().to_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect();
            }
            "--admin" => self.add_admin(flag, value)?,
            "--log" => self.log = value.to_owned(),
            "--password-cost" => {
                self.password_cost = match value {
                    "standard" => PasswordCost::Standard,
                    "minimal" => PasswordCost::Minimal,
                    other => {
                        return Err(ConfigError(format!(
                            "--password-cost is `standard` or `minimal`, not `{other}`"
                        )));
                    }
                }
            }
            other => return Err(ConfigError(format!("unknown flag `{other}`; see --help"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Option<Config>, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env_and_args(
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            args.iter().map(|a| a.to_string()),
        )
    }

    #[test]
    fn a_flag_overrides_the_environment() {
        let config = parse(&[("CONTACTS_PORT", "9000")], &["--port", "9001"])
            .unwrap()
            .unwrap();
        assert_eq!(config.port, 9001);
        let config = parse(&[("CONTACTS_PORT", "9000")], &[]).unwrap().unwrap();
        assert_eq!(config.port, 9000);
    }

    #[test]
    fn no_settings_give_the_defaults() {
        let config = parse(&[], &[]).unwrap().unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.database, Database::File("contacts.db".into()));
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_flag() {
        let err = parse(&[], &["--port=eighty"]).unwrap_err();
        assert!(err.0.contains("--port"), "{err}");
        assert!(parse(&[], &["--webhook", "ftp://x"]).is_err());
        assert!(parse(&[], &["--nope", "1"]).is_err());
    }

    #[test]
    fn the_shutdown_deadline_is_30_seconds_unless_set() {
        let config = parse(&[], &[]).unwrap().unwrap();
        assert_eq!(config.shutdown_deadline, Duration::from_secs(30));
        let config = parse(&[("CONTACTS_SHUTDOWN_SECS", "5")], &[])
            .unwrap()
            .unwrap();
        assert_eq!(config.shutdown_deadline, Duration::from_secs(5));
        assert!(parse(&[], &["--shutdown-secs", "soon"]).is_err());
    }

    #[test]
    fn a_bulk_call_takes_at_most_100_records_unless_set() {
        assert_eq!(parse(&[], &[]).unwrap().unwrap().bulk_max, 100);
        let config = parse(&[("CONTACTS_BULK_MAX", "20")], &["--bulk-max=30"])
            .unwrap()
            .unwrap();
        assert_eq!(config.bulk_max, 30);
        let err = parse(&[], &["--bulk-max", "0"]).unwrap_err();
        assert!(err.0.contains("--bulk-max"), "{err}");
        assert!(parse(&[], &["--bulk-max", "many"]).is_err());
    }

    #[test]
    fn hooks_are_on_unless_switched_off() {
        assert!(!parse(&[], &[]).unwrap().unwrap().no_hooks);
        assert!(parse(&[], &["--no-hooks"]).unwrap().unwrap().no_hooks);
        let env = |v| parse(&[("CONTACTS_NO_HOOKS", v)], &[]);
        assert!(env("1").unwrap().unwrap().no_hooks);
        assert!(!env("0").unwrap().unwrap().no_hooks);
        assert!(env("maybe").is_err());
    }

    #[test]
    fn admins_are_named_by_a_repeated_flag_or_a_list_and_normalised_as_logins_are() {
        assert!(parse(&[], &[]).unwrap().unwrap().admins.is_empty());
        let config = parse(
            &[],
            &["--admin", " Ada@Example.COM ", "--admin=bob@example.org"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.admins, ["ada@example.com", "bob@example.org"]);
        let config = parse(
            &[("CONTACTS_ADMINS", "Ada@Example.com, bob@example.org,")],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.admins, ["ada@example.com", "bob@example.org"]);
        // The same address twice is one admin.
        let config = parse(
            &[],
            &["--admin", "ada@example.com", "--admin", "ADA@example.com"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(config.admins, ["ada@example.com"]);
    }

    #[test]
    fn admin_flags_replace_the_admins_of_the_environment() {
        let env = [("CONTACTS_ADMINS", "ada@example.com,bob@example.org")];
        let config = parse(&env, &["--admin", "eve@example.net"])
            .unwrap()
            .unwrap();
        assert_eq!(config.admins, ["eve@example.net"]);
        let config = parse(&env, &["--port", "0"]).unwrap().unwrap();
        assert_eq!(config.admins, ["ada@example.com", "bob@example.org"]);
    }

    #[test]
    fn an_admin_that_is_not_an_email_address_is_an_error_naming_the_setting() {
        let err = parse(&[], &["--admin", "ada"]).unwrap_err();
        assert!(
            err.0.contains("--admin") && err.0.contains("`ada`"),
            "{err}"
        );
        let err = parse(&[], &["--admin="]).unwrap_err();
        assert!(err.0.contains("--admin"), "{err}");
        let err = parse(&[], &["--admin"]).unwrap_err();
        assert!(err.0.contains("--admin needs a value"), "{err}");
        let err = parse(
            &[("CONTACTS_ADMINS", "ada@example.com;bob@example.org")],
            &[],
        )
        .unwrap_err();
        assert!(err.0.contains("CONTACTS_ADMINS"), "{err}");
        let err = parse(&[("CONTACTS_ADMINS", "ada@exam\u{200B}ple.com")], &[]).unwrap_err();
        assert!(err.0.contains("CONTACTS_ADMINS"), "{err}");
    }

    #[test]
    fn memory_and_help_are_understood() {
        let config = parse(&[], &["--memory"]).unwrap().unwrap();
        assert_eq!(config.database, Database::Memory);
        assert!(parse(&[], &["--help"]).unwrap().is_none());
    }
}
