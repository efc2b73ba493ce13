//! The end-to-end benchmark of `BENCHMARKS.md` (issue 7, item 3): requests per second and p50/p99
//! latency of the contacts service with its hooks and with hooks switched off (`--no-hooks`).
//!
//! This process is the load generator, and the only one that talks to the services: for each mode
//! it starts the `contacts` binary as a child on `127.0.0.1` (a free port, `--memory` SQLite unless
//! `--db file`), signs up one user, seeds contacts, then runs each workload (a warm-up, then a
//! measurement bounded by both a request count and a time) over a fixed number of keep-alive
//! connections, and stops the service with SIGTERM. Both modes run in one run, alternating their
//! order between rounds (on/off, then off/on, ...), on the same machine with the same settings.
//!
//! The generator runs on one thread (a current-thread tokio runtime), so on a 2-core machine it
//! leaves the service about one core. Besides wall-clock figures it reports the service's CPU time
//! per request (from `/proc/PID/stat`). With `--callgrind K` it times nothing and instead counts
//! the service's instructions per request under `valgrind --tool=callgrind`, as the other benches
//! of `BENCHMARKS.md` do: (Ir(2K) - Ir(K)) / K, which does not move with the machine's load.
//!
//! ```sh
//! cargo build --release -p contacts --bins --examples
//! target/release/examples/e2e_load --rounds 4                  # --help for every setting
//! target/release/examples/e2e_load --callgrind 500 --warmup 200
//! ```
//! or `benches/e2e.sh`, which does both.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const USAGE: &str = "\
e2e_load: the contacts service with and without its hooks, under the same load (BENCHMARKS.md)

USAGE: e2e_load [FLAGS]

FLAGS
  --server PATH        the contacts binary      [next to this one: ../contacts]
  --connections N      keep-alive connections, each one request at a time        [4]
  --requests N         most requests measured per workload and mode              [20000]
  --seconds S          most seconds measured per workload and mode               [10]
  --warmup N           requests sent first and not measured, per workload        [2000]
  --rounds N           rounds; each runs both modes, in alternating order        [1]
  --seed N             contacts created before the workloads                     [100]
  --db memory|file     SQLite in memory, or in a temporary file (WAL)            [memory]
  --only WORKLOAD,...  run only these workloads (get, find, update, create)
  --callgrind K        instead of timing: the service's instructions per request, under
                       valgrind --tool=callgrind, as (Ir(2K) - Ir(K)) / K: each workload and
                       mode runs twice, K and 2K requests after the warm-up (cap it: --warmup 200)
  -h, --help           this text
";

/// The settings of a run.
#[derive(Debug, Clone)]
struct Settings {
    server: PathBuf,
    connections: usize,
    requests: u64,
    seconds: f64,
    warmup: u64,
    rounds: usize,
    seed: u64,
    file_db: bool,
    only: Option<Vec<String>>,
    callgrind: Option<u64>,
}

fn settings() -> Result<Option<Settings>, String> {
    let here = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let server = here
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("contacts"))
        .ok_or("no directory above this binary; pass --server")?;
    let mut s = Settings {
        server,
        connections: 4,
        requests: 20_000,
        seconds: 10.0,
        warmup: 2_000,
        rounds: 1,
        seed: 100,
        file_db: false,
        only: None,
        callgrind: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; see --help"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not `{v}`"))
        };
        match flag.as_str() {
            "--server" => s.server = PathBuf::from(value),
            "--connections" => s.connections = number(&value)?.max(1) as usize,
            "--requests" => s.requests = number(&value)?.max(1),
            "--seconds" => {
                s.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds takes a number, not `{value}`"))?;
            }
            "--warmup" => s.warmup = number(&value)?,
            "--rounds" => s.rounds = number(&value)?.max(1) as usize,
            "--seed" => s.seed = number(&value)?.max(1),
            "--db" => {
                s.file_db = match value.as_str() {
                    "memory" => false,
                    "file" => true,
                    other => return Err(format!("--db is `memory` or `file`, not `{other}`")),
                }
            }
            "--only" => s.only = Some(value.split(',').map(str::to_owned).collect()),
            "--callgrind" => s.callgrind = Some(number(&value)?.max(1)),
            other => return Err(format!("unknown flag `{other}`; see --help")),
        }
    }
    Ok(Some(s))
}

/// One kind of request, repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// `GET /data/Contact/{id}`, the ids of the seeded contacts in turn.
    Get,
    /// `GET /data/Contact?pageSize=10`.
    Find,
    /// `PUT /data/Contact/{id}` changing `company`, the seeded contacts in turn.
    Update,
    /// `POST /data/Contact` with a valid contact.
    Create,
}

const WORKLOADS: [Workload; 4] = [
    Workload::Get,
    Workload::Find,
    Workload::Update,
    Workload::Create,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Find => "find",
            Workload::Update => "update",
            Workload::Create => "create",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Workload::Get => "GET /data/Contact/{id}",
            Workload::Find => "GET /data/Contact?pageSize=10",
            Workload::Update => "PUT /data/Contact/{id}",
            Workload::Create => "POST /data/Contact",
        }
    }

    /// The `n`-th request of this workload: method, path, body, and the status that means success.
    fn request(self, n: u64, seed: u64) -> (Method, String, Bytes, u16) {
        let id = n % seed + 1;
        match self {
            Workload::Get => (
                Method::GET,
                format!("/data/Contact/{id}"),
                Bytes::new(),
                200,
            ),
            Workload::Find => (
                Method::GET,
                "/data/Contact?pageSize=10".to_owned(),
                Bytes::new(),
                200,
            ),
            Workload::Update => (
                Method::PUT,
                format!("/data/Contact/{id}"),
                Bytes::from(json!({ "company": format!("Company {}", n % 7) }).to_string()),
                200,
            ),
            Workload::Create => (Method::POST, "/data/Contact".to_owned(), contact(n), 201),
        }
    }
}

/// A contact every validation hook accepts (and that the normalisation hooks leave as it is).
fn contact(n: u64) -> Bytes {
    Bytes::from(
        json!({
            "name": format!("Grace Hopper {n}"),
            "email": format!("grace{n}@navy.mil"),
            "phone": "+15550100199",
            "company": "US Navy",
        })
        .to_string(),
    )
}

/// One keep-alive connection to the service.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    token: Option<String>,
}

impl Conn {
    async fn open(port: u16, token: Option<String>) -> Result<Conn, String> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: format!("127.0.0.1:{port}"),
            token,
        })
    }

    /// Send one request and read the whole response: its status and body.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len());
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// A `contacts` process, killed if it is still running when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Start the service, under `valgrind --tool=callgrind` writing to `callgrind` if given.
    fn start(
        settings: &Settings,
        hooks: bool,
        db: Option<&PathBuf>,
        callgrind: Option<&Path>,
    ) -> Result<Server, String> {
        let mut command = match callgrind {
            Some(out) => {
                let mut c = Command::new("valgrind");
                c.args(["--tool=callgrind", "--quiet"])
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(&settings.server);
                c
            }
            None => Command::new(&settings.server),
        };
        command.args(["--port", "0"]);
        match db {
            Some(path) => command.arg("--db").arg(path),
            None => command.arg("--memory"),
        };
        if !hooks {
            command.arg("--no-hooks");
        }
        for var in [
            "CONTACTS_NO_HOOKS",
            "CONTACTS_WEBHOOK_URL",
            "CONTACTS_DB",
            "CONTACTS_PORT",
        ] {
            command.env_remove(var);
        }
        let mut child = command
            // Only the sign-up and login of the set-up hash a password; no workload does.
            .env("CONTACTS_PASSWORD_COST", "minimal")
            .env("CONTACTS_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", settings.server.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut server = Server { child, port: 0 };
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| "the service did not print its address within 120 s")?;
            if let Some(addr) = line.strip_prefix("listening on http://127.0.0.1:") {
                server.port = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("not a port: {addr}"))?;
                return Ok(server);
            }
        }
    }

    /// The CPU time (user + system, every thread) the process has used so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name (which is in parentheses); utime and stime are the
        // 14th and 15th fields of the line, the 12th and 13th after the name.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks: u64 = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        // SAFETY: sysconf only reads a configuration value.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / per_second)
    }

    /// SIGTERM, then wait for the exit (a graceful stop); kill after 60 s.
    fn stop(mut self) -> Result<(), String> {
        let pid = i32::try_from(self.child.id()).map_err(|e| e.to_string())?;
        // SAFETY: `kill` only sends a signal, to a child this process started and has not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the service exited with {status}"))
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the service did not stop within 60 s of SIGTERM".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What one workload measured in one mode.
#[derive(Debug, Clone)]
struct Measured {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// Each request's latency, sorted.
    latencies: Vec<Duration>,
    server_cpu: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn cpu_per_request(&self) -> Duration {
        self.server_cpu / u32::try_from(self.requests.max(1)).unwrap_or(u32::MAX)
    }
}

/// Send up to `requests` requests of `workload` (and for at most `seconds`) over the connections,
/// each connection one request at a time; every answer other than the expected status is an error.
async fn drive(
    conns: &mut Vec<Conn>,
    workload: Workload,
    requests: u64,
    seconds: f64,
    seed: u64,
    first: &AtomicU64,
) -> Measured {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let base = first.fetch_add(requests, Ordering::Relaxed);
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns.drain(..) {
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || Instant::now() >= deadline {
                    break;
                }
                let (method, path, body, expected) = workload.request(base + n, seed);
                let sent = Instant::now();
                match conn.send(method, &path, body).await {
                    Ok((status, _)) if status == expected => latencies.push(sent.elapsed()),
                    Ok((status, body)) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!(
                                "e2e_load: {} {path}: {status} {}",
                                workload.name(),
                                String::from_utf8_lossy(&body)
                            );
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("e2e_load: {} {path}: {e}", workload.name());
                        break;
                    }
                }
            }
            (conn, latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        if let Ok((conn, l, e)) = done {
            conns.push(conn);
            latencies.extend(l);
            errors += e;
        } else {
            errors += 1;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Measured {
        requests: latencies.len() as u64,
        errors,
        elapsed,
        latencies,
        server_cpu: Duration::ZERO,
    }
}

/// One mode: start the service, set it up, run every workload, stop it.
/// `requests` and `warmup` override the settings' (the callgrind runs send fewer);
/// `callgrind` runs the service under callgrind, writing to that file.
async fn run_mode(
    settings: &Settings,
    hooks: bool,
    workloads: &[Workload],
    (warmup, requests, seconds): (u64, u64, f64),
    callgrind: Option<&Path>,
) -> Result<Vec<(Workload, Measured)>, String> {
    let dir = std::env::temp_dir().join(format!(
        "contacts-e2e-{}-{}",
        std::process::id(),
        if hooks { "on" } else { "off" }
    ));
    let db = settings.file_db.then(|| dir.join("contacts.db"));
    if let Some(_db) = &db {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let server = Server::start(settings, hooks, db.as_ref(), callgrind)?;
    let port = server.port;

    // Set-up: one user, signed in; `seed` contacts.
    let mut anon = Conn::open(port, None).await?;
    let user = json!({ "email": "ada@example.com", "password": "correct horse", "name": "Ada" });
    let (status, body) = anon
        .send(
            Method::POST,
            "/users/register",
            Bytes::from(user.to_string()),
        )
        .await?;
    if status != 201 {
        return Err(format!(
            "register: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let login = json!({ "email": "ada@example.com", "password": "correct horse" });
    let (status, body) = anon
        .send(Method::POST, "/users/login", Bytes::from(login.to_string()))
        .await?;
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("login: {status} {}", String::from_utf8_lossy(&body)))?;
    let mut conns = Vec::new();
    for _ in 0..settings.connections {
        conns.push(Conn::open(port, Some(token.clone())).await?);
    }
    for n in 0..settings.seed {
        let (status, body) = conns[0]
            .send(Method::POST, "/data/Contact", contact(n))
            .await?;
        if status != 201 {
            return Err(format!("seed: {status} {}", String::from_utf8_lossy(&body)));
        }
    }

    // Request numbers go on across workloads, so every created contact is a new one.
    let first = AtomicU64::new(1_000_000);
    let mut results = Vec::new();
    for &workload in workloads {
        if warmup > 0 {
            let warm = drive(&mut conns, workload, warmup, seconds, settings.seed, &first).await;
            if warm.errors > 0 {
                return Err(format!("{}: errors in the warm-up", workload.name()));
            }
        }
        let cpu = server.cpu();
        let mut measured = drive(
            &mut conns,
            workload,
            requests,
            seconds,
            settings.seed,
            &first,
        )
        .await;
        measured.server_cpu = server.cpu().saturating_sub(cpu);
        results.push((workload, measured));
    }
    drop(conns);
    drop(anon);
    server.stop()?;
    if db.is_some() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(results)
}

/// The instructions the service ran, from a callgrind output file (`totals:` or `summary:`).
fn callgrind_total(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    line("totals:")
        .or_else(|| line("summary:"))
        .ok_or_else(|| format!("{}: no totals", path.display()))
}

/// `--callgrind K`: per workload and mode, run the service under callgrind twice, sending K and
/// then 2K requests after the same set-up and warm-up, and print (Ir(2K) - Ir(K)) / K: the
/// instructions of one request in the service, every thread counted, start-up, set-up, warm-up
/// and shutdown cancelled out. Unlike times, these do not move with the load of the machine.
async fn instructions(settings: &Settings, workloads: &[Workload], k: u64) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("contacts-e2e-cg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "contacts under callgrind: instructions per request in the service, (Ir(2K) - Ir(K)) / K, \
         K = {k}, after {} warm-up requests; {} connections; SQLite {}",
        settings.warmup,
        settings.connections,
        if settings.file_db {
            "in a temporary file (WAL)"
        } else {
            "in memory"
        },
    );
    println!();
    println!("| workload | hooks on | hooks off | on - off | on / off |");
    println!("|---|---:|---:|---:|---:|");
    for &workload in workloads {
        let mut per_request = [0.0f64; 2];
        for (mode, hooks) in [true, false].into_iter().enumerate() {
            let mut totals = [0u64; 2];
            for (i, n) in [k, 2 * k].into_iter().enumerate() {
                let out = dir.join(format!("{}-{mode}-{n}.out", workload.name()));
                let results = run_mode(
                    settings,
                    hooks,
                    &[workload],
                    (settings.warmup, n, 1e6),
                    Some(&out),
                )
                .await?;
                let m = &results[0].1;
                if m.errors > 0 || m.requests != n {
                    return Err(format!(
                        "{}: {} of {n} requests answered as expected",
                        workload.name(),
                        m.requests
                    ));
                }
                totals[i] = callgrind_total(&out)?;
            }
            per_request[mode] = totals[1].saturating_sub(totals[0]) as f64 / k as f64;
        }
        let [on, off] = per_request;
        println!(
            "| `{}` | {on:.0} | {off:.0} | {:.0} | {:.2}× |",
            workload.describe(),
            on - off,
            on / off
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The median of `values` and their range, as `median (min–max)`, with `digits` decimals.
fn spread(mut values: Vec<f64>, digits: usize) -> (f64, String) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let text = format!(
        "{median:.digits$} ({:.digits$}–{:.digits$})",
        values[0],
        values[n - 1]
    );
    (median, text)
}

/// Per workload and mode, the median over the rounds and the range; then on / off of the medians.
fn summary(all: &[Vec<Vec<(Workload, Measured)>>; 2]) {
    println!();
    println!("all rounds: median (min–max)");
    println!();
    println!("| workload | hooks | req/s | p50 ms | p99 ms | service CPU µs/req | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for i in 0..all[0][0].len() {
        let mut medians = Vec::new();
        for (mode, runs) in all.iter().enumerate() {
            let of = |f: &dyn Fn(&Measured) -> f64| -> Vec<f64> {
                runs.iter().map(|r| f(&r[i].1)).collect()
            };
            let rps = spread(of(&Measured::per_second), 0);
            let p50 = spread(of(&|m| m.percentile(50.0).as_secs_f64() * 1e3), 2);
            let p99 = spread(of(&|m| m.percentile(99.0).as_secs_f64() * 1e3), 2);
            let cpu = spread(of(&|m| m.cpu_per_request().as_secs_f64() * 1e6), 0);
            let errors: u64 = runs.iter().map(|r| r[i].1.errors).sum();
            println!(
                "| `{}` | {} | {} | {} | {} | {} | {errors} |",
                runs[0][i].0.describe(),
                if mode == 0 { "on" } else { "off" },
                rps.1,
                p50.1,
                p99.1,
                cpu.1,
            );
            medians.push([rps.0, p50.0, p99.0, cpu.0]);
        }
        let [on, off] = [medians[0], medians[1]];
        println!(
            "| | on / off | {:.2}× | {:.2}× | {:.2}× | {:.2}× | |",
            on[0] / off[0],
            on[1] / off[1],
            on[2] / off[2],
            on[3] / off[3],
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() -> ExitCode {
    let settings = match settings() {
        Ok(Some(s)) => s,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("e2e_load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("e2e_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let workloads: Vec<Workload> = WORKLOADS
        .into_iter()
        .filter(|w| {
            settings
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == w.name()))
        })
        .collect();
    if let Some(k) = settings.callgrind {
        return match runtime.block_on(instructions(&settings, &workloads, k)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("e2e_load: {e}");
                ExitCode::FAILURE
            }
        };
    }
    println!(
        "contacts over 127.0.0.1: {} connections, up to {} requests or {} s per workload and mode \
         after {} warm-up requests; {} seeded contacts; SQLite {}; {} round(s)",
        settings.connections,
        settings.requests,
        settings.seconds,
        settings.warmup,
        settings.seed,
        if settings.file_db {
            "in a temporary file (WAL)"
        } else {
            "in memory"
        },
        settings.rounds,
    );
    let mut failed = false;
    // Every round's figures, by mode (on first) and workload.
    let mut all: [Vec<Vec<(Workload, Measured)>>; 2] = [Vec::new(), Vec::new()];
    for round in 0..settings.rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for hooks in order {
            let run = run_mode(
                &settings,
                hooks,
                &workloads,
                (settings.warmup, settings.requests, settings.seconds),
                None,
            );
            match runtime.block_on(run) {
                Ok(results) => all[usize::from(!hooks)].push(results),
                Err(e) => {
                    eprintln!("e2e_load: hooks {}: {e}", if hooks { "on" } else { "off" });
                    return ExitCode::FAILURE;
                }
            }
        }
        println!();
        println!(
            "round {} (order: {})",
            round + 1,
            if order[0] { "on, off" } else { "off, on" }
        );
        println!();
        println!(
            "| workload | hooks | requests | req/s | p50 ms | p99 ms | service CPU µs/req | errors |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for i in 0..all[0][round].len() {
            for (mode, runs) in all.iter().enumerate() {
                let (workload, m) = &runs[round][i];
                failed |= m.errors > 0;
                println!(
                    "| `{}` | {} | {} | {:.0} | {} | {} | {:.0} | {} |",
                    workload.describe(),
                    if mode == 0 { "on" } else { "off" },
                    m.requests,
                    m.per_second(),
                    ms(m.percentile(50.0)),
                    ms(m.percentile(99.0)),
                    m.cpu_per_request().as_secs_f64() * 1e6,
                    m.errors,
                );
            }
        }
    }
    if settings.rounds > 1 {
        summary(&all);
    }
    if failed {
        eprintln!("e2e_load: some requests failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
