//! The SIP adapter on the real daemon against a scripted notifier on a UDP
//! socket of the test: subscriptions, NOTIFY responses for good and bad input,
//! digest challenges, source networks, shutdown, and the floor result.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use floorwatch::proto::StateGroup;
use tokio::net::UdpSocket;

const SIP_STEP: Duration = Duration::from_secs(15);

/// A presence server played by the test: one UDP socket, messages as text.
struct Notifier {
    socket: UdpSocket,
    /// Messages a receive skipped, for the next receive that wants them.
    backlog: std::sync::Mutex<std::collections::VecDeque<Message>>,
}

/// A received SIP message with its source.
#[derive(Debug, Clone)]
struct Message {
    text: String,
    from: SocketAddr,
}

impl Message {
    fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// Returns the first value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<String> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or("");
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn status(&self) -> Option<u16> {
        self.start_line().strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    fn contact_uri(&self) -> String {
        let value = self.header("Contact").unwrap_or_default();
        value.trim_start_matches('<').split('>').next().unwrap_or("").to_owned()
    }
}

/// The dialog a SUBSCRIBE created, from the notifier's side.
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    watcher_from: String,
    entity: String,
    notifier_tag: String,
    watcher: SocketAddr,
    watcher_contact: String,
    event: String,
}

impl Notifier {
    async fn bind() -> Notifier {
        Notifier {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("a UDP port on 127.0.0.1 must be free"),
            backlog: Default::default(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("bound socket has an address")
    }

    async fn recv(&self) -> Message {
        let mut buf = vec![0; 65_536];
        let (len, from) =
            within(SIP_STEP, self.socket.recv_from(&mut buf), "waiting for a SIP message from floorwatch")
                .await
                .expect("receiving on the notifier socket must work");
        Message { text: String::from_utf8_lossy(&buf[..len]).into_owned(), from }
    }

    /// Returns the first message, skipped earlier or new, that `wanted`
    /// accepts; the others stay in the backlog.
    async fn recv_matching(&self, wanted: impl Fn(&Message) -> bool) -> Message {
        {
            let mut backlog = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(position) = backlog.iter().position(&wanted) {
                return backlog.remove(position).expect("position is in range");
            }
        }
        loop {
            let message = self.recv().await;
            if wanted(&message) {
                return message;
            }
            self.backlog.lock().unwrap_or_else(|e| e.into_inner()).push_back(message);
        }
    }

    /// Receives the next request with `method`; retransmissions of it count.
    async fn recv_request(&self, method: &str) -> Message {
        let prefix = format!("{method} ");
        self.recv_matching(|m| m.start_line().starts_with(&prefix)).await
    }

    /// Receives the next response to a request with `cseq_method`.
    async fn recv_response(&self, cseq_method: &str) -> Message {
        self.recv_matching(|m| m.status().is_some() && m.header("CSeq").is_some_and(|c| c.ends_with(cseq_method))).await
    }

    async fn send(&self, text: &str, to: SocketAddr) {
        self.socket.send_to(text.as_bytes(), to).await.expect("sending to floorwatch must work");
    }

    /// Responds to a SUBSCRIBE with `status` and returns the dialog it creates.
    async fn answer(&self, subscribe: &Message, status: u16, extra: &str) -> Dialog {
        let notifier_tag = format!("n{}", subscribe.header("CSeq").unwrap_or_default().len());
        let response = format!(
            "SIP/2.0 {status} Answer\r\n{}\r\nFrom: {}\r\nTo: {};tag={notifier_tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:presence@{}>\r\n{extra}Content-Length: 0\r\n\r\n",
            vias(subscribe),
            subscribe.header("From").unwrap_or_default(),
            subscribe.header("To").unwrap_or_default(),
            subscribe.header("Call-ID").unwrap_or_default(),
            subscribe.header("CSeq").unwrap_or_default(),
            self.addr(),
        );
        self.send(&response, subscribe.from).await;
        Dialog {
            call_id: subscribe.header("Call-ID").unwrap_or_default(),
            watcher_from: subscribe.header("From").unwrap_or_default(),
            entity: subscribe
                .header("To")
                .unwrap_or_default()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .into(),
            notifier_tag,
            watcher: subscribe.from,
            watcher_contact: subscribe.contact_uri(),
            event: subscribe.header("Event").unwrap_or_default(),
        }
    }

    /// Sends a NOTIFY in `dialog` and returns floorwatch's response.
    async fn notify(&self, dialog: &Dialog, cseq: u32, headers: &str, body: &str) -> Message {
        let branch = format!("z9hG4bK-test-{cseq}-{}", body.len());
        let text = format!(
            "NOTIFY {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch}\r\nMax-Forwards: 70\r\n\
             From: <{}>;tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} NOTIFY\r\nContact: <sip:presence@{}>\r\n\
             {headers}Content-Length: {}\r\n\r\n{body}",
            dialog.watcher_contact,
            self.addr(),
            dialog.entity,
            dialog.notifier_tag,
            dialog.watcher_from,
            dialog.call_id,
            self.addr(),
            body.len(),
        );
        self.send(&text, dialog.watcher).await;
        self.recv_response("NOTIFY").await
    }
}

/// Waits for a log line with `needle`. The log is read on another thread,
/// so a line may trail the response the test already has.
async fn assert_logged(daemon: &Daemon, needle: &str) {
    let deadline = std::time::Instant::now() + SIP_STEP;
    while daemon.log_lines_with(needle).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no log line with {needle:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn vias(message: &Message) -> String {
    let head = message.text.split("\r\n\r\n").next().unwrap_or("");
    head.lines().filter(|l| l.to_ascii_lowercase().starts_with("via:")).collect::<Vec<_>>().join("\r\n")
}

fn dialog_headers(state: &str) -> String {
    format!("Event: dialog\r\nSubscription-State: {state}\r\nContent-Type: application/dialog-info+xml\r\n")
}

fn dialog_body(version: u32, entity: &str, dialogs: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" \
         state=\"full\" entity=\"{entity}\">{dialogs}</dialog-info>\r\n"
    )
}

fn confirmed_call(id: &str) -> String {
    format!("<dialog id=\"{id}\" call-id=\"{id}-call\" direction=\"recipient\"><state>confirmed</state></dialog>")
}

/// A site whose agent directory lives in its own temporary directory.
struct SipSite {
    site: Site,
    _agents_dir: tempfile::TempDir,
}

impl SipSite {
    fn start(&self) -> Daemon {
        self.site.start()
    }
}

fn sip_site(notifier: SocketAddr, packages: &str, extra: &str) -> SipSite {
    let dir = tempfile::Builder::new().prefix("floorwatch-sip-agents-").tempdir().expect("temp dir");
    let agents = dir.path().join("agents.csv");
    std::fs::write(
        &agents,
        "id,display_name,team,contract_hours,platform_ids\n\
         a-1,Anna Test,team-a,1.5,sip:1001@example.com\n",
    )
    .expect("agents file must be writable");
    let site = Site::new(SiteConfig {
        agents_file: Some(agents),
        extra_toml: format!(
            "[sip]\nenabled = true\nlisten = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:{notifier}\"\n\
             identity = \"sip:floorwatch@example.com\"\npackages = [{packages}]\nstart_spread_seconds = 0\n\
             health_grace_seconds = 1\n{extra}"
        ),
        ..SiteConfig::default()
    });
    SipSite { site, _agents_dir: dir }
}

/// Starts the daemon and accepts the first SUBSCRIBE of each package.
async fn start_subscribed(notifier: &Notifier, packages: &str) -> (Daemon, Vec<Dialog>, SipSite) {
    let site = sip_site(notifier.addr(), packages, "");
    let daemon = site.start();
    let mut dialogs = Vec::new();
    for _ in 0..packages.split(',').count() {
        let subscribe = notifier.recv_request("SUBSCRIBE").await;
        dialogs.push(notifier.answer(&subscribe, 200, "Expires: 600\r\n").await);
    }
    (daemon, dialogs, site)
}

#[tokio::test]
async fn subscribe_carries_event_accept_expires() {
    let notifier = Notifier::bind().await;
    let site = sip_site(notifier.addr(), "\"dialog\"", "");
    let _daemon = site.start();
    let subscribe = notifier.recv_request("SUBSCRIBE").await;
    assert_eq!(subscribe.start_line(), "SUBSCRIBE sip:1001@example.com SIP/2.0");
    assert_eq!(subscribe.header("Event").as_deref(), Some("dialog"));
    assert_eq!(subscribe.header("Accept").as_deref(), Some("application/dialog-info+xml"));
    assert_eq!(subscribe.header("Expires").as_deref(), Some("3600"));
    assert!(subscribe.header("From").is_some_and(|f| f.contains("<sip:floorwatch@example.com>;tag=")));
    assert!(subscribe.header("Route").is_some_and(|r| r.contains(&notifier.addr().to_string())));
}

#[tokio::test]
async fn confirmed_dialog_shows_on_call() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let response = notifier
        .notify(
            dialog,
            1,
            &dialog_headers("active;expires=600"),
            &dialog_body(0, &dialog.entity, &confirmed_call("d1")),
        )
        .await;
    assert_eq!(response.status(), Some(200));

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    let view = stream.wait_for_agent(SIP_STEP, |a| a.agent_id == "a-1" && a.call.is_some()).await;
    assert_eq!(view.state(), StateGroup::OnCallInbound);
    assert_eq!(view.source, "sip/a-1");
}

#[tokio::test]
async fn notify_before_ok_is_accepted() {
    let notifier = Notifier::bind().await;
    let site = sip_site(notifier.addr(), "\"dialog\"", "");
    let _daemon = site.start();
    let subscribe = notifier.recv_request("SUBSCRIBE").await;
    let dialog = Dialog {
        call_id: subscribe.header("Call-ID").unwrap_or_default(),
        watcher_from: subscribe.header("From").unwrap_or_default(),
        entity: "sip:1001@example.com".into(),
        notifier_tag: "early1".into(),
        watcher: subscribe.from,
        watcher_contact: subscribe.contact_uri(),
        event: "dialog".into(),
    };
    let response =
        notifier.notify(&dialog, 1, &dialog_headers("active;expires=600"), &dialog_body(0, &dialog.entity, "")).await;
    assert_eq!(response.status(), Some(200));
}

#[tokio::test]
async fn unknown_dialog_gets_481() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let mut stranger = dialogs[0].clone();
    stranger.call_id = "not-a-subscription@example.com".into();
    let response = notifier.notify(&stranger, 1, &dialog_headers("active"), "").await;
    assert_eq!(response.status(), Some(481));
}

#[tokio::test]
async fn wrong_event_gets_489() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let headers = "Event: presence\r\nSubscription-State: active\r\n";
    let response = notifier.notify(&dialogs[0], 1, headers, "").await;
    assert_eq!(response.status(), Some(489));
}

#[tokio::test]
async fn missing_subscription_state_gets_400() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let response = notifier.notify(&dialogs[0], 1, "Event: dialog\r\n", "").await;
    assert_eq!(response.status(), Some(400));
    assert!(response.header("Warning").is_some_and(|w| w.contains("Subscription-State")));
}

#[tokio::test]
async fn malformed_body_gets_400_naming_problem() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let body = "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:1001@example.com\"><dialog id=\"x\">";
    let response = notifier.notify(&dialogs[0], 1, &dialog_headers("active"), body).await;
    assert_eq!(response.status(), Some(400));
    let warning = response.header("Warning").unwrap_or_default();
    assert!(warning.contains("dialog-info"), "warning: {warning}");
    assert_logged(&daemon, "bad NOTIFY").await;
}

#[tokio::test]
async fn stale_cseq_gets_500() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let first = notifier.notify(dialog, 5, &dialog_headers("active"), "").await;
    assert_eq!(first.status(), Some(200));
    let repeat = notifier.notify(dialog, 4, &dialog_headers("active"), "").await;
    assert_eq!(repeat.status(), Some(500));
}

#[tokio::test]
async fn stale_version_is_ignored() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let on_call = dialog_body(3, &dialog.entity, &confirmed_call("d1"));
    assert_eq!(notifier.notify(dialog, 1, &dialog_headers("active"), &on_call).await.status(), Some(200));
    // Version 2 is older than 3: the call stays.
    let older = dialog_body(2, &dialog.entity, "");
    assert_eq!(notifier.notify(dialog, 2, &dialog_headers("active"), &older).await.status(), Some(200));

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    let view = stream.wait_for_agent(SIP_STEP, |a| a.agent_id == "a-1" && a.call.is_some()).await;
    assert_eq!(view.state(), StateGroup::OnCallInbound);
}

#[tokio::test]
async fn wrong_body_type_gets_415() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let headers = "Event: dialog\r\nSubscription-State: active\r\nContent-Type: application/pidf+xml\r\n";
    let response = notifier.notify(&dialogs[0], 1, headers, "<presence/>").await;
    assert_eq!(response.status(), Some(415));
}

#[tokio::test]
async fn digest_challenge_is_answered() {
    let notifier = Notifier::bind().await;
    let extra = "auth_username = \"fw\"\nauth_password = \"secret\"\n";
    let site = sip_site(notifier.addr(), "\"dialog\"", extra);
    let _daemon = site.start();
    let first = notifier.recv_request("SUBSCRIBE").await;
    let challenge = "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc123\", algorithm=MD5, qop=\"auth\"\r\n";
    notifier.answer(&first, 401, challenge).await;
    let second = notifier.recv_request("SUBSCRIBE").await;
    let authorization = second.header("Authorization").unwrap_or_default();
    assert!(authorization.contains("username=\"fw\""), "authorization: {authorization}");
    assert_eq!(second.header("CSeq").as_deref(), Some("2 SUBSCRIBE"));
    assert_eq!(second.header("Call-ID"), first.header("Call-ID"));
}

#[tokio::test]
async fn foreign_source_gets_403() {
    let notifier = Notifier::bind().await;
    let extra = "allowed_networks = [\"192.0.2.0/24\"]\n";
    let site = sip_site(notifier.addr(), "\"dialog\"", extra);
    let daemon = site.start();
    let (_, sip) = daemon.sip_addrs.first().cloned().expect("a SIP listener");
    let options = format!(
        "OPTIONS sip:floorwatch@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-opt1\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@example.com>;tag=p1\r\nTo: <sip:floorwatch@example.com>\r\nCall-ID: opt1@example.com\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        notifier.addr()
    );
    notifier.send(&options, sip).await;
    let response = notifier.recv_response("OPTIONS").await;
    assert_eq!(response.status(), Some(403));
}

#[tokio::test]
async fn options_gets_200_with_allow() {
    let notifier = Notifier::bind().await;
    let site = sip_site(notifier.addr(), "\"dialog\"", "");
    let daemon = site.start();
    let (_, sip) = daemon.sip_addrs.first().cloned().expect("a SIP listener");
    let options = format!(
        "OPTIONS sip:floorwatch@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-opt2\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@example.com>;tag=p2\r\nTo: <sip:floorwatch@example.com>\r\nCall-ID: opt2@example.com\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        notifier.addr()
    );
    notifier.send(&options, sip).await;
    let response = notifier.recv_response("OPTIONS").await;
    assert_eq!(response.status(), Some(200));
    assert!(response.header("Allow").is_some_and(|a| a.contains("NOTIFY")));
}

#[tokio::test]
async fn terminated_timeout_resubscribes_at_once() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let response = notifier.notify(&dialogs[0], 1, &dialog_headers("terminated;reason=timeout"), "").await;
    assert_eq!(response.status(), Some(200));
    let again = notifier.recv_request("SUBSCRIBE").await;
    assert_ne!(again.header("Call-ID").as_deref(), Some(dialogs[0].call_id.as_str()));
    assert_eq!(again.header("Event").as_deref(), Some("dialog"));
}

#[tokio::test]
async fn shutdown_unsubscribes_with_expires_zero() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let active = notifier.notify(dialog, 1, &dialog_headers("active;expires=600"), "").await;
    assert_eq!(active.status(), Some(200));

    daemon.terminate();
    let unsubscribe = notifier.recv_request("SUBSCRIBE").await;
    assert_eq!(unsubscribe.header("Expires").as_deref(), Some("0"));
    assert_eq!(unsubscribe.header("Call-ID").as_deref(), Some(dialog.call_id.as_str()));
    assert!(unsubscribe.header("To").is_some_and(|t| t.contains(&format!("tag={}", dialog.notifier_tag))));
    assert_eq!(dialog.event, "dialog");
}

#[tokio::test]
async fn lost_registration_shows_device_lost() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"reg\"").await;
    let dialog = &dialogs[0];
    let headers = "Event: reg\r\nSubscription-State: active\r\nContent-Type: application/reginfo+xml\r\n";
    let registered = reginfo(0, "active", "active", "registered");
    assert_eq!(notifier.notify(dialog, 1, headers, &registered).await.status(), Some(200));
    let expired = reginfo(1, "terminated", "terminated", "expired");
    assert_eq!(notifier.notify(dialog, 2, headers, &expired).await.status(), Some(200));

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    let view = stream.wait_for_agent(SIP_STEP, |a| a.agent_id == "a-1" && a.device_registered == Some(false)).await;
    assert_eq!(view.device_registered, Some(false));
}

fn reginfo(version: u32, registration: &str, contact: &str, event: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{version}\" state=\"full\">\
         <registration aor=\"sip:1001@example.com\" id=\"r1\" state=\"{registration}\">\
         <contact id=\"c1\" state=\"{contact}\" event=\"{event}\"><uri>sip:1001@192.0.2.5:5060</uri></contact>\
         </registration></reginfo>\r\n"
    )
}

#[tokio::test]
async fn corpus_messages_leave_daemon_answering() {
    let notifier = Notifier::bind().await;
    let site = sip_site(notifier.addr(), "\"dialog\"", "");
    let daemon = site.start();
    let (_, sip) = daemon.sip_addrs.first().cloned().expect("a SIP listener");
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut sent = 0;
    for dir in ["rfc4475", "rfc5118"] {
        let Ok(entries) = std::fs::read_dir(corpus.join(dir)) else {
            panic!("corpus directory {} is missing; the tests need ../shared beside the repository", dir);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("dat") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("corpus file readable");
            let _ = notifier.socket.send_to(&bytes[..bytes.len().min(65_000)], sip).await;
            sent += 1;
        }
    }
    assert!(sent > 30, "only {sent} corpus messages found");

    // The daemon still responds, and no panic reached the log.
    let options = format!(
        "OPTIONS sip:floorwatch@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-after\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@example.com>;tag=p3\r\nTo: <sip:floorwatch@example.com>\r\nCall-ID: after@example.com\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        notifier.addr()
    );
    notifier.send(&options, sip).await;
    loop {
        let message = notifier.recv().await;
        if message.header("Call-ID").as_deref() == Some("after@example.com") {
            assert_eq!(message.status(), Some(200));
            break;
        }
    }
    assert!(daemon.log_lines_with("panicked").is_empty());
}

#[tokio::test]
async fn version_gap_triggers_refresh() {
    let notifier = Notifier::bind().await;
    let (_daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let full = dialog_body(1, &dialog.entity, "");
    assert_eq!(notifier.notify(dialog, 1, &dialog_headers("active;expires=600"), &full).await.status(), Some(200));
    // Version 5 after 1 is a gap: floorwatch refreshes to get the full state.
    let partial = full.replace("version=\"1\" state=\"full\"", "version=\"5\" state=\"partial\"");
    assert_eq!(notifier.notify(dialog, 2, &dialog_headers("active;expires=600"), &partial).await.status(), Some(200));
    let refresh = notifier.recv_request("SUBSCRIBE").await;
    assert_eq!(refresh.header("Call-ID").as_deref(), Some(dialog.call_id.as_str()));
    assert!(refresh.header("To").is_some_and(|t| t.contains(&format!("tag={}", dialog.notifier_tag))));
}

#[tokio::test]
async fn directory_changes_follow_subscriptions() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let first = &dialogs[0];
    assert_eq!(notifier.notify(first, 1, &dialog_headers("active;expires=600"), "").await.status(), Some(200));

    // a-2 joins with an AOR, and a-1 loses its AOR.
    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    put_agents(
        &mut roster,
        vec![agent("a-1", "team-a", 1.5, &[]), agent("a-2", "team-a", 1.5, &["sip:1002@example.com"])],
    )
    .await;

    // The adapter looks at the directory every 5 seconds.
    let added = notifier.recv_matching(|m| m.start_line().starts_with("SUBSCRIBE sip:1002@example.com ")).await;
    assert_eq!(added.header("Expires").as_deref(), Some("3600"));
    let removed = notifier
        .recv_matching(|m| {
            m.start_line().starts_with("SUBSCRIBE ") && m.header("Call-ID").as_deref() == Some(first.call_id.as_str())
        })
        .await;
    assert_eq!(removed.header("Expires").as_deref(), Some("0"));
}

#[tokio::test]
async fn rejected_subscription_makes_feed_unknown() {
    let notifier = Notifier::bind().await;
    let (daemon, dialogs, _site) = start_subscribed(&notifier, "\"dialog\"").await;
    let dialog = &dialogs[0];
    let on_call = dialog_body(0, &dialog.entity, &confirmed_call("d1"));
    assert_eq!(notifier.notify(dialog, 1, &dialog_headers("active;expires=600"), &on_call).await.status(), Some(200));

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.wait_for_agent(SIP_STEP, |a| a.agent_id == "a-1" && a.call.is_some() && a.source_healthy).await;

    // The notifier withdraws the subscription for good; after the health
    // grace (1 s here) the agent's SIP feed is down and adherence unknown.
    let ended = notifier.notify(dialog, 2, &dialog_headers("terminated;reason=rejected"), "").await;
    assert_eq!(ended.status(), Some(200));
    let down = stream.wait_for_agent(SIP_STEP, |a| a.agent_id == "a-1" && !a.source_healthy).await;
    assert_eq!(down.adherence(), floorwatch::proto::AdherenceStatus::Unknown);
    assert_logged(&daemon, "SIP subscription stopped").await;
}
