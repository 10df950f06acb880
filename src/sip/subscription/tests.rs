//! Deterministic tests of the subscription manager. Time moves only when a
//! test moves it, mostly straight to `next_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// A SUBSCRIBE as the tests see it.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    id: SubscriptionId,
    agent: Arc<str>,
    new_dialog: bool,
    cseq: u32,
    expires: u32,
    remote_tag: Option<String>,
}

struct Harness {
    manager: SubscriptionManager,
    start: Instant,
    now: Instant,
}

fn config() -> ManagerConfig {
    ManagerConfig { packages: vec![Package::Dialog], start_spread: Duration::ZERO, ..ManagerConfig::default() }
}

fn agent(number: u32) -> (String, String) {
    (format!("a-{number}"), format!("sip:{number}@pbx.example.com"))
}

fn ok(expires: u32) -> SubscribeResponse {
    SubscribeResponse {
        status: 200,
        expires: Some(expires),
        remote_tag: Some("n1".to_owned()),
        remote_target: Some("sip:pbx@192.0.2.60:5060".to_owned()),
        ..SubscribeResponse::default()
    }
}

fn status(code: u16) -> SubscribeResponse {
    SubscribeResponse { status: code, ..SubscribeResponse::default() }
}

fn notify(cseq: u32, state: SubState) -> Notify {
    Notify { cseq, remote_tag: Some("n1".to_owned()), remote_target: Some("sip:pbx@192.0.2.60:5060".to_owned()), state }
}

fn subscribe(action: &Action) -> Sent {
    match action {
        Action::SendSubscribe { id, agent, new_dialog, cseq, expires, remote, .. } => Sent {
            id: *id,
            agent: agent.clone(),
            new_dialog: *new_dialog,
            cseq: *cseq,
            expires: *expires,
            remote_tag: remote.tag.clone(),
        },
        other => panic!("expected SendSubscribe, got {other:?}"),
    }
}

fn only_subscribe(actions: &[Action]) -> Sent {
    assert_eq!(actions.len(), 1, "expected one action, got {actions:?}");
    subscribe(&actions[0])
}

fn health(agent: &str, healthy: bool) -> ManagerEvent {
    ManagerEvent::Health { agent: Arc::from(agent), healthy }
}

// === impl Harness ===

impl Harness {
    fn new(config: ManagerConfig) -> Harness {
        Harness::with_seed(config, 7)
    }

    fn with_seed(config: ManagerConfig, seed: u64) -> Harness {
        let manager = SubscriptionManager::new(config, seed).expect("test config must be valid");
        let start = Instant::now();
        Harness { manager, start, now: start }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    fn set_targets(&mut self, targets: Vec<(String, String)>) {
        self.manager.set_targets(self.now, targets);
    }

    /// Drains the actions due now.
    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.manager.poll_action(self.now)).collect()
    }

    fn events(&mut self) -> Vec<ManagerEvent> {
        std::iter::from_fn(|| self.manager.poll_event()).collect()
    }

    /// Jumps from timer to timer until actions come out; returns them, or
    /// nothing when no timer is left.
    fn next_actions(&mut self) -> Vec<Action> {
        for _ in 0..100 {
            let actions = self.actions();
            if !actions.is_empty() {
                return actions;
            }
            match self.manager.next_timeout() {
                Some(at) => self.now = self.now.max(at),
                None => return Vec::new(),
            }
        }
        panic!("timers keep firing without actions");
    }

    fn respond(&mut self, id: SubscriptionId, response: SubscribeResponse) {
        self.manager.on_response(self.now, id, response);
    }

    fn notify(&mut self, id: SubscriptionId, cseq: u32, state: SubState) -> NotifyVerdict {
        self.manager.on_notify(self.now, id, notify(cseq, state))
    }

    /// Sets one target and brings its dialog subscription to active with a
    /// 200 granting 3600 s and a NOTIFY with CSeq `first_cseq`.
    fn establish(&mut self, number: u32, first_cseq: u32) -> SubscriptionId {
        self.set_targets(vec![agent(number)]);

        let sent = only_subscribe(&self.actions());
        self.respond(sent.id, ok(3600));
        let verdict = self.notify(sent.id, first_cseq, SubState::active(Some(3600)));
        assert_eq!(verdict, NotifyVerdict::Accept, "first NOTIFY must be accepted");
        sent.id
    }
}

#[test]
fn initial_subscribes_spread_over_window() {
    let mut harness = Harness::new(ManagerConfig { start_spread: Duration::from_secs(60), ..config() });
    harness.set_targets((0..500).map(|number| agent(1000 + number)).collect());

    // Each SUBSCRIBE is accepted at once, so no retry mixes into the count.
    let mut per_second = vec![0usize; 61];
    loop {
        let actions = harness.next_actions();
        if actions.is_empty() || harness.elapsed() > Duration::from_secs(60) {
            break;
        }
        for action in &actions {
            let sent = subscribe(action);
            assert!(sent.new_dialog, "only initial SUBSCRIBEs are expected");
            harness.respond(sent.id, ok(3600));
        }
        let second = harness.elapsed().as_secs() as usize;
        per_second[second] += actions.len();
        if per_second.iter().sum::<usize>() == 500 {
            break;
        }
    }

    assert_eq!(per_second.iter().sum::<usize>(), 500, "every target must be subscribed");
    let busiest = per_second.iter().copied().max().unwrap_or(0);
    assert!(busiest <= 50, "busiest second sent {busiest} of 500 SUBSCRIBEs");
}

#[test]
fn refresh_goes_out_before_expiry() {
    // granted expiry, expected refresh delay: 80 %, the 60 s margin, and
    // never earlier than half the expiry.
    let cases = [(3600, 2880), (600, 480), (240, 180), (100, 50)];

    for (granted, expected) in cases {
        let mut harness = Harness::new(config());
        harness.set_targets(vec![agent(1001)]);
        let sent = only_subscribe(&harness.actions());
        harness.respond(sent.id, ok(granted));
        harness.notify(sent.id, 1, SubState::active(None));

        let refresh = only_subscribe(&harness.next_actions());

        assert_eq!(harness.elapsed(), Duration::from_secs(expected), "refresh time for {granted} s");
        assert_eq!(refresh.id, sent.id, "refresh for {granted} s must stay in the dialog");
        assert!(!refresh.new_dialog, "refresh for {granted} s must not create a dialog");
        assert_eq!(refresh.cseq, 2, "refresh for {granted} s must increment the CSeq");
        assert_eq!(refresh.remote_tag.as_deref(), Some("n1"), "refresh must carry the remote tag");
    }
}

#[test]
fn refresh_481_recreates_at_once() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 1);
    assert_eq!(harness.events(), vec![health("a-1001", true)]);

    let refresh = only_subscribe(&harness.next_actions());
    let refreshed_at = harness.now;
    harness.respond(refresh.id, status(481));
    let recreate = only_subscribe(&harness.actions());

    assert_eq!(harness.now, refreshed_at, "the new SUBSCRIBE must go out at once");
    assert!(recreate.new_dialog, "481 must lead to a new dialog");
    assert_ne!(recreate.id, first, "the new dialog must get a new id");
    assert_eq!(recreate.cseq, 1, "a new dialog restarts the CSeq");
    assert_eq!(recreate.remote_tag, None, "a new dialog has no remote tag");
    assert_eq!(
        harness.events(),
        vec![health("a-1001", false)],
        "after a 481 the agent's state is unknown until a NOTIFY arrives"
    );

    harness.respond(recreate.id, ok(3600));
    assert_eq!(harness.events(), vec![], "a 2xx alone must not restore health");

    harness.notify(recreate.id, 1, SubState::active(Some(3600)));
    assert_eq!(harness.events(), vec![health("a-1001", true)]);
    assert_eq!(
        harness.notify(first, 9, SubState::active(None)),
        NotifyVerdict::UnknownSubscription,
        "the old dialog must be gone"
    );
}

#[test]
fn timeout_backoff_grows_capped_with_jitter() {
    let mut harness = Harness::new(ManagerConfig {
        min_retry: Duration::from_secs(2),
        max_retry: Duration::from_secs(60),
        ..config()
    });
    harness.set_targets(vec![agent(1001)]);
    let mut sent = only_subscribe(&harness.actions());

    let mut ratios = Vec::new();
    for failures in 1..=10u32 {
        let failed_at = harness.now;
        harness.manager.on_timeout(harness.now, sent.id);
        sent = only_subscribe(&harness.next_actions());
        let delay = harness.now - failed_at;

        let base = Duration::from_secs(2 << (failures - 1)).min(Duration::from_secs(60));
        assert!(delay >= base / 2, "failure {failures}: delay {delay:?} below half of {base:?}");
        assert!(delay <= base, "failure {failures}: delay {delay:?} above {base:?}");
        assert!(sent.new_dialog, "failure {failures}: a timed-out SUBSCRIBE must get a new dialog");
        ratios.push(delay.as_secs_f64() / base.as_secs_f64());
    }

    let distinct = ratios.iter().map(|ratio| (ratio * 1000.0) as u64).collect::<std::collections::BTreeSet<_>>();
    assert!(distinct.len() > 5, "backoff must be jittered, got ratios {ratios:?}");
}

#[test]
fn response_408_backs_off() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    harness.respond(sent.id, status(408));
    assert_eq!(harness.actions(), vec![], "408 must not retry at once");

    let retry = only_subscribe(&harness.next_actions());
    assert!(harness.elapsed() >= Duration::from_secs(1), "retry came after {:?}", harness.elapsed());
    assert!(retry.new_dialog, "408 must lead to a new dialog");
}

#[test]
fn refresh_timeout_ends_dialog() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 1);
    let refresh = only_subscribe(&harness.next_actions());

    harness.manager.on_timeout(harness.now, refresh.id);
    let retry = only_subscribe(&harness.next_actions());

    assert!(retry.new_dialog, "a timed-out refresh must end the dialog");
    assert_ne!(retry.id, first, "the new dialog must get a new id");
}

#[test]
fn late_response_after_timeout_ignored() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    harness.manager.on_timeout(harness.now, sent.id);
    harness.respond(sent.id, ok(3600));
    let retry = only_subscribe(&harness.next_actions());

    assert!(retry.new_dialog, "the late 2xx must not establish the abandoned dialog");
    assert_ne!(retry.id, sent.id, "the retry must get a new id");
}

#[test]
fn missing_response_counts_as_timeout() {
    let mut harness = Harness::new(ManagerConfig { request_timeout: Duration::from_secs(40), ..config() });
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    let retry = only_subscribe(&harness.next_actions());

    assert!(harness.elapsed() > Duration::from_secs(40), "retry came after {:?}", harness.elapsed());
    assert_ne!(retry.id, sent.id, "the retry must get a new id");
}

#[test]
fn notify_before_2xx_accepted() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    let verdict = harness.notify(sent.id, 1, SubState::active(Some(3600)));
    assert_eq!(verdict, NotifyVerdict::Accept);
    assert_eq!(harness.events(), vec![health("a-1001", true)]);

    harness.respond(sent.id, ok(3600));
    let refresh = only_subscribe(&harness.next_actions());
    assert_eq!(harness.elapsed(), Duration::from_secs(2880), "the 2xx must start the refresh timer");
    assert_eq!(refresh.remote_tag.as_deref(), Some("n1"), "the NOTIFY must set the remote tag");
}

#[test]
fn lower_cseq_notify_is_stale() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 100);
    harness.events();

    // The notifier lost its dialog state: CSeq 100 then 3, body version reset.
    let verdict = harness.notify(first, 3, SubState::active(Some(1800)));
    assert_eq!(verdict, NotifyVerdict::Stale);
    assert_eq!(verdict.status_code(), 500);

    let recreate = only_subscribe(&harness.actions());
    assert_eq!(harness.elapsed(), Duration::ZERO, "the new SUBSCRIBE must go out at once");
    assert!(recreate.new_dialog, "a backwards CSeq must lead to a new dialog");
    assert_eq!(
        harness.notify(first, 4, SubState::active(Some(1800))),
        NotifyVerdict::UnknownSubscription,
        "the old dialog's later NOTIFYs must get 481"
    );
}

#[test]
fn equal_cseq_notify_is_stale() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 5);

    assert_eq!(harness.notify(first, 5, SubState::active(None)), NotifyVerdict::Stale);
}

#[test]
fn unknown_subscription_notify_gets_481() {
    let mut harness = Harness::new(config());

    let verdict = harness.notify(SubscriptionId(999), 1, SubState::active(Some(300)));

    assert_eq!(verdict, NotifyVerdict::UnknownSubscription);
    assert_eq!(verdict.status_code(), 481);
}

#[test]
fn notify_after_subscription_ended_gets_481() {
    let mut harness = Harness::new(ManagerConfig { unsubscribe_linger: Duration::from_secs(32), ..config() });
    let id = harness.establish(1001, 8);
    harness.set_targets(Vec::new());
    assert!(matches!(harness.actions()[..], [Action::SendUnsubscribe { .. }]));

    harness.advance(Duration::from_secs(33));
    harness.actions();

    assert_eq!(harness.notify(id, 9, SubState::active(Some(300))), NotifyVerdict::UnknownSubscription);
}

#[test]
fn forked_dialog_notify_gets_481() {
    let mut harness = Harness::new(config());
    let id = harness.establish(1001, 1);

    let mut forked = notify(2, SubState::active(None));
    forked.remote_tag = Some("n2".to_owned());

    assert_eq!(harness.manager.on_notify(harness.now, id, forked), NotifyVerdict::UnknownSubscription);
}

#[test]
fn terminated_timeout_recreates_at_once() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 7);
    harness.advance(Duration::from_secs(3600));

    let verdict = harness.notify(first, 8, SubState::terminated(Some(Reason::Timeout), None));
    let recreate = only_subscribe(&harness.actions());

    assert_eq!(verdict, NotifyVerdict::Accept);
    assert!(recreate.new_dialog, "terminated;reason=timeout must lead to a new dialog");
    assert_ne!(recreate.id, first, "the new dialog must get a new id");
    assert_eq!(recreate.cseq, 1, "a new dialog restarts the CSeq");
}

#[test]
fn repeated_deactivation_backs_off() {
    let mut harness = Harness::new(config());
    let first = harness.establish(1001, 1);

    harness.notify(first, 2, SubState::terminated(Some(Reason::Deactivated), None));
    let recreate = only_subscribe(&harness.actions());
    harness.respond(recreate.id, ok(3600));
    harness.notify(recreate.id, 1, SubState::terminated(Some(Reason::Deactivated), None));

    assert_eq!(harness.actions(), vec![], "a subscription ended again before it became active must wait for backoff");
}

#[test]
fn terminated_reasons_choose_retry() {
    enum Expected {
        Now,
        After(Duration),
        Backoff,
        Stop,
    }
    let cases = [
        (Some(Reason::Deactivated), None, Expected::Now),
        (Some(Reason::Timeout), None, Expected::Now),
        (Some(Reason::Probation), Some(120), Expected::After(Duration::from_secs(120))),
        (Some(Reason::Probation), None, Expected::Backoff),
        (Some(Reason::Giveup), Some(600), Expected::After(Duration::from_secs(600))),
        (Some(Reason::Giveup), None, Expected::Backoff),
        (None, None, Expected::Backoff),
        (None, Some(30), Expected::After(Duration::from_secs(30))),
        (Some(Reason::from_token("moved")), None, Expected::Backoff),
        (Some(Reason::Rejected), None, Expected::Stop),
        (Some(Reason::Noresource), None, Expected::Stop),
        (Some(Reason::Invariant), None, Expected::Stop),
    ];

    for (reason, retry_after, expected) in cases {
        let label = format!("{reason:?} retry-after {retry_after:?}");
        let mut harness = Harness::new(config());
        let first = harness.establish(1001, 1);
        harness.events();

        let verdict = harness.notify(first, 2, SubState::terminated(reason.clone(), retry_after));
        assert_eq!(verdict, NotifyVerdict::Accept, "{label}");
        let terminated_at = harness.now;
        let actions = harness.next_actions();
        let delay = harness.now - terminated_at;

        match expected {
            Expected::Now => {
                assert_eq!(delay, Duration::ZERO, "{label}");
                assert!(only_subscribe(&actions).new_dialog, "{label}");
            }
            Expected::After(after) => {
                assert_eq!(delay, after, "{label}");
                assert!(only_subscribe(&actions).new_dialog, "{label}");
            }
            Expected::Backoff => {
                assert!(delay >= Duration::from_secs(1), "{label}: retry after {delay:?}");
                assert!(delay <= Duration::from_secs(2), "{label}: retry after {delay:?}");
                assert!(only_subscribe(&actions).new_dialog, "{label}");
            }
            Expected::Stop => {
                assert_eq!(actions, vec![], "{label}: no SUBSCRIBE after a final reason");
                let reason = reason.clone().expect("stop cases carry a reason");
                assert_eq!(
                    harness.events(),
                    vec![
                        ManagerEvent::Failed {
                            agent: Arc::from("a-1001"),
                            aor: Arc::from("sip:1001@pbx.example.com"),
                            package: Package::Dialog,
                            reason: FailureReason::Terminated(reason),
                        },
                        health("a-1001", false),
                    ],
                    "{label}"
                );
            }
        }
    }
}

#[test]
fn unchallenged_401_then_noresource_stops() {
    let mut harness = Harness::new(config());
    let id = harness.establish(1001, 11);
    harness.events();

    // The refresh gets a 401 with no WWW-Authenticate, so the caller's digest
    // layer cannot handle it and passes it on.
    let refresh = only_subscribe(&harness.next_actions());
    harness.respond(refresh.id, status(401));
    assert_eq!(harness.actions(), vec![], "a 401 must not be retried at once");

    let failed_at = harness.now;
    let retry = only_subscribe(&harness.next_actions());
    assert!(harness.now - failed_at >= Duration::from_secs(1), "retry after {:?}", harness.now - failed_at);
    assert_eq!(retry.id, id, "the dialog stays valid until it expires");

    harness.respond(retry.id, status(401));
    let verdict = harness.notify(id, 13, SubState::terminated(Some(Reason::Noresource), None));
    assert_eq!(verdict, NotifyVerdict::Accept);

    assert!(
        matches!(
            harness.events()[..],
            [ManagerEvent::Failed { reason: FailureReason::Terminated(Reason::Noresource), .. }, _]
        ),
        "noresource must be reported as a failure"
    );
    assert_eq!(harness.next_actions(), vec![], "no SUBSCRIBE may follow noresource");
    assert_eq!(harness.manager.next_timeout(), None, "no timer may be left");
}

#[test]
fn repeated_401_refreshes_back_off() {
    let mut harness = Harness::new(config());
    harness.establish(1001, 1);

    let mut delays = Vec::new();
    let mut refresh = only_subscribe(&harness.next_actions());
    for _ in 0..4 {
        let failed_at = harness.now;
        harness.respond(refresh.id, status(401));
        refresh = only_subscribe(&harness.next_actions());
        delays.push(harness.now - failed_at);
    }

    for (index, pair) in delays.windows(2).enumerate() {
        assert!(pair[1] > pair[0], "delay {} must grow: {delays:?}", index + 1);
    }
}

#[test]
fn active_without_expires_keeps_timer() {
    let mut harness = Harness::new(config());
    let id = harness.establish(1001, 1);

    harness.advance(Duration::from_secs(1000));
    let verdict = harness.notify(id, 7, SubState::active(None));
    assert_eq!(verdict, NotifyVerdict::Accept);

    only_subscribe(&harness.next_actions());
    assert_eq!(harness.elapsed(), Duration::from_secs(2880), "the refresh must keep the 200 OK timer");
}

#[test]
fn notify_expires_only_moves_refresh_earlier() {
    let mut harness = Harness::new(config());
    let id = harness.establish(1001, 1);

    harness.advance(Duration::from_secs(1000));
    harness.notify(id, 2, SubState::active(Some(3600)));
    harness.advance(Duration::from_secs(1000));
    harness.notify(id, 3, SubState::active(Some(600)));

    only_subscribe(&harness.next_actions());
    assert_eq!(harness.elapsed(), Duration::from_secs(2480), "600 s left at 2000 s: refresh at 80 %");
}

#[test]
fn interval_too_brief_raises_expires() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    harness
        .respond(sent.id, SubscribeResponse { status: 423, min_expires: Some(7200), ..SubscribeResponse::default() });
    let retry = only_subscribe(&harness.actions());

    assert_eq!(retry.expires, 7200, "the retry must ask for Min-Expires");
    assert_eq!(harness.elapsed(), Duration::ZERO, "the retry must go out at once");
}

#[test]
fn interval_too_brief_without_min_expires_backs_off() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    harness.respond(sent.id, status(423));

    assert_eq!(harness.actions(), vec![], "a 423 that cannot be met must not loop");
}

#[test]
fn permanent_status_stops() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());

    harness.respond(sent.id, status(489));

    assert_eq!(
        harness.events(),
        vec![
            ManagerEvent::Failed {
                agent: Arc::from("a-1001"),
                aor: Arc::from("sip:1001@pbx.example.com"),
                package: Package::Dialog,
                reason: FailureReason::Rejected { status: 489 },
            },
            health("a-1001", false),
        ]
    );
    assert_eq!(harness.next_actions(), vec![], "489 must not be retried");
}

#[test]
fn failed_retry_tries_again() {
    let mut harness = Harness::new(ManagerConfig { failed_retry: Some(Duration::from_secs(1800)), ..config() });
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());
    harness.respond(sent.id, status(404));

    let retry = only_subscribe(&harness.next_actions());

    assert_eq!(harness.elapsed(), Duration::from_secs(1800));
    assert!(retry.new_dialog, "the retry must create a dialog");
}

#[test]
fn roster_follow_subscribes_and_unsubscribes() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001), agent(1002)]);
    let first = harness.actions();
    assert_eq!(first.len(), 2, "two targets, two SUBSCRIBEs: {first:?}");
    for action in &first {
        let sent = subscribe(action);
        harness.respond(sent.id, ok(3600));
        harness.notify(sent.id, 1, SubState::active(None));
    }
    let removed = subscribe(&first[1]);
    assert_eq!(&*removed.agent, "a-1002");

    harness.set_targets(vec![agent(1001), agent(1003)]);
    let actions = harness.actions();

    assert_eq!(actions.len(), 2, "one unsubscribe, one SUBSCRIBE: {actions:?}");
    assert_eq!(
        actions[0],
        Action::SendUnsubscribe {
            id: removed.id,
            agent: Arc::from("a-1002"),
            aor: Arc::from("sip:1002@pbx.example.com"),
            package: Package::Dialog,
            cseq: 2,
            remote: RemoteDialog { tag: Some("n1".to_owned()), target: Some("sip:pbx@192.0.2.60:5060".to_owned()) },
        }
    );
    let added = subscribe(&actions[1]);
    assert_eq!(&*added.agent, "a-1003");
    assert!(added.new_dialog, "a new target gets a new dialog");
    assert_eq!(harness.manager.subscription_count(), 2);

    let final_notify = harness.notify(removed.id, 2, SubState::terminated(Some(Reason::Timeout), None));
    assert_eq!(final_notify, NotifyVerdict::Accept, "the final NOTIFY after an unsubscribe gets 200");
    assert_eq!(harness.actions(), vec![], "an unsubscribed dialog is not re-created");
    assert_eq!(
        harness.notify(removed.id, 3, SubState::active(None)),
        NotifyVerdict::UnknownSubscription,
        "after the final NOTIFY the dialog is gone"
    );
}

#[test]
fn roster_removal_before_dialog_sends_nothing() {
    let mut harness = Harness::new(ManagerConfig { start_spread: Duration::from_secs(60), ..config() });
    harness.set_targets(vec![agent(1001), agent(1002)]);
    harness.actions();

    harness.set_targets(vec![agent(1001)]);

    assert_eq!(harness.actions(), vec![], "a target without a dialog needs no unsubscribe");
    assert_eq!(harness.manager.subscription_count(), 1);
}

#[test]
fn shutdown_unsubscribes_all() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1001), agent(1002), agent(1003)]);
    let sent: Vec<Sent> = harness.actions().iter().map(subscribe).collect();
    for established in &sent[..2] {
        harness.respond(established.id, ok(3600));
        harness.notify(established.id, 1, SubState::active(None));
    }

    harness.manager.shutdown(harness.now);
    let actions = harness.actions();

    let unsubscribed: Vec<SubscriptionId> = actions
        .iter()
        .map(|action| match action {
            Action::SendUnsubscribe { id, .. } => *id,
            other => panic!("expected SendUnsubscribe, got {other:?}"),
        })
        .collect();
    assert_eq!(unsubscribed, vec![sent[0].id, sent[1].id], "every established dialog is unsubscribed");
    assert!(!harness.manager.is_idle(), "final NOTIFYs are still expected");

    for id in &unsubscribed {
        harness.notify(*id, 2, SubState::terminated(Some(Reason::Timeout), None));
    }
    assert!(harness.manager.is_idle(), "after the final NOTIFYs nothing is left");

    harness.set_targets(vec![agent(1004)]);
    assert_eq!(harness.actions(), vec![], "targets after shutdown are ignored");
}

#[test]
fn health_waits_for_grace() {
    let mut harness = Harness::new(ManagerConfig { health_grace: Duration::from_secs(30), ..config() });
    let id = harness.establish(1001, 1);
    assert_eq!(harness.events(), vec![health("a-1001", true)]);

    harness.notify(id, 2, SubState::terminated(None, None));
    let recreate = only_subscribe(&harness.next_actions());
    harness.advance(Duration::from_secs(20));
    harness.actions();
    assert_eq!(harness.events(), vec![], "down for less than the grace period");

    harness.advance(Duration::from_secs(10));
    harness.actions();
    assert_eq!(harness.events(), vec![health("a-1001", false)]);

    harness.respond(recreate.id, ok(3600));
    harness.notify(recreate.id, 1, SubState::active(Some(3600)));
    assert_eq!(harness.events(), vec![health("a-1001", true)]);
}

#[test]
fn new_target_unhealthy_after_grace() {
    let mut harness = Harness::new(ManagerConfig { health_grace: Duration::from_secs(30), ..config() });
    harness.set_targets(vec![agent(1001)]);
    let sent = only_subscribe(&harness.actions());
    harness.respond(sent.id, ok(3600));
    harness.notify(sent.id, 1, SubState::pending(None));
    assert_eq!(harness.events(), vec![], "no report inside the grace period");

    harness.advance(Duration::from_secs(30));
    harness.actions();
    assert_eq!(harness.events(), vec![health("a-1001", false)], "pending is not active");

    harness.notify(sent.id, 2, SubState::active(None));
    assert_eq!(harness.events(), vec![health("a-1001", true)]);
}

#[test]
fn agent_healthy_only_when_all_packages_active() {
    let mut harness = Harness::new(ManagerConfig { packages: vec![Package::Dialog, Package::Presence], ..config() });
    harness.set_targets(vec![agent(1001)]);
    let sent: Vec<Sent> = harness.actions().iter().map(subscribe).collect();
    assert_eq!(sent.len(), 2, "one SUBSCRIBE per package");

    harness.notify(sent[0].id, 1, SubState::active(None));
    assert_eq!(harness.events(), vec![], "one of two packages active");

    harness.notify(sent[1].id, 1, SubState::active(None));
    assert_eq!(harness.events(), vec![health("a-1001", true)]);
}

#[test]
fn limits_report_failed_targets() {
    let mut harness = Harness::new(ManagerConfig { max_subscriptions: 2, ..config() });

    harness.set_targets(vec![agent(1001), agent(1002), agent(1003)]);

    assert_eq!(harness.actions().len(), 2, "only two subscriptions fit");
    assert_eq!(
        harness.events(),
        vec![
            ManagerEvent::Failed {
                agent: Arc::from("a-1003"),
                aor: Arc::from("sip:1003@pbx.example.com"),
                package: Package::Dialog,
                reason: FailureReason::LimitReached { max: 2 },
            },
            health("a-1003", false),
        ]
    );
}

#[test]
fn agent_limit_reports_failed_package() {
    let mut harness = Harness::new(ManagerConfig {
        packages: vec![Package::Dialog, Package::Presence, Package::Reg],
        max_subscriptions_per_agent: 2,
        ..config()
    });

    harness.set_targets(vec![agent(1001)]);

    assert_eq!(harness.actions().len(), 2, "two of three packages fit");
    assert!(
        matches!(
            harness.events()[..],
            [
                ManagerEvent::Failed { package: Package::Reg, reason: FailureReason::AgentLimitReached { max: 2 }, .. },
                ManagerEvent::Health { healthy: false, .. }
            ]
        ),
        "the third package must be reported"
    );
}

#[test]
fn same_seed_repeats_actions() {
    fn run(seed: u64) -> Vec<(Duration, Action)> {
        let mut harness = Harness::with_seed(config(), seed);
        harness.set_targets(vec![agent(1001), agent(1002)]);
        let mut log = Vec::new();
        for _ in 0..6 {
            for action in harness.next_actions() {
                harness.manager.on_timeout(harness.now, action.id());
                log.push((harness.elapsed(), action));
            }
        }
        log
    }

    assert_eq!(run(11), run(11));
}

#[test]
fn config_rejects_invalid_values() {
    let cases: Vec<(ManagerConfig, ConfigError)> = vec![
        (ManagerConfig { packages: Vec::new(), ..config() }, ConfigError::NoPackages),
        (ManagerConfig { requested_expires: 30, ..config() }, ConfigError::ExpiresTooShort(30)),
        (ManagerConfig { refresh_fraction: 1.0, ..config() }, ConfigError::RefreshFraction(1.0)),
        (
            ManagerConfig { min_retry: Duration::ZERO, ..config() },
            ConfigError::RetryRange { min: Duration::ZERO, max: Duration::from_secs(300) },
        ),
        (ManagerConfig { request_timeout: Duration::ZERO, ..config() }, ConfigError::RequestTimeout),
        (ManagerConfig { max_subscriptions: 0, ..config() }, ConfigError::ZeroLimit),
    ];

    for (config, expected) in cases {
        assert_eq!(SubscriptionManager::new(config, 1).err(), Some(expected.clone()), "{expected}");
    }
}

#[test]
fn package_event_tokens_round_trip() {
    for package in [Package::Dialog, Package::Presence, Package::Reg] {
        assert_eq!(Package::from_event(package.event()), Some(package));
    }
    assert_eq!(Package::from_event("message-summary"), None);
}

#[test]
fn refresh_now_sends_refresh_at_once() {
    let mut harness = Harness::new(config());
    let id = harness.establish(1, 1);
    assert!(harness.actions().is_empty(), "nothing is due right after the NOTIFY");

    harness.manager.refresh_now(harness.now, id);
    let sent = only_subscribe(&harness.actions());
    assert_eq!(sent.id, id, "the refresh stays in the dialog");
    assert!(!sent.new_dialog, "a refresh is not a new dialog");
}

#[test]
fn refresh_requested_before_ok_goes_out_after_it() {
    let mut harness = Harness::new(config());
    harness.set_targets(vec![agent(1)]);
    let sent = only_subscribe(&harness.actions());

    harness.manager.refresh_now(harness.now, sent.id);
    harness.respond(sent.id, ok(3600));
    let refresh = only_subscribe(&harness.actions());
    assert_eq!(refresh.id, sent.id, "the refresh stays in the dialog");
    assert!(!refresh.new_dialog, "a refresh is not a new dialog");
}
