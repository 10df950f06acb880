//! floorwatch-sipload: the SIP NOTIFY load generator behind BENCHMARKS.md.
//!
//! Modes:
//! - `notifier` binds a UDP address and acts as the presence server that
//!   floorwatch's outbound proxy points at. It responds to each `dialog`
//!   SUBSCRIBE with 200 (To tag, Contact, Expires) and sends the initial
//!   NOTIFY in that dialog to the SUBSCRIBE's Contact. Once `--subscriptions`
//!   dialogs exist, or after `--wait-seconds`, it offers NOTIFYs at the
//!   target rate, round robin over the dialogs. Refresh SUBSCRIBEs get 200
//!   and a NOTIFY, and an unsubscribe (Expires: 0) ends the dialog.
//! - `stateless` offers the same NOTIFYs to `--target` in dialogs that it
//!   makes up, without any SUBSCRIBE. It is meant for a server that answers
//!   every request with 200 statelessly, such as Kamailio with
//!   `sl_send_reply`.
//!
//! Every load NOTIFY carries a dialog-info body of about 1 KB. Its `version`
//! rises per dialog and the call in it alternates between confirmed and
//! terminated, so each NOTIFY is a real state change. The CSeq rises per
//! dialog. A dedicated thread receives the responses and matches each one to
//! its NOTIFY by Call-ID and CSeq. The main thread paces the sends by time
//! slices, sending the NOTIFYs due in each slice back to back.
//!
//! NOTIFYs are not retransmitted, so a NOTIFY or response dropped anywhere is
//! counted as lost: no final response within `--grace-ms` after the last send.
//! Each `--rate` value is one step, and each step ends after its duration plus
//! the grace time, so every run stops by itself. Each step prints one
//! `result key=value …` line, or one JSON object per line with `--json`.
//!
//! With `--server-pid` or `--server-pid-file`, each step also reads the
//! server's CPU time (utime + stime from /proc/PID/stat, summed over every
//! pid given) just before the first NOTIFY and after the last response or
//! the end of the grace time.
//!
//! It sends only to the target or to the subscribers that contact it, and is
//! meant for 127.0.0.1.

#[path = "shared/cpu.rs"]
mod cpu;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

/// Largest number of NOTIFYs one step may offer (rate × seconds). Every
/// offered NOTIFY keeps a latency sample, so this bounds memory to about
/// 100 MB.
const MAX_NOTIFIES_PER_STEP: u64 = 20_000_000;

/// Largest datagram the receiver reads. UDP cannot carry more.
const MAX_DATAGRAM: usize = 65_535;

/// How often the receiver thread checks whether it should stop.
const RECEIVE_POLL: Duration = Duration::from_millis(50);

/// How often the notifier checks whether enough subscriptions exist.
const SUBSCRIBE_POLL: Duration = Duration::from_millis(50);

/// Maximum wait for the responses to setup NOTIFYs (initial, after refresh)
/// before a step starts.
const SETUP_SETTLE: Duration = Duration::from_secs(2);

/// Expires granted when a SUBSCRIBE has no Expires header. RFC 4235
/// section 3.2 makes 3600 s the default for the dialog package.
const DEFAULT_EXPIRES_SECS: u64 = 3600;

/// The only event package this notifier serves.
const DIALOG_PACKAGE: &str = "dialog";

/// Media type of a dialog-info body (RFC 4235).
const DIALOG_INFO_TYPE: &str = "application/dialog-info+xml";

/// Magic cookie that starts every RFC 3261 branch parameter.
const BRANCH_COOKIE: &str = "z9hG4bK";

#[derive(Parser)]
#[command(name = "floorwatch-sipload", about = "SIP NOTIFY load generator for floorwatch and Kamailio benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Act as the presence server: accept SUBSCRIBEs, then offer NOTIFYs in their dialogs.
    Notifier(NotifierArgs),
    /// Offer NOTIFYs to a target in made-up dialogs, without SUBSCRIBE.
    Stateless(StatelessArgs),
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// NOTIFYs per second. A comma-separated list runs one step per rate,
    /// in order, in the same dialogs.
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    rate: Vec<u64>,
    /// Length of each step's sending phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Milliseconds to wait for responses after the last NOTIFY of a step.
    /// A NOTIFY without a final response by then is lost.
    #[arg(long, default_value_t = 2_000)]
    grace_ms: u64,
    /// Length of a pacing slice in microseconds. Each slice sends the
    /// NOTIFYs that are due by its start.
    #[arg(long, default_value_t = 1_000)]
    slice_us: u64,
    /// Milliseconds to pause between steps.
    #[arg(long, default_value_t = 1_000)]
    pause_ms: u64,
    /// Stop stepping after the first step whose loss, in percent of the
    /// offered NOTIFYs without a 2xx response, exceeds this.
    #[arg(long)]
    stop_loss_percent: Option<f64>,
    /// Process id of the server, to read its CPU time from /proc. Repeat it
    /// for a server of several processes; the times are summed.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// File with more server process ids, separated by white space, read
    /// at the start of each step. A script that starts the server after the
    /// notifier (which must listen before the server subscribes) writes it.
    #[arg(long)]
    server_pid_file: Option<PathBuf>,
    /// Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clock_ticks: u64,
    /// Print one JSON object per step instead of a `result` line.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct NotifierArgs {
    /// UDP address to bind, the address floorwatch's outbound proxy names.
    /// Port 0 picks a free port, which is printed on stderr.
    #[arg(long, default_value = "127.0.0.1:5060")]
    bind: SocketAddr,
    /// Subscriptions to wait for before the first step.
    #[arg(long, default_value_t = 100)]
    subscriptions: usize,
    /// Seconds to wait for `--subscriptions`; the load then starts with the
    /// dialogs that exist, or the run fails when there are none.
    #[arg(long, default_value_t = 60)]
    wait_seconds: u64,
    /// Largest Expires granted to a SUBSCRIBE, in seconds.
    #[arg(long, default_value_t = DEFAULT_EXPIRES_SECS)]
    max_expires: u64,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Clone)]
struct StatelessArgs {
    /// UDP address of the server that responds to the NOTIFYs.
    #[arg(long)]
    target: SocketAddr,
    /// UDP address to send from. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Made-up dialogs the NOTIFYs are spread over, one per agent AOR.
    #[arg(long, default_value_t = 100)]
    dialogs: usize,
    #[command(flatten)]
    load: LoadArgs,
}

/// Failure of a run, printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("cannot bind UDP {addr}: {source}; choose a free address with --bind")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot set up the UDP socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot start the receiver thread: {0}")]
    Thread(std::io::Error),
    #[error("--{name} {value} is invalid: {reason}")]
    Argument { name: &'static str, value: String, reason: &'static str },
    #[error(
        "step at {rate}/s for {seconds} s would offer {notifies} NOTIFYs, more than {MAX_NOTIFIES_PER_STEP}; lower --rate or --seconds"
    )]
    TooManyNotifies { rate: u64, seconds: f64, notifies: u64 },
    #[error(
        "no SUBSCRIBE arrived on {addr} within {seconds} s; check that floorwatch's outbound_proxy names this address"
    )]
    NoSubscriptions { addr: SocketAddr, seconds: u64 },
    #[error("cannot read --server-pid-file {path}: {reason}")]
    PidFile { path: PathBuf, reason: String },
    #[error("every subscription ended during the step at {rate}/s; nothing left to send NOTIFYs in")]
    AllTerminated { rate: u64 },
}

// === Dialogs and the shared table ===

/// One subscription dialog, seen from the notifier's side.
struct Dialog {
    call_id: String,
    /// Our tag: the To tag of the 200 and the From tag of each NOTIFY.
    local_tag: String,
    /// The subscriber's From tag, the To tag of each NOTIFY.
    remote_tag: String,
    /// The watched AOR: the SUBSCRIBE's To URI, the NOTIFY's From URI and
    /// the dialog-info `entity`.
    local_uri: String,
    /// The subscriber's From URI, the NOTIFY's To URI.
    remote_uri: String,
    /// The subscriber's Contact URI, the NOTIFY's Request-URI.
    remote_target: String,
    /// Destination address of the NOTIFYs.
    destination: SocketAddr,
    /// The SUBSCRIBE's Event header value, repeated in each NOTIFY.
    event: String,
    /// CSeq of the last NOTIFY sent in this dialog.
    cseq: u32,
    /// dialog-info `version` of the last NOTIFY sent in this dialog.
    version: u32,
    /// Whether the body of the last NOTIFY had the call confirmed.
    on_call: bool,
    /// Calls confirmed so far; each gets its own dialog id in the body.
    calls: u32,
    expires_at: Instant,
    terminated: bool,
}

/// Purpose of a NOTIFY. Only `Load` NOTIFYs count in the results.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NotifyKind {
    /// Flips the call between confirmed and terminated.
    Load,
    /// Repeats the current state: after a new SUBSCRIBE or a refresh.
    Setup,
    /// Ends the subscription (Subscription-State: terminated).
    Final,
}

/// A NOTIFY sent and not yet answered with a final response.
struct Pending {
    sent_at: Instant,
    kind: NotifyKind,
}

/// State shared by the sending and receiving threads.
#[derive(Default)]
struct Table {
    dialogs: Vec<Dialog>,
    by_call_id: HashMap<String, usize>,
    /// Keyed by (dialog index, CSeq).
    pending: HashMap<(usize, u32), Pending>,
    /// Load NOTIFYs in `pending`.
    pending_load: usize,
}

/// Receiver counters for one step.
#[derive(Default)]
struct StepCounts {
    answered: u64,
    /// Non-2xx final responses to load NOTIFYs, by status code.
    rejected: BTreeMap<u16, u64>,
    /// Microseconds from send to final response, one per load NOTIFY answered.
    latencies_us: Vec<u32>,
}

/// Receiver counters for the whole run.
#[derive(Default)]
struct RunCounts {
    step: StepCounts,
    /// Responses that match no pending NOTIFY: retransmitted or late
    /// responses, or responses to something this tool did not send.
    unmatched_responses: u64,
    /// Datagrams that are not SIP messages this tool can read.
    unparsable: u64,
}

/// Everything the two threads share.
struct Shared {
    socket: UdpSocket,
    local_addr: SocketAddr,
    /// Makes branches, tags and made-up Call-IDs unique to this run.
    run_id: String,
    max_expires: u64,
    table: Mutex<Table>,
    counts: Mutex<RunCounts>,
    stop: AtomicBool,
}

// === Entry ===

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Notifier(args) => run_notifier(args),
        Command::Stateless(args) => run_stateless(args),
    };
    if let Err(error) = outcome {
        eprintln!("floorwatch-sipload: {error}");
        std::process::exit(1);
    }
}

fn run_notifier(args: NotifierArgs) -> Result<(), LoadError> {
    validate(&args.load)?;
    let shared = bind(args.bind, args.max_expires)?;
    eprintln!("floorwatch-sipload notifier listening on udp:{}", shared.local_addr);
    let receiver = spawn_receiver(&shared, true)?;

    let outcome =
        wait_for_subscriptions(&shared, &args).and_then(|count| run_steps(&shared, &args.load, "notifier", count));
    stop_receiver(&shared, receiver);
    outcome
}

fn run_stateless(args: StatelessArgs) -> Result<(), LoadError> {
    validate(&args.load)?;
    if args.dialogs == 0 {
        return Err(LoadError::Argument {
            name: "dialogs",
            value: "0".into(),
            reason: "at least one dialog is needed",
        });
    }
    let shared = bind(args.bind, DEFAULT_EXPIRES_SECS)?;
    {
        let mut table = lock(&shared.table);
        for index in 0..args.dialogs {
            let dialog = made_up_dialog(&shared, index, args.target);
            table.by_call_id.insert(dialog.call_id.clone(), index);
            table.dialogs.push(dialog);
        }
    }
    let receiver = spawn_receiver(&shared, false)?;

    let outcome = run_steps(&shared, &args.load, "stateless", args.dialogs);
    stop_receiver(&shared, receiver);
    outcome
}

fn validate(load: &LoadArgs) -> Result<(), LoadError> {
    if !(load.seconds > 0.0 && load.seconds <= 3_600.0) {
        return Err(LoadError::Argument {
            name: "seconds",
            value: load.seconds.to_string(),
            reason: "must be more than 0 and at most 3600",
        });
    }
    if load.slice_us == 0 {
        return Err(LoadError::Argument { name: "slice-us", value: "0".into(), reason: "must be at least 1" });
    }
    for &rate in &load.rate {
        if rate == 0 {
            return Err(LoadError::Argument { name: "rate", value: "0".into(), reason: "must be at least 1" });
        }
        let notifies = (rate as f64 * load.seconds).ceil() as u64;
        if notifies > MAX_NOTIFIES_PER_STEP {
            return Err(LoadError::TooManyNotifies { rate, seconds: load.seconds, notifies });
        }
    }
    Ok(())
}

fn bind(addr: SocketAddr, max_expires: u64) -> Result<Arc<Shared>, LoadError> {
    let socket = UdpSocket::bind(addr).map_err(|source| LoadError::Bind { addr, source })?;
    socket.set_read_timeout(Some(RECEIVE_POLL)).map_err(LoadError::Socket)?;
    let local_addr = socket.local_addr().map_err(LoadError::Socket)?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    Ok(Arc::new(Shared {
        socket,
        local_addr,
        run_id: format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff),
        max_expires,
        table: Mutex::new(Table::default()),
        counts: Mutex::new(RunCounts::default()),
        stop: AtomicBool::new(false),
    }))
}

/// Locks a mutex, recovering the data if the other thread panicked: the
/// counters stay meaningful and the run can still report.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn made_up_dialog(shared: &Shared, index: usize, target: SocketAddr) -> Dialog {
    let user = 1000 + index;
    Dialog {
        call_id: format!("sipload-{}-{index}@{}", shared.run_id, shared.local_addr.ip()),
        local_tag: format!("n{}-{index}", shared.run_id),
        remote_tag: format!("w{}-{index}", shared.run_id),
        local_uri: format!("sip:{user}@example.com"),
        remote_uri: "sip:floorwatch@example.com".into(),
        remote_target: format!("sip:floorwatch@{target}"),
        destination: target,
        event: DIALOG_PACKAGE.into(),
        cseq: 0,
        version: 0,
        on_call: false,
        calls: 0,
        expires_at: Instant::now() + Duration::from_secs(DEFAULT_EXPIRES_SECS),
        terminated: false,
    }
}

fn wait_for_subscriptions(shared: &Shared, args: &NotifierArgs) -> Result<usize, LoadError> {
    let deadline = Instant::now() + Duration::from_secs(args.wait_seconds);
    loop {
        let active = active_dialogs(shared);
        if active >= args.subscriptions || Instant::now() >= deadline {
            if active == 0 {
                return Err(LoadError::NoSubscriptions { addr: shared.local_addr, seconds: args.wait_seconds });
            }
            if active < args.subscriptions {
                eprintln!("floorwatch-sipload: starting with {active} of {} subscriptions", args.subscriptions);
            }
            return Ok(active);
        }
        std::thread::sleep(SUBSCRIBE_POLL);
    }
}

fn active_dialogs(shared: &Shared) -> usize {
    lock(&shared.table).dialogs.iter().filter(|d| !d.terminated).count()
}

// === Steps ===

/// One step's outcome, printed as a `result` line or JSON object.
#[derive(Serialize)]
struct StepReport {
    mode: &'static str,
    step: usize,
    target_rate: u64,
    seconds: f64,
    dialogs: usize,
    offered: u64,
    answered: u64,
    rejected: u64,
    lost: u64,
    send_errors: u64,
    loss_percent: f64,
    offered_per_s: f64,
    answered_per_s: f64,
    latency_p50_us: Option<u32>,
    latency_p99_us: Option<u32>,
    latency_max_us: Option<u32>,
    server_cpu_us: Option<u64>,
    server_cpu_us_per_notify: Option<f64>,
    generator_cpu_us: Option<u64>,
    rejected_codes: BTreeMap<u16, u64>,
    unmatched_responses: u64,
    unparsable: u64,
    /// Datagrams the kernel dropped for a full socket receive buffer during
    /// the step, on the whole host (`RcvbufErrors` in /proc/net/snmp).
    /// Drops for the server's or this tool's socket show up here.
    udp_rcvbuf_errors: Option<u64>,
}

fn run_steps(shared: &Shared, load: &LoadArgs, mode: &'static str, dialogs: usize) -> Result<(), LoadError> {
    for (index, &rate) in load.rate.iter().enumerate() {
        if index > 0 {
            std::thread::sleep(Duration::from_millis(load.pause_ms));
        }
        settle_setup(shared);

        let report = run_step(shared, load, mode, index + 1, rate, dialogs)?;
        print_report(&report, load.json);

        let over_limit = load.stop_loss_percent.is_some_and(|limit| report.loss_percent > limit);
        if over_limit {
            break;
        }
    }
    Ok(())
}

/// Waits until the setup NOTIFYs are answered, so a step's counts and the
/// server's CPU time do not include the subscription set-up.
fn settle_setup(shared: &Shared) {
    let deadline = Instant::now() + SETUP_SETTLE;
    while Instant::now() < deadline {
        if lock(&shared.table).pending.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Setup NOTIFYs unanswered by now will not be answered.
    lock(&shared.table).pending.clear();
}

fn run_step(
    shared: &Shared,
    load: &LoadArgs,
    mode: &'static str,
    step: usize,
    rate: u64,
    dialogs: usize,
) -> Result<StepReport, LoadError> {
    let total = (rate as f64 * load.seconds).round() as u64;
    let slice = Duration::from_micros(load.slice_us);
    let (unmatched_before, unparsable_before) = {
        let mut counts = lock(&shared.counts);
        counts.step = StepCounts::default();
        (counts.unmatched_responses, counts.unparsable)
    };
    let cpu = CpuWindow::start(&server_pids(load)?, load.clock_ticks);
    let rcvbuf_errors_before = udp_rcvbuf_errors();

    // Sending phase: at each slice, send what is due by now.
    let start = Instant::now();
    let mut cursor = 0usize;
    let mut offered = 0u64;
    let mut send_errors = 0u64;
    let mut message = Vec::with_capacity(2_048);
    let mut next_slice = start;
    while offered + send_errors < total {
        let elapsed = start.elapsed().as_secs_f64();
        let due = ((rate as f64 * elapsed) as u64 + 1).min(total);
        while offered + send_errors < due {
            match send_next(shared, &mut cursor, NotifyKind::Load, &mut message) {
                Some(true) => offered += 1,
                Some(false) => send_errors += 1,
                None => return Err(LoadError::AllTerminated { rate }),
            }
        }
        next_slice += slice;
        let now = Instant::now();
        if next_slice > now {
            std::thread::sleep(next_slice - now);
        } else {
            // Behind schedule: catch up in the next slice instead of sleeping.
            next_slice = now;
        }
    }
    let send_time = start.elapsed();

    // Grace: wait for the answers, but no longer than needed.
    let grace_end = Instant::now() + Duration::from_millis(load.grace_ms);
    while Instant::now() < grace_end && lock(&shared.table).pending_load > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (server_cpu_us, generator_cpu_us) = cpu.finish();
    let udp_rcvbuf_errors = rcvbuf_errors_before.zip(udp_rcvbuf_errors()).map(|(start, end)| end.saturating_sub(start));

    // Whatever is still pending now is lost. Setup NOTIFYs stay pending.
    let lost = {
        let mut table = lock(&shared.table);
        table.pending.retain(|_, pending| pending.kind != NotifyKind::Load);
        std::mem::take(&mut table.pending_load) as u64
    };
    let (counts, unmatched_responses, unparsable) = {
        let mut counts = lock(&shared.counts);
        let step = std::mem::take(&mut counts.step);
        (step, counts.unmatched_responses - unmatched_before, counts.unparsable - unparsable_before)
    };

    Ok(summarize(StepSummary {
        mode,
        step,
        rate,
        seconds: load.seconds,
        dialogs,
        offered,
        send_errors,
        lost,
        send_time,
        counts,
        unmatched_responses,
        unparsable,
        udp_rcvbuf_errors,
        server_cpu_us,
        generator_cpu_us,
    }))
}

/// Builds and sends the next NOTIFY, round robin over the active dialogs
/// from `cursor`. Returns None when no dialog is active, otherwise whether
/// the send succeeded.
fn send_next(shared: &Shared, cursor: &mut usize, kind: NotifyKind, message: &mut Vec<u8>) -> Option<bool> {
    let (key, destination) = {
        let mut table = lock(&shared.table);
        let count = table.dialogs.len();
        let index = (0..count).map(|offset| (*cursor + offset) % count).find(|&i| !table.dialogs[i].terminated)?;
        *cursor = index + 1;
        let dialog = &mut table.dialogs[index];
        build_notify(shared, dialog, kind, message);
        ((index, dialog.cseq), dialog.destination)
    };
    Some(send_notify(shared, key, kind, destination, message))
}

/// Records the NOTIFY in `message`, keyed by (dialog index, CSeq), as
/// pending and sends it. Returns false, and drops the pending entry, when
/// the send fails.
fn send_notify(shared: &Shared, key: (usize, u32), kind: NotifyKind, destination: SocketAddr, message: &[u8]) -> bool {
    {
        let mut table = lock(&shared.table);
        table.pending.insert(key, Pending { sent_at: Instant::now(), kind });
        if kind == NotifyKind::Load {
            table.pending_load += 1;
        }
    }

    match shared.socket.send_to(message, destination) {
        Ok(_) => true,
        Err(error) => {
            let mut table = lock(&shared.table);
            if table.pending.remove(&key).is_some() && kind == NotifyKind::Load {
                table.pending_load -= 1;
            }
            eprintln!("floorwatch-sipload: sending a NOTIFY to {destination} failed: {error}");
            false
        }
    }
}

struct StepSummary {
    mode: &'static str,
    step: usize,
    rate: u64,
    seconds: f64,
    dialogs: usize,
    offered: u64,
    send_errors: u64,
    lost: u64,
    send_time: Duration,
    counts: StepCounts,
    unmatched_responses: u64,
    unparsable: u64,
    udp_rcvbuf_errors: Option<u64>,
    server_cpu_us: Option<u64>,
    generator_cpu_us: Option<u64>,
}

fn summarize(summary: StepSummary) -> StepReport {
    let StepSummary { mode, step, rate, seconds, dialogs, offered, send_errors, lost, send_time, counts, .. } = summary;
    let mut latencies = counts.latencies_us;
    latencies.sort_unstable();
    let rejected: u64 = counts.rejected.values().sum();
    // The last NOTIFY goes out one interval before the nominal end.
    let send_secs = send_time.as_secs_f64().max(seconds);
    let loss_percent =
        if offered == 0 { 0.0 } else { 100.0 * (offered - counts.answered.min(offered)) as f64 / offered as f64 };

    StepReport {
        mode,
        step,
        target_rate: rate,
        seconds,
        dialogs,
        offered,
        answered: counts.answered,
        rejected,
        lost,
        send_errors,
        loss_percent: round2(loss_percent),
        offered_per_s: round2(offered as f64 / send_secs),
        answered_per_s: round2(counts.answered as f64 / send_secs),
        latency_p50_us: percentile(&latencies, 50.0),
        latency_p99_us: percentile(&latencies, 99.0),
        latency_max_us: latencies.last().copied(),
        server_cpu_us: summary.server_cpu_us,
        server_cpu_us_per_notify: summary
            .server_cpu_us
            .filter(|_| counts.answered > 0)
            .map(|cpu| round2(cpu as f64 / counts.answered as f64)),
        generator_cpu_us: summary.generator_cpu_us,
        rejected_codes: counts.rejected,
        unmatched_responses: summary.unmatched_responses,
        unparsable: summary.unparsable,
        udp_rcvbuf_errors: summary.udp_rcvbuf_errors,
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], percent: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn print_report(report: &StepReport, json: bool) {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(error) => eprintln!("floorwatch-sipload: cannot encode the report as JSON: {error}"),
        }
        return;
    }

    let optional = |value: Option<String>| value.unwrap_or_else(|| "na".into());
    let codes: Vec<String> = report.rejected_codes.iter().map(|(code, count)| format!("{code}:{count}")).collect();
    println!(
        "result mode={} step={} target_rate={} seconds={} dialogs={} offered={} answered={} rejected={} lost={} \
         send_errors={} loss_percent={:.2} offered_per_s={:.0} answered_per_s={:.0} latency_p50_us={} \
         latency_p99_us={} latency_max_us={} server_cpu_us={} server_cpu_us_per_notify={} generator_cpu_us={} \
         rejected_codes={} unmatched_responses={} unparsable={} udp_rcvbuf_errors={}",
        report.mode,
        report.step,
        report.target_rate,
        report.seconds,
        report.dialogs,
        report.offered,
        report.answered,
        report.rejected,
        report.lost,
        report.send_errors,
        report.loss_percent,
        report.offered_per_s,
        report.answered_per_s,
        optional(report.latency_p50_us.map(|v| v.to_string())),
        optional(report.latency_p99_us.map(|v| v.to_string())),
        optional(report.latency_max_us.map(|v| v.to_string())),
        optional(report.server_cpu_us.map(|v| v.to_string())),
        optional(report.server_cpu_us_per_notify.map(|v| format!("{v:.2}"))),
        optional(report.generator_cpu_us.map(|v| v.to_string())),
        if codes.is_empty() { "none".into() } else { codes.join(",") },
        report.unmatched_responses,
        report.unparsable,
        optional(report.udp_rcvbuf_errors.map(|v| v.to_string())),
    );
}

// === CPU time ===

/// CPU used by the server processes and by this process over one step.
struct CpuWindow {
    server_pids: Vec<u32>,
    clock_ticks: u64,
    server_start: Option<u64>,
    own_start: Option<u64>,
}

impl CpuWindow {
    fn start(server_pids: &[u32], clock_ticks: u64) -> CpuWindow {
        CpuWindow {
            server_pids: server_pids.to_vec(),
            clock_ticks,
            server_start: server_micros(server_pids, clock_ticks),
            own_start: cpu::cpu_micros(None, clock_ticks),
        }
    }

    /// Returns (server, own) CPU microseconds since `start`. The server part
    /// is None without --server-pid or when a server process is gone.
    fn finish(&self) -> (Option<u64>, Option<u64>) {
        let server = self
            .server_start
            .zip(server_micros(&self.server_pids, self.clock_ticks))
            .map(|(start, end)| end.saturating_sub(start));
        let own =
            self.own_start.zip(cpu::cpu_micros(None, self.clock_ticks)).map(|(start, end)| end.saturating_sub(start));
        (server, own)
    }
}

/// Returns the --server-pid values and the ids in --server-pid-file.
fn server_pids(load: &LoadArgs) -> Result<Vec<u32>, LoadError> {
    let mut pids = load.server_pid.clone();
    let Some(path) = &load.server_pid_file else {
        return Ok(pids);
    };

    let text = std::fs::read_to_string(path)
        .map_err(|error| LoadError::PidFile { path: path.clone(), reason: error.to_string() })?;
    for word in text.split_whitespace() {
        let pid = word
            .parse()
            .map_err(|_| LoadError::PidFile { path: path.clone(), reason: format!("{word:?} is not a process id") })?;
        pids.push(pid);
    }
    Ok(pids)
}

/// Reads the host's UDP `RcvbufErrors` counter from /proc/net/snmp, where
/// a `Udp:` line of names precedes the `Udp:` line of values.
fn udp_rcvbuf_errors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp_lines = text.lines().filter(|line| line.starts_with("Udp:"));
    let names = udp_lines.next()?;
    let values = udp_lines.next()?;
    let column = names.split_whitespace().position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

fn server_micros(pids: &[u32], clock_ticks: u64) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu::cpu_micros(Some(pid), clock_ticks)).sum()
}

// === Receiver ===

fn spawn_receiver(shared: &Arc<Shared>, serve_subscribes: bool) -> Result<JoinHandle<()>, LoadError> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("sipload-receive".into())
        .spawn(move || receive_loop(&shared, serve_subscribes))
        .map_err(LoadError::Thread)
}

fn stop_receiver(shared: &Shared, receiver: JoinHandle<()>) {
    shared.stop.store(true, Ordering::Relaxed);
    if receiver.join().is_err() {
        eprintln!("floorwatch-sipload: the receiver thread panicked");
    }
}

fn receive_loop(shared: &Shared, serve_subscribes: bool) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut reply = Vec::with_capacity(2_048);
    while !shared.stop.load(Ordering::Relaxed) {
        let (length, source) = match shared.socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error)
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) =>
            {
                continue;
            }
            // ICMP errors from an earlier send show up here; the loss count
            // covers their NOTIFYs.
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => continue,
            Err(error) => {
                eprintln!("floorwatch-sipload: receiving failed: {error}");
                std::thread::sleep(RECEIVE_POLL);
                continue;
            }
        };
        let received_at = Instant::now();

        let Some(message) = Message::parse(&buffer[..length]) else {
            lock(&shared.counts).unparsable += 1;
            continue;
        };
        if message.is_response() {
            on_response(shared, &message, received_at);
        } else if serve_subscribes {
            on_request(shared, &message, source, &mut reply);
        }
    }
}

fn on_response(shared: &Shared, message: &Message<'_>, received_at: Instant) {
    let Some(code) = message.status_code() else {
        lock(&shared.counts).unparsable += 1;
        return;
    };
    // Provisional responses do not end the transaction.
    if code < 200 {
        return;
    }
    let key = match (message.header("call-id"), message.cseq()) {
        (Some(call_id), Some((cseq, "NOTIFY"))) => {
            let table = lock(&shared.table);
            table.by_call_id.get(call_id).map(|&index| (index, cseq))
        }
        _ => None,
    };

    let pending = key.and_then(|key| {
        let mut table = lock(&shared.table);
        let pending = table.pending.remove(&key)?;
        if pending.kind == NotifyKind::Load {
            table.pending_load -= 1;
        }
        Some(pending)
    });

    let mut counts = lock(&shared.counts);
    match pending {
        None => counts.unmatched_responses += 1,
        Some(pending) if pending.kind == NotifyKind::Load => {
            let micros = received_at.saturating_duration_since(pending.sent_at).as_micros();
            counts.step.latencies_us.push(u32::try_from(micros).unwrap_or(u32::MAX));
            if (200..300).contains(&code) {
                counts.step.answered += 1;
            } else {
                *counts.step.rejected.entry(code).or_default() += 1;
            }
        }
        Some(_) => {}
    }
}

fn on_request(shared: &Shared, request: &Message<'_>, source: SocketAddr, reply: &mut Vec<u8>) {
    match request.method() {
        Some("SUBSCRIBE") => on_subscribe(shared, request, source, reply),
        // ACK gets no response (RFC 3261 section 17.2.1).
        Some("ACK") => {}
        Some(_) => {
            build_response(shared, request, 405, "Method Not Allowed", None, &["Allow: SUBSCRIBE"], reply);
            send_reply(shared, reply, source);
        }
        None => lock(&shared.counts).unparsable += 1,
    }
}

/// Answers a SUBSCRIBE: a new dialog, a refresh or an unsubscribe. Sends
/// the 2xx first and then the NOTIFY that RFC 6665 section 4.2.1 requires
/// after it.
fn on_subscribe(shared: &Shared, request: &Message<'_>, source: SocketAddr, reply: &mut Vec<u8>) {
    let (Some(call_id), Some(from), Some(to), Some(_)) =
        (request.header("call-id"), request.header("from"), request.header("to"), request.cseq())
    else {
        build_response(shared, request, 400, "Missing Call-ID, From, To or CSeq", None, &[], reply);
        send_reply(shared, reply, source);
        return;
    };
    let event = request.header("event").unwrap_or("");
    if event_package(event) != DIALOG_PACKAGE {
        build_response(shared, request, 489, "Bad Event", None, &["Allow-Events: dialog"], reply);
        send_reply(shared, reply, source);
        return;
    }
    let requested =
        request.header("expires").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(DEFAULT_EXPIRES_SECS);
    let granted = requested.min(shared.max_expires);

    let mut table = lock(&shared.table);
    let index = match table.by_call_id.get(call_id).copied() {
        Some(index) if !table.dialogs[index].terminated => index,
        // A retransmitted first SUBSCRIBE has no To tag and finds its dialog
        // above. A To tag for a dialog that does not exist gets 481.
        _ if tag_param(to).is_some() => {
            drop(table);
            build_response(shared, request, 481, "Subscription Does Not Exist", None, &[], reply);
            send_reply(shared, reply, source);
            return;
        }
        _ if granted == 0 => {
            // A fetch (Expires: 0 on a new subscription) is not served.
            drop(table);
            build_response(shared, request, 489, "Bad Event", None, &["Allow-Events: dialog"], reply);
            send_reply(shared, reply, source);
            return;
        }
        _ => {
            let dialog = new_dialog(shared, request, call_id, from, to, source, event, table.dialogs.len());
            let index = table.dialogs.len();
            table.by_call_id.insert(call_id.to_string(), index);
            table.dialogs.push(dialog);
            index
        }
    };

    let dialog = &mut table.dialogs[index];
    dialog.expires_at = Instant::now() + Duration::from_secs(granted);
    let local_tag = dialog.local_tag.clone();
    let expires = format!("Expires: {granted}");
    build_response(shared, request, 200, "OK", Some(&local_tag), &[&expires], reply);
    send_reply(shared, reply, source);

    let kind = if granted == 0 {
        dialog.terminated = true;
        NotifyKind::Final
    } else {
        NotifyKind::Setup
    };
    build_notify(shared, dialog, kind, reply);
    let key = (index, dialog.cseq);
    let destination = dialog.destination;
    drop(table);
    send_notify(shared, key, kind, destination, reply);
}

#[allow(clippy::too_many_arguments)]
fn new_dialog(
    shared: &Shared,
    request: &Message<'_>,
    call_id: &str,
    from: &str,
    to: &str,
    source: SocketAddr,
    event: &str,
    index: usize,
) -> Dialog {
    let remote_target = request.header("contact").map(uri_of).unwrap_or_else(|| uri_of(from)).to_string();
    Dialog {
        call_id: call_id.to_string(),
        local_tag: format!("n{}-{index}", shared.run_id),
        remote_tag: tag_param(from).unwrap_or("").to_string(),
        local_uri: uri_of(to).to_string(),
        remote_uri: uri_of(from).to_string(),
        destination: notify_destination(&remote_target, source),
        remote_target,
        event: event.trim().to_string(),
        cseq: 0,
        version: 0,
        on_call: false,
        calls: 0,
        expires_at: Instant::now(),
        terminated: false,
    }
}

/// Picks where the NOTIFYs of a dialog go: the Contact's address when it is
/// an IP address on the same host as the SUBSCRIBE's source, otherwise the
/// source itself. This keeps the NOTIFY flood on the subscriber's host even
/// when a Contact names another one.
fn notify_destination(remote_target: &str, source: SocketAddr) -> SocketAddr {
    let Some(hostport) = uri_hostport(remote_target) else {
        return source;
    };
    let parsed = hostport
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| hostport.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 5060)))
        .or_else(|| {
            // "[::1]" without a port.
            let inner = hostport.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 5060))
        });
    match parsed {
        Some(addr) if addr.ip() == source.ip() => addr,
        _ => source,
    }
}

fn send_reply(shared: &Shared, reply: &[u8], destination: SocketAddr) {
    if let Err(error) = shared.socket.send_to(reply, destination) {
        eprintln!("floorwatch-sipload: sending a response to {destination} failed: {error}");
    }
}

// === Message building ===

/// Writes a response to `request` into `out`. `to_tag` is added to To when
/// To has no tag yet.
fn build_response(
    shared: &Shared,
    request: &Message<'_>,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[&str],
    out: &mut Vec<u8>,
) {
    let mut text = String::with_capacity(512);
    let _ = write!(text, "SIP/2.0 {code} {reason}\r\n");
    for via in request.vias() {
        let _ = write!(text, "Via: {via}\r\n");
    }
    if let Some(from) = request.header("from") {
        let _ = write!(text, "From: {from}\r\n");
    }
    if let Some(to) = request.header("to") {
        match to_tag {
            Some(tag) if tag_param(to).is_none() => {
                let _ = write!(text, "To: {to};tag={tag}\r\n");
            }
            _ => {
                let _ = write!(text, "To: {to}\r\n");
            }
        }
    }
    if let Some(call_id) = request.header("call-id") {
        let _ = write!(text, "Call-ID: {call_id}\r\n");
    }
    if let Some(cseq) = request.header("cseq") {
        let _ = write!(text, "CSeq: {cseq}\r\n");
    }
    if (200..300).contains(&code) {
        let _ = write!(text, "Contact: <sip:sipload@{}>\r\n", shared.local_addr);
    }
    for line in extra {
        let _ = write!(text, "{line}\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    out.clear();
    out.extend_from_slice(text.as_bytes());
}

/// Advances the dialog (CSeq, body version and, for `Load`, the call state)
/// and writes its next NOTIFY into `out`.
fn build_notify(shared: &Shared, dialog: &mut Dialog, kind: NotifyKind, out: &mut Vec<u8>) {
    dialog.cseq += 1;
    dialog.version += 1;
    if kind == NotifyKind::Load {
        dialog.on_call = !dialog.on_call;
        if dialog.on_call {
            dialog.calls += 1;
        }
    }
    let body = dialog_info_body(dialog);
    let remaining = dialog.expires_at.saturating_duration_since(Instant::now()).as_secs();
    let subscription_state = match kind {
        NotifyKind::Final => "terminated;reason=timeout".to_string(),
        _ => format!("active;expires={remaining}"),
    };

    let mut text = String::with_capacity(1_024 + body.len());
    let _ = write!(text, "NOTIFY {} SIP/2.0\r\n", dialog.remote_target);
    let _ = write!(
        text,
        "Via: SIP/2.0/UDP {};branch={BRANCH_COOKIE}-{}-{}-{};rport\r\n",
        shared.local_addr, shared.run_id, dialog.local_tag, dialog.cseq
    );
    text.push_str("Max-Forwards: 70\r\n");
    let _ = write!(text, "From: <{}>;tag={}\r\n", dialog.local_uri, dialog.local_tag);
    let _ = write!(text, "To: <{}>;tag={}\r\n", dialog.remote_uri, dialog.remote_tag);
    let _ = write!(text, "Call-ID: {}\r\n", dialog.call_id);
    let _ = write!(text, "CSeq: {} NOTIFY\r\n", dialog.cseq);
    let _ = write!(text, "Contact: <sip:sipload@{}>\r\n", shared.local_addr);
    let _ = write!(text, "Event: {}\r\n", dialog.event);
    let _ = write!(text, "Subscription-State: {subscription_state}\r\n");
    let _ = write!(text, "Content-Type: {DIALOG_INFO_TYPE}\r\n");
    let _ = write!(text, "Content-Length: {}\r\n\r\n", body.len());
    text.push_str(&body);
    out.clear();
    out.extend_from_slice(text.as_bytes());
}

/// Builds a full dialog-info document (RFC 4235) for the dialog's current state:
/// the last inbound call, confirmed or terminated, in about 1 KB, or no
/// dialog before the first call.
fn dialog_info_body(dialog: &Dialog) -> String {
    let entity = &dialog.local_uri;
    let version = dialog.version;
    if dialog.calls == 0 {
        return format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" entity=\"{entity}\"/>\n"
        );
    }

    let user = uri_user(entity).unwrap_or("agent");
    let call = dialog.calls;
    let state = if dialog.on_call {
        "<state event=\"remote-ok\" code=\"200\">confirmed</state>".to_string()
    } else {
        "<state event=\"remote-bye\">terminated</state>".to_string()
    };
    let mut body = String::with_capacity(1_200);
    let _ = write!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" entity=\"{entity}\">\n  \
         <dialog id=\"d{call}-{user}\" call-id=\"c{call}-{user}-4f2a9e@192.0.2.10\" local-tag=\"lt{call}x7\" remote-tag=\"rt{call}q3\" direction=\"recipient\">\n    \
         {state}\n    \
         <duration>{duration}</duration>\n    \
         <local>\n      \
         <identity display=\"Agent {user}\">{entity}</identity>\n      \
         <target uri=\"sip:{user}@192.0.2.10:5060;transport=udp\">\n        \
         <param pname=\"+sip.rendering\" pval=\"yes\"/>\n        \
         <param pname=\"+sip.instance\" pval=\"&lt;urn:uuid:6b8c2f1e-0d4a-4c39-9e57-{user:0>12}&gt;\"/>\n      \
         </target>\n      \
         <session-description type=\"application/sdp\">v=0 o=- {call} 1 IN IP4 192.0.2.10 s=- c=IN IP4 192.0.2.10 t=0 0 m=audio 40000 RTP/AVP 8 0 101</session-description>\n    \
         </local>\n    \
         <remote>\n      \
         <identity display=\"Caller {call}\">sip:+3120555{call:0>4}@example.com</identity>\n      \
         <target uri=\"sip:+3120555{call:0>4}@192.0.2.20:5060\"/>\n    \
         </remote>\n  \
         </dialog>\n\
         </dialog-info>\n",
        duration = if dialog.on_call { 1 } else { 95 },
    );
    body
}

// === Message parsing ===

/// A SIP message split into start line and headers, borrowing the datagram.
/// Only what this tool needs: no folding of continuation lines and no body.
struct Message<'a> {
    start_line: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Message<'a> {
    fn parse(datagram: &'a [u8]) -> Option<Message<'a>> {
        let head_end = datagram.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(datagram.len());
        let head = std::str::from_utf8(&datagram[..head_end]).ok()?;
        let mut lines = head.split("\r\n");
        let start_line = lines.next()?.trim();
        if start_line.is_empty() {
            return None;
        }
        let headers = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim(), value.trim()))
            })
            .collect();
        Some(Message { start_line, headers })
    }

    fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/2.0 ")
    }

    fn status_code(&self) -> Option<u16> {
        self.start_line.split_whitespace().nth(1)?.parse().ok()
    }

    fn method(&self) -> Option<&'a str> {
        let method = self.start_line.split_whitespace().next()?;
        (!self.is_response()).then_some(method)
    }

    /// Returns every Via value in order, also from comma-separated and compact
    /// (`v:`) Via headers.
    fn vias(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("via") || n.eq_ignore_ascii_case("v"))
            .flat_map(|(_, value)| value.split(',').map(str::trim))
            .filter(|value| !value.is_empty())
    }

    /// Returns the whole value of the first header named `name` (lower case) or its
    /// compact form (RFC 3261 section 7.3.3).
    fn header(&self, name: &'a str) -> Option<&'a str> {
        let compact = compact_form(name);
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c)))
            .map(|(_, value)| *value)
    }

    /// CSeq number and method.
    fn cseq(&self) -> Option<(u32, &'a str)> {
        let mut parts = self.header("cseq")?.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        Some((number, parts.next()?))
    }
}

fn compact_form(name: &str) -> Option<&'static str> {
    Some(match name {
        "call-id" => "i",
        "from" => "f",
        "to" => "t",
        "via" => "v",
        "contact" => "m",
        "event" => "o",
        "content-length" => "l",
        "content-type" => "c",
        _ => return None,
    })
}

/// Returns the package name of an Event header value, without its parameters.
fn event_package(event: &str) -> &str {
    event.split(';').next().unwrap_or("").trim()
}

/// Returns the URI of a name-addr or addr-spec header value (From, To, Contact).
fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// Returns the `tag` parameter of a From or To value.
fn tag_param(value: &str) -> Option<&str> {
    let params = match value.find('>') {
        Some(close) => &value[close + 1..],
        None => value.split_once(';').map_or("", |(_, rest)| rest),
    };
    params.split(';').map(str::trim).find_map(|param| {
        let (name, tag) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("tag").then_some(tag.trim())
    })
}

/// Returns the host[:port] part of a sip: URI.
fn uri_hostport(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("sip:").or_else(|| uri.strip_prefix("SIP:"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split([';', '?']).next().filter(|h| !h.is_empty())
}

/// Returns the user part of a sip: URI.
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("sip:")?;
    rest.split_once('@').map(|(user, _)| user)
}
