//! The real binary, as an operator runs it: it prints the hook catalog and its address, serves,
//! stops gracefully on SIGTERM, finds its data again when started on the same file, takes its
//! admins from `--admin`, and refuses a setting it cannot read with a message, not a panic.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use support::Client;

/// The binary, killed if a test ends while it still runs.
struct Process {
    child: Child,
    /// Every line printed before the address.
    banner: Vec<String>,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The binary with the tests' settings: a free port, minimal password hashing, few logs.
fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contacts"));
    command
        .args(["--port", "0"])
        .env("CONTACTS_PASSWORD_COST", "minimal")
        .env("CONTACTS_LOG", "warn")
        .env_remove("CONTACTS_ADMINS");
    command
}

fn launch(db: &std::path::Path) -> Process {
    launch_with(db, &[])
}

/// Start the binary on the database `db`, with more flags.
fn launch_with(db: &std::path::Path, flags: &[&str]) -> Process {
    let child = command()
        .arg("--db")
        .arg(db)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    // From here on, `Process`'s drop reaps the child whatever happens.
    let mut process = Process {
        child,
        banner: Vec::new(),
        url: String::new(),
    };
    let stdout = process.child.stdout.take().expect("a stdout pipe");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the binary prints its address");
        if let Some(url) = line.strip_prefix("listening on ") {
            process.url = url.to_owned();
            return process;
        }
        process.banner.push(line);
    }
}

/// Send SIGTERM and wait for the process to exit; its exit status.
fn terminate(process: &mut Process) -> std::process::ExitStatus {
    let pid = i32::try_from(process.child.id()).expect("a pid fits in i32");
    // SAFETY: `kill` only sends a signal, to a child this test started and has not reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM was sent");
    for _ in 0..600 {
        if let Some(status) = process
            .child
            .try_wait()
            .expect("the child can be waited on")
        {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the binary did not stop after SIGTERM");
}

fn client(process: &Process) -> Client {
    Client {
        url: process.url.clone(),
        token: None,
    }
}

#[tokio::test]
async fn the_binary_prints_its_hooks_stops_on_sigterm_and_keeps_its_data_across_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("contacts.db");

    let mut first = launch(&db);
    let banner = first.banner.join("\n");
    assert!(banner.contains("hook handlers registered"), "{banner}");
    assert!(banner.contains("inject::stamp_new_record"), "{banner}");
    assert!(
        banner.contains("login_policy::count_failed_logins"),
        "{banner}"
    );
    assert!(first.url.starts_with("http://127.0.0.1:"), "{}", first.url);
    assert!(db.exists(), "the database file is created on first start");

    let ada = client(&first).sign_up("ada@example.com").await;
    let (status, _) = ada
        .post(
            "/data/Contact",
            json!({ "name": "Grace Hopper", "email": "grace@navy.mil" }),
        )
        .await;
    assert_eq!(status, 201);
    assert!(terminate(&mut first).success(), "a graceful stop exits 0");

    let mut second = launch(&db);
    let ada = client(&second)
        .sign_in("ada@example.com", "correct horse")
        .await;
    let (status, contact) = ada.get("/data/Contact/1").await;
    assert_eq!(status, 200, "{contact}");
    assert_eq!(contact["name"], "Grace Hopper");
    assert!(terminate(&mut second).success());
}

#[tokio::test]
async fn the_binary_takes_its_admins_from_the_admin_flag() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut process = launch_with(
        &dir.path().join("contacts.db"),
        &["--admin", " Ops@Example.COM "],
    );
    let anon = client(&process);
    assert_eq!(anon.get("/hooks").await.0, 401);
    let ada = anon.sign_up("ada@example.com").await;
    assert_eq!(ada.get("/hooks").await.0, 403);
    let ops = anon.sign_up("ops@example.com").await;
    let (status, catalog) = ops.get("/hooks").await;
    assert_eq!(status, 200, "{catalog}");
    assert!(
        catalog["handlers"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
    );
    assert!(terminate(&mut process).success());
}

#[test]
fn an_admin_that_is_not_an_email_address_stops_the_binary_with_a_message() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("contacts.db");
    for (flags, env) in [
        (&["--admin", "ops"][..], None),
        (&[][..], Some("ops@example.com,not an email")),
    ] {
        let mut command = command();
        command.arg("--db").arg(&db).args(flags);
        if let Some(admins) = env {
            command.env("CONTACTS_ADMINS", admins);
        }
        let output = command.output().expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with("contacts: "), "{stderr}");
        assert!(stderr.contains("is not one"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!db.exists(), "nothing started");
    }
}
