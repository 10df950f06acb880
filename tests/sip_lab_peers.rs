//! Proves the SIP peers of the lab on their own, without floorwatch. The
//! Kamailio lab registers SIPp phones, routes a call between them and
//! sends dialog and reg NOTIFYs to a SIPp watcher. Each SIPp notifier
//! scenario completes against a SIPp watcher, over UDP with 10 % simulated
//! packet loss and over TCP.
//!
//! A test returns early with a skip line when SIPp or Kamailio is missing,
//! and fails instead under `CI=true`.

#[path = "support/peers.rs"]
mod peers;

use std::time::Duration;

use peers::{Kamailio, Sipp, Transport, free_port};

/// Maximum run time of one SIPp scenario. The scenarios' own timeouts
/// (20 s per expected NOTIFY) end a stuck run sooner.
const RUN_LIMIT: Duration = Duration::from_secs(45);

#[test]
fn lab_call_reaches_dialog_watcher() {
    let Some(sipp) = Sipp::new() else { return };
    let Some(lab) = Kamailio::start("kamailio.cfg") else { return };
    let caller_port = free_port();
    let callee_port = free_port();
    let watcher_port = free_port();

    sipp.register(&lab, "1001", caller_port, 60);
    sipp.register(&lab, "1002", callee_port, 60);

    let mut watcher = sipp.start(
        "watcher",
        "subscriber-dialog.xml",
        watcher_port,
        Transport::Udp,
        Some(&lab.address()),
        &["-s", "1001", "-key", "expires", "60"],
    );
    let mut callee = sipp.start(
        "callee",
        "callee.xml",
        callee_port,
        Transport::Udp,
        Some(&lab.address()),
        &["-s", "1002", "-d", "500"],
    );
    // Let the subscription start first, so the watcher gets every NOTIFY of the call.
    std::thread::sleep(Duration::from_millis(500));
    let mut caller = sipp.start(
        "caller",
        "caller.xml",
        caller_port,
        Transport::Udp,
        Some(&lab.address()),
        &["-s", "1001", "-key", "callee", "1002", "-d", "1500"],
    );

    caller.expect_success(RUN_LIMIT);
    callee.expect_success(RUN_LIMIT);
    watcher.expect_success(RUN_LIMIT);

    let trace = sipp.messages("watcher");
    assert!(trace.contains("direction=\"initiator\""), "the caller's dialog-info must say initiator:\n{trace}");
}

#[test]
fn lab_expired_registration_reaches_reg_watcher() {
    let Some(sipp) = Sipp::new() else { return };
    let Some(lab) = Kamailio::start("kamailio.cfg") else { return };

    // The lab's registrar accepts Expires down to 2 s and checks for
    // expired contacts every second.
    sipp.register(&lab, "1003", free_port(), 3);

    let mut watcher = sipp.start(
        "watcher",
        "subscriber-reg.xml",
        free_port(),
        Transport::Udp,
        Some(&lab.address()),
        &["-s", "1003", "-key", "expires", "60"],
    );
    watcher.expect_success(RUN_LIMIT);
}

/// Runs `notifier-<package>.xml` against `subscriber-<package>.xml`.
///
/// Over UDP the notifier drops 10 % of the messages it sends and receives
/// (SIPp `-lost 10`), and both runs must succeed. Over TCP, SIPp 3.6.1
/// counts a call as failed when the peer closes the connection while the
/// call is still open. That happens to the watcher after the notifier's
/// last step, so the watcher must instead end with no unexpected message
/// and with the final NOTIFY in its trace.
fn notifier_completes(package: &str, transport: Transport) {
    let Some(sipp) = Sipp::new() else { return };
    let notifier_port = free_port();
    let notifier_address = format!("127.0.0.1:{notifier_port}");

    let mut notifier_args = vec!["-key", "expires", "60", "-d", "100"];
    if transport == Transport::Udp {
        notifier_args.extend(["-lost", "10"]);
    }
    let mut notifier =
        sipp.start("notifier", &format!("notifier-{package}.xml"), notifier_port, transport, None, &notifier_args);
    // SIPp binds its socket within a few milliseconds of starting.
    std::thread::sleep(Duration::from_millis(300));

    let mut watcher = sipp.start(
        "watcher",
        &format!("subscriber-{package}.xml"),
        free_port(),
        transport,
        Some(&notifier_address),
        &["-s", "1001", "-key", "expires", "60"],
    );

    let watcher_status = watcher.wait_exit(RUN_LIMIT);
    notifier.expect_success(RUN_LIMIT);
    assert!(watcher_status.is_some(), "the {package} watcher still runs after {RUN_LIMIT:?}");

    match transport {
        Transport::Udp => {
            let status = watcher_status.expect("checked above");
            assert!(status.success(), "the {package} watcher failed with {status}");
        }
        Transport::Tcp => {
            let errors = sipp.errors("watcher");
            assert!(errors.is_empty(), "the {package} watcher logged errors:\n{errors}");
            let trace = sipp.messages("watcher");
            assert!(
                trace.contains("Subscription-State: terminated"),
                "the {package} watcher never got the final NOTIFY:\n{trace}"
            );
        }
    }
}

#[test]
fn dialog_notifier_udp_lossy() {
    notifier_completes("dialog", Transport::Udp);
}

#[test]
fn dialog_notifier_tcp() {
    notifier_completes("dialog", Transport::Tcp);
}

#[test]
fn presence_notifier_udp_lossy() {
    notifier_completes("presence", Transport::Udp);
}

#[test]
fn presence_notifier_tcp() {
    notifier_completes("presence", Transport::Tcp);
}

#[test]
fn reg_notifier_udp_lossy() {
    notifier_completes("reg", Transport::Udp);
}

#[test]
fn reg_notifier_tcp() {
    notifier_completes("reg", Transport::Tcp);
}
