//! `floorwatch-sipload` against small UDP peers inside the test: a
//! responder that replies 200 to every request (stateless mode), and a
//! subscriber that sends one SUBSCRIBE and replies 200 to every NOTIFY
//! (notifier mode). Each run is short, and the counts in its JSON report must add up.

use std::io::Read as _;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Maximum time a generator run may take: 1 s of sending, the grace time and start-up.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Kills the generator by its pid when the test ends, also on failure.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP peer on 127.0.0.1:0 served by a thread until dropped.
struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// NOTIFYs received.
    notifies: Arc<AtomicU64>,
    /// CSeq numbers out of order within the peer's dialog(s).
    cseq_regressions: Arc<AtomicU64>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a peer that replies 200 to each request and, when `subscribe_to`
/// is set, first sends a SUBSCRIBE for the dialog package there.
fn start_peer(subscribe_to: Option<SocketAddr>) -> Peer {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP port on 127.0.0.1 must be free");
    socket.set_read_timeout(Some(Duration::from_millis(50))).expect("a read timeout must be settable");
    let addr = socket.local_addr().expect("a bound socket has an address");
    let stop = Arc::new(AtomicBool::new(false));
    let notifies = Arc::new(AtomicU64::new(0));
    let cseq_regressions = Arc::new(AtomicU64::new(0));

    if let Some(notifier) = subscribe_to {
        let subscribe = format!(
            "SUBSCRIBE sip:1017@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP {addr};branch=z9hG4bK-smoke-1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:floorwatch@example.com>;tag=smoke-w\r\n\
             To: <sip:1017@example.com>\r\n\
             Call-ID: smoke-subscribe-1@192.0.2.1\r\n\
             CSeq: 1 SUBSCRIBE\r\n\
             Contact: <sip:floorwatch@{addr}>\r\n\
             Event: dialog\r\n\
             Accept: application/dialog-info+xml\r\n\
             Expires: 600\r\n\
             Content-Length: 0\r\n\r\n"
        );
        socket.send_to(subscribe.as_bytes(), notifier).expect("the SUBSCRIBE must be sendable");
    }

    let thread = {
        let stop = Arc::clone(&stop);
        let notifies = Arc::clone(&notifies);
        let cseq_regressions = Arc::clone(&cseq_regressions);
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 65_535];
            let mut last_cseq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok((length, source)) = socket.recv_from(&mut buffer) else { continue };
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if text.starts_with("SIP/2.0 ") {
                    continue;
                }
                if text.starts_with("NOTIFY ") {
                    notifies.fetch_add(1, Ordering::Relaxed);
                    let cseq = header(&text, "CSeq").and_then(|v| v.split_whitespace().next()?.parse().ok());
                    match cseq {
                        Some(cseq) if cseq > last_cseq => last_cseq = cseq,
                        _ => {
                            cseq_regressions.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let _ = socket.send_to(ok_for(&text).as_bytes(), source);
            }
        })
    };
    Peer { addr, stop, thread: Some(thread), notifies, cseq_regressions }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.split("\r\n").find_map(|line| {
        let (n, value) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Builds a 200 for `request` that copies Via, From, To, Call-ID and CSeq.
fn ok_for(request: &str) -> String {
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for line in request.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
            response.push_str(line);
            response.push_str("\r\n");
        }
    }
    response.push_str("Content-Length: 0\r\n\r\n");
    response
}

/// Runs the generator with `args` and returns its JSON reports, one per step.
fn run_generator(args: &[&str]) -> Vec<Value> {
    let child = Command::new(env!("CARGO_BIN_EXE_floorwatch-sipload"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the floorwatch-sipload binary must start");
    let mut guard = ChildGuard(child);

    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("the generator's status must be readable") {
            break status;
        }
        assert!(Instant::now() < deadline, "floorwatch-sipload did not stop within {RUN_LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    };

    let mut stdout = String::new();
    let mut stderr = String::new();
    guard.0.stdout.take().expect("stdout is piped").read_to_string(&mut stdout).expect("stdout must be readable");
    guard.0.stderr.take().expect("stderr is piped").read_to_string(&mut stderr).expect("stderr must be readable");
    assert!(status.success(), "floorwatch-sipload failed: {status}; stderr: {stderr}");

    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("report line {line:?} is not JSON: {e}")))
        .collect()
}

fn count(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap_or_else(|| panic!("report must have a number {key}: {report}"))
}

#[test]
fn stateless_counts_every_answer() {
    let responder = start_peer(None);
    let target = responder.addr.to_string();

    let reports = run_generator(&[
        "stateless",
        "--target",
        &target,
        "--rate",
        "500",
        "--seconds",
        "1",
        "--grace-ms",
        "1000",
        "--dialogs",
        "10",
        "--json",
    ]);

    assert_eq!(reports.len(), 1, "one rate gives one report: {reports:?}");
    let report = &reports[0];
    assert_eq!(count(report, "offered"), 500, "500/s for 1 s offers 500 NOTIFYs: {report}");
    assert_eq!(count(report, "answered"), count(report, "offered"), "every NOTIFY is answered: {report}");
    assert_eq!(count(report, "lost"), 0, "nothing is lost on loopback: {report}");
    assert_eq!(count(report, "rejected"), 0, "the responder sends only 200: {report}");
    assert_eq!(count(report, "unmatched_responses"), 0, "every 200 matches a NOTIFY: {report}");
    assert_eq!(responder.notifies.load(Ordering::Relaxed), 500, "the responder received each NOTIFY once");
    assert!(report["latency_p99_us"].as_u64().is_some(), "answered NOTIFYs give a latency: {report}");
}

#[test]
fn stateless_counts_silence_as_lost() {
    // A bound socket that never replies.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("a UDP port on 127.0.0.1 must be free");
    let target = silent.local_addr().expect("a bound socket has an address").to_string();

    let reports = run_generator(&[
        "stateless",
        "--target",
        &target,
        "--rate",
        "100",
        "--seconds",
        "1",
        "--grace-ms",
        "200",
        "--json",
    ]);

    let report = &reports[0];
    assert_eq!(count(report, "offered"), 100, "100/s for 1 s offers 100 NOTIFYs: {report}");
    assert_eq!(count(report, "answered"), 0, "nothing answers: {report}");
    assert_eq!(count(report, "lost"), 100, "every unanswered NOTIFY is lost: {report}");
}

#[test]
fn notifier_serves_subscriber() {
    // The generator binds a port it picks itself, so reserve one first.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a UDP port on 127.0.0.1 must be free")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let notifier: SocketAddr = bind.parse().expect("a socket address");

    let generator = std::thread::spawn(move || {
        run_generator(&[
            "notifier",
            "--bind",
            &bind,
            "--subscriptions",
            "1",
            "--wait-seconds",
            "10",
            "--rate",
            "200,400",
            "--seconds",
            "1",
            "--grace-ms",
            "1000",
            "--pause-ms",
            "100",
            "--json",
        ])
    });
    // Give the generator time to bind before the SUBSCRIBE goes out.
    std::thread::sleep(Duration::from_millis(500));
    let subscriber = start_peer(Some(notifier));
    let reports = generator.join().expect("the generator thread must not panic");

    assert_eq!(reports.len(), 2, "two rates give two reports: {reports:?}");
    assert_eq!(count(&reports[0], "offered"), 200, "first step offers 200: {}", reports[0]);
    assert_eq!(count(&reports[1], "offered"), 400, "second step offers 400: {}", reports[1]);
    for report in &reports {
        assert_eq!(count(report, "dialogs"), 1, "one SUBSCRIBE makes one dialog: {report}");
        assert_eq!(count(report, "answered"), count(report, "offered"), "every NOTIFY is answered: {report}");
        assert_eq!(count(report, "lost"), 0, "nothing is lost on loopback: {report}");
    }
    // The initial NOTIFY after the 200 comes on top of the load.
    assert_eq!(subscriber.notifies.load(Ordering::Relaxed), 601, "the subscriber received 600 + 1 NOTIFYs");
    assert_eq!(subscriber.cseq_regressions.load(Ordering::Relaxed), 0, "CSeq rises with every NOTIFY");
}
