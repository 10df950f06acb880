//! Feeds a sequence of parsed bodies to the per-AOR combiner
//! (`AgentSipState`) and checks that the events it returns form a
//! consistent call history.
//!
//! The input is a list of records, each `[op][length: u16 little-endian]
//! [body]`; a short last record takes the bytes that are left. `op % 5`
//! selects the action: 0 dialog-info, 1 PIDF, 2 reginfo (each body parsed
//! with the default limits and applied if it parses), 3 reset the version of
//! a package, 4 refresh. `op / 5` is the number of seconds the clock moves
//! on before the action. The first byte picks the site options.

#![no_main]

use std::collections::BTreeMap;

use floorwatch::domain::{CallDirection, EventKind};
use floorwatch::sip::agent_state::{AgentSipState, SipStateConfig, Update, VersionCheck};
use floorwatch::sip::body::{Limits, Package, parse_dialog_info, parse_pidf, parse_reginfo};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;

/// A small item limit, so the limit errors are reachable with small inputs.
const MAX_ITEMS: usize = 4;

/// Call phases as the returned events report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reported {
    Ringing,
    Connected,
    Held,
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, mut rest)) = data.split_first() else {
        return;
    };
    let config = SipStateConfig {
        unknown_direction: if options & 1 == 0 { CallDirection::Inbound } else { CallDirection::Outbound },
        expired_is_logout: options & 2 != 0,
        max_items: MAX_ITEMS,
        ..SipStateConfig::default()
    };
    let mut state = AgentSipState::new("sip:1001@pbx.example.com", config);
    let limits = Limits::default();
    let mut calls: BTreeMap<String, Reported> = BTreeMap::new();
    let mut now = Timestamp::from_second(1_711_846_800).expect("2024-03-31T01:00:00Z is a valid instant");

    while let Some((&op, after_op)) = rest.split_first() {
        let (body, next) = take_record(after_op);
        rest = next;
        now = now.saturating_add(SignedDuration::from_secs(i64::from(op / 5))).expect("a whole-second step is valid");

        let events = match op % 5 {
            0 => match parse_dialog_info(body, &limits) {
                Ok(doc) => state.apply_dialog_info(doc, now).map(checked).unwrap_or_default(),
                Err(_) => Vec::new(),
            },
            1 => match parse_pidf(body, &limits) {
                Ok(doc) => checked(state.apply_presence(doc, now)),
                Err(_) => Vec::new(),
            },
            2 => match parse_reginfo(body, &limits) {
                Ok(doc) => state.apply_reginfo(doc, now).map(checked).unwrap_or_default(),
                Err(_) => Vec::new(),
            },
            3 => {
                let package = [Package::DialogInfo, Package::Pidf, Package::RegInfo][body.len() % 3];
                state.reset_version(package);
                Vec::new()
            }
            _ => state.refresh(now),
        };

        for event in events {
            follow(&mut calls, event);
        }
        check_state(&state, &calls);
    }
});

/// Splits one record body off the front of `data`.
fn take_record(data: &[u8]) -> (&[u8], &[u8]) {
    let (length, data) = match data {
        [low, high, rest @ ..] => (usize::from(u16::from_le_bytes([*low, *high])), rest),
        _ => (0, &[][..]),
    };
    data.split_at(length.min(data.len()))
}

/// Returns the events of an update; a stale document must bring none.
fn checked(update: Update) -> Vec<EventKind> {
    if let VersionCheck::Stale { .. } = update.version {
        assert!(update.events.is_empty(), "stale document produced events: {:?}", update.events);
    }
    update.events
}

/// Applies one event to the call history, asserting it follows from it.
fn follow(calls: &mut BTreeMap<String, Reported>, event: EventKind) {
    match event {
        EventKind::CallRinging { call_id, .. } => {
            let before = calls.insert(call_id.clone(), Reported::Ringing);
            assert_eq!(before, None, "CallRinging for call {call_id:?} already reported");
        }
        EventKind::CallStart { call_id, .. } => {
            let before = calls.insert(call_id.clone(), Reported::Connected);
            assert!(
                matches!(before, None | Some(Reported::Ringing)),
                "CallStart for call {call_id:?} already {before:?}"
            );
        }
        EventKind::CallHold { call_id } => {
            let before = calls.insert(call_id.clone(), Reported::Held);
            assert_eq!(before, Some(Reported::Connected), "CallHold for call {call_id:?}");
        }
        EventKind::CallResume { call_id } => {
            let before = calls.insert(call_id.clone(), Reported::Connected);
            assert_eq!(before, Some(Reported::Held), "CallResume for call {call_id:?}");
        }
        EventKind::CallEnd { call_id } => {
            let before = calls.remove(&call_id);
            assert!(before.is_some(), "CallEnd for call {call_id:?} never reported");
        }
        EventKind::Login | EventKind::Logout | EventKind::State { .. } | EventKind::Device { .. } => {}
    }
}

/// Checks the state against its limits and the reported calls.
fn check_state(state: &AgentSipState, calls: &BTreeMap<String, Reported>) {
    let dialog_count = state.dialogs().dialogs().count();
    assert!(dialog_count <= MAX_ITEMS, "{dialog_count} dialogs tracked");

    let contact_count: usize = state.registration().registrations().values().map(|entry| entry.contacts.len()).sum();
    assert!(contact_count <= MAX_ITEMS, "{contact_count} active contacts tracked");

    let live = state.dialogs().calls();
    for call_id in calls.keys() {
        assert!(live.contains_key(call_id), "call {call_id:?} reported but no longer tracked, and never ended");
    }
}
