//! Real SIP peers for integration tests: SIPp scenarios and a Kamailio lab.
//!
//! Include it with `#[path = "support/peers.rs"] mod peers;`. Every process
//! starts with its standard output and error redirected to a log file in a
//! temporary directory. A [`Peer`] is stopped by its pid and reaped when it
//! is dropped, and its log is printed when the test is panicking.
//!
//! [`require_peer`] decides what a missing binary means: under `CI=true`
//! the test fails, elsewhere it prints a skip line and the test returns.
//! `scripts/ensure-peers.sh` installs the binaries from Debian.
//!
//! Everything binds to 127.0.0.1. Ports come from [`free_port`], which
//! checks that the port is free for both UDP and TCP.

#![allow(dead_code)]

use std::fs;
use std::io::Read as _;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where the Debian kamailio package keeps the db_text table definitions.
const DBTEXT_TABLES: &str = "/usr/share/kamailio/dbtext/kamailio";

/// The db_text tables the lab configuration reads.
const LAB_TABLES: &[&str] = &["version", "presentity", "active_watchers", "watchers", "pua", "xcap"];

/// Maximum wait for Kamailio to reply 200 to its first OPTIONS.
const KAMAILIO_READY: Duration = Duration::from_secs(10);

/// Maximum wait for a stopped process to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Log bytes printed when a test fails.
const LOG_TAIL_BYTES: usize = 8_000;

/// Returns the path of `binary` from `PATH` (or `/usr/sbin`, where Debian
/// puts kamailio). When it is missing, panics under `CI=true`; otherwise
/// prints a skip line and returns `None`, so the caller returns early.
pub fn require_peer(binary: &str) -> Option<PathBuf> {
    if let Some(path) = find_binary(binary) {
        return Some(path);
    }

    let hint = "run scripts/ensure-peers.sh to install sip-tester, kamailio and baresip-core";
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{binary} is not installed and CI=true requires it; {hint}");
    }
    eprintln!("\n!!! SKIPPED: {binary} is not installed; {hint} !!!\n");
    None
}

fn find_binary(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// Returns a port on 127.0.0.1 that is free for both UDP and TCP at the
/// time of the call. Another process may still take it before it is used.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("binding UDP 127.0.0.1:0 must be permitted");
        let port = udp.local_addr().expect("a bound socket has an address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("found no port on 127.0.0.1 free for both UDP and TCP in 100 tries");
}

/// Returns the path of a scenario file under `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// Returns the path of a Kamailio configuration under `lab/kamailio/`.
pub fn lab_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/kamailio").join(name)
}

/// SIP transport of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Returns the value of SIPp's `-t` option.
    pub fn sipp_mode(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }
}

// === impl Peer ===

/// A running peer process. Dropping it stops the process by its pid.
pub struct Peer {
    /// Short name for messages, such as "kamailio" or "sipp caller".
    name: String,
    child: Child,
    /// Standard output and error of the process.
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Peer {
    /// Starts `command` with its output in `log_path`.
    pub fn spawn(name: &str, mut command: Command, log_path: PathBuf) -> Peer {
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|error| panic!("cannot create log file {}: {error}", log_path.display()));
        let log_copy = log.try_clone().expect("a log file handle can be cloned");
        command.stdin(Stdio::null()).stdout(log).stderr(log_copy);

        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name} ({command:?}): {error}"));
        Peer { name: name.to_string(), child, log_path, exit: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the whole log of the process so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits up to `limit` for the process to exit; returns its status, or
    /// `None` when it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }

        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                return self.exit;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the process to exit and panics, with its
    /// log, unless it exited with status 0.
    pub fn expect_success(&mut self, limit: Duration) {
        match self.wait_exit(limit) {
            Some(status) if status.success() => {}
            Some(status) => panic!("{} (pid {}) failed with {status}", self.name, self.pid()),
            None => panic!("{} (pid {}) still runs after {limit:?}", self.name, self.pid()),
        }
    }

    /// Stops the process: SIGTERM by pid, so Kamailio's main process also
    /// stops its children, then SIGKILL after [`STOP_GRACE`]. Reaps it.
    pub fn stop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            self.exit = Some(status);
            return;
        }

        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        if self.wait_exit(STOP_GRACE).is_none() {
            // std's Child::kill sends SIGKILL to this child's pid.
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    fn print_log_tail(&self) {
        let text = self.log_text();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        let start = (start..text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        eprintln!(
            "--- last {} bytes of {} (pid {}) log {} ---",
            text.len() - start,
            self.name,
            self.pid(),
            self.log_path.display()
        );
        eprintln!("{}", &text[start..]);
        eprintln!("--- end of {} log ---", self.name);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.print_log_tail();
        }
    }
}

// === impl Sipp ===

/// Builds SIPp runs that share a temporary directory for logs and traces.
pub struct Sipp {
    binary: PathBuf,
    dir: TempDir,
}

impl Sipp {
    /// `None` when SIPp is missing outside CI (see [`require_peer`]).
    pub fn new() -> Option<Sipp> {
        let binary = require_peer("sipp")?;
        let dir = tempfile::Builder::new().prefix("floorwatch-sipp-").tempdir().expect("a temp dir can be created");
        Some(Sipp { binary, dir })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts SIPp with scenario `file` from `tests/sipp/`, bound to
    /// 127.0.0.1:`port`, for one call. `remote` is the peer to send to
    /// (`None` for a scenario that starts with a receive). `extra` contains
    /// further arguments such as `-s 1001` or `-key expires 60`.
    ///
    /// Each run stops by itself after `-timeout 60s` and reports that as
    /// failure, writes unexpected messages to `<name>.errors.log` and the
    /// full message trace to `<name>.messages.log`.
    pub fn start(
        &self,
        name: &str,
        file: &str,
        port: u16,
        transport: Transport,
        remote: Option<&str>,
        extra: &[&str],
    ) -> Peer {
        let errors = self.dir.path().join(format!("{name}.errors.log"));
        let messages = self.dir.path().join(format!("{name}.messages.log"));

        let mut command = Command::new(&self.binary);
        if let Some(remote) = remote {
            command.arg(remote);
        }
        command
            .arg("-sf")
            .arg(scenario(file))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", transport.sipp_mode()])
            .args(["-m", "1", "-nostdin", "-nd", "-timeout", "60s", "-timeout_error"])
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&messages)
            .args(extra)
            .current_dir(self.dir.path());

        Peer::spawn(&format!("sipp {name}"), command, self.dir.path().join(format!("{name}.log")))
    }

    /// Registers `user` (as `sip:USER@example.com`) at `lab` from
    /// 127.0.0.1:`port` for `expires` seconds, and waits up to 10 s for the
    /// 200.
    pub fn register(&self, lab: &Kamailio, user: &str, port: u16, expires: u32) {
        let expires = expires.to_string();
        let args = ["-s", user, "-key", "expires", expires.as_str()];
        let mut run =
            self.start(&format!("register-{user}"), "register.xml", port, Transport::Udp, Some(&lab.address()), &args);
        run.expect_success(Duration::from_secs(10));
    }

    /// Reads the unexpected messages and errors SIPp logged for run
    /// `name`, or returns an empty string when it logged none.
    pub fn errors(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("{name}.errors.log"))).unwrap_or_default()
    }

    /// Reads the message trace of run `name`.
    pub fn messages(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(format!("{name}.messages.log"))).unwrap_or_default()
    }
}

// === impl Kamailio ===

/// A Kamailio lab on 127.0.0.1:`port`, UDP and TCP, with its db_text
/// tables and working directory in a temporary directory.
pub struct Kamailio {
    pub port: u16,
    /// Declared before `dir`, so the process stops before its files go.
    peer: Peer,
    dir: TempDir,
}

impl Kamailio {
    /// Starts `lab/kamailio/<config>` on a free port and waits until it
    /// replies 200 to OPTIONS. `None` when Kamailio is missing outside CI.
    pub fn start(config: &str) -> Option<Kamailio> {
        let binary = require_peer("kamailio")?;
        let dir = tempfile::Builder::new().prefix("floorwatch-kamailio-").tempdir().expect("a temp dir can be created");

        let db = dir.path().join("db");
        fs::create_dir(&db).expect("the db_text directory can be created");
        for table in LAB_TABLES {
            let source = Path::new(DBTEXT_TABLES).join(table);
            fs::copy(&source, db.join(table))
                .unwrap_or_else(|error| panic!("cannot copy db_text table {}: {error}", source.display()));
        }

        let port = free_port();
        let mut command = Command::new(binary);
        command
            .args(["-DD", "-E", "-f"])
            .arg(lab_config(config))
            .arg("-w")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .args(["-A", &format!("LAB_PORT={port}")])
            .args(["-A", &format!("LAB_URI=\"sip:127.0.0.1:{port}\"")])
            .args(["-A", &format!("LAB_DB=\"text://{}\"", db.display())]);
        let peer = Peer::spawn("kamailio", command, dir.path().join("kamailio.log"));

        let kamailio = Kamailio { port, peer, dir };
        kamailio.wait_ready();
        Some(kamailio)
    }

    /// `127.0.0.1:PORT`, the remote address for SIPp.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.peer.log_text()
    }

    /// Sends OPTIONS over UDP every 200 ms until a 200 comes back.
    fn wait_ready(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding UDP 127.0.0.1:0 must be permitted");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("a read timeout can be set");
        let local = socket.local_addr().expect("a bound socket has an address");

        let deadline = Instant::now() + KAMAILIO_READY;
        let mut attempt = 0;
        while Instant::now() < deadline {
            attempt += 1;
            let options = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{attempt}\r\n\
                 From: <sip:probe@example.com>;tag=ready\r\n\
                 To: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: ready-{attempt}@127.0.0.1\r\n\
                 CSeq: {attempt} OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.port
            );
            let _ = socket.send_to(options.as_bytes(), ("127.0.0.1", self.port));

            let mut buffer = [0_u8; 2048];
            if let Ok((length, _)) = socket.recv_from(&mut buffer)
                && buffer[..length].starts_with(b"SIP/2.0 200")
            {
                return;
            }
        }
        panic!("kamailio on 127.0.0.1:{} did not answer OPTIONS within {KAMAILIO_READY:?}", self.port);
    }
}
