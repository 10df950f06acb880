//! SIP event bodies from the shared protocol corpus: the RFC 4235, 3863,
//! 4480 and 3680 examples and the bodies that broke other software, parsed
//! and applied to the per-AOR state, checked against the behaviour the
//! corpus table expects. Also feeds every corpus body, and thousands of
//! mangled variants, through each parser to show none of them panics.
//!
//! The corpus is read from `../shared/corpus/` beside the crate, where CI
//! clones it.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use floorwatch::domain::{CallDirection, EventKind};
use floorwatch::sip::agent_state::{
    AgentSipState, LineActivity, RegistrationEnd, SipStateConfig, StateError, Update, VersionCheck,
};
use floorwatch::sip::body::{
    BasicStatus, BodyError, ContactEvent, DialogDirection, DialogInfo, DialogPhase, DocumentState, Limits, Presence,
    RegInfo, Rendering, parse_dialog_info, parse_pidf, parse_reginfo,
};
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const AOR: &str = "sip:1001@pbx.example.com";

/// Files in scope for the body parsers; the SIPREC examples are not.
const BODY_FILES: [&str; 28] = [
    "rfc-bodies/RFC3680-reginfo-full-two-contacts.xml",
    "rfc-bodies/RFC3680-reginfo-init.xml",
    "rfc-bodies/RFC3680-reginfo-partial-deactivated.xml",
    "rfc-bodies/RFC3680-reginfo-partial-registered.xml",
    "rfc-bodies/RFC3863-pidf-example.xml",
    "rfc-bodies/RFC4235-all-elements.xml",
    "rfc-bodies/RFC4235-full-early.xml",
    "rfc-bodies/RFC4235-full-no-dialogs.xml",
    "rfc-bodies/RFC4235-full-trying-no-remote-tag.xml",
    "rfc-bodies/RFC4235-partial-confirmed.xml",
    "rfc-bodies/RFC4235-partial-terminated-rejected.xml",
    "rfc-bodies/RFC4480-rpid-example.xml",
    "cases/B01-dialoginfo-busy.1.xml",
    "cases/B01-dialoginfo-no-dialog-node.2.xml",
    "cases/B04-dialoginfo-dialog-without-state.xml",
    "cases/B05-dialoginfo-selfclosing-wide-spacing.xml",
    "cases/B06-dialoginfo-asterisk-id-only.1.xml",
    "cases/B06-dialoginfo-asterisk-id-only.2.xml",
    "cases/B07-notify-cseq-backwards.1.sip",
    "cases/B07-notify-cseq-backwards.2.sip",
    "cases/B08-pidf-all-prefixed-ep.xml",
    "cases/B09-pidf-prefixed-root-default-ns-tuple.xml",
    "cases/B11-pidf-asterisk-on-the-phone.xml",
    "cases/B12-pidf-tuple-id-leading-digit.xml",
    "cases/B13-reginfo-gruu-escaped-contact-id.xml",
    "cases/B14-reginfo-unknown-param.xml",
    // Two near-misses: a SIPREC metadata body must be rejected cleanly.
    "rfc-bodies/RFC7865-metadata-complete.xml",
    "cases/B19-siprec-meta-empty-user-aor.xml",
];

fn corpus(relative: &str) -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus").join(relative);
    std::fs::read(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// Returns the body of a SIP message file: everything after the first
/// empty line.
fn sip_body(relative: &str) -> Vec<u8> {
    let message = corpus(relative);
    let text = String::from_utf8(message).expect("corpus SIP messages are UTF-8");
    let (_, body) = text.split_once("\r\n\r\n").or_else(|| text.split_once("\n\n")).expect("message must have a body");
    body.as_bytes().to_vec()
}

fn dialog(relative: &str) -> DialogInfo {
    parse_dialog_info(&corpus(relative), &Limits::default()).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn pidf(relative: &str) -> Presence {
    parse_pidf(&corpus(relative), &Limits::default()).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn reginfo(relative: &str) -> RegInfo {
    parse_reginfo(&corpus(relative), &Limits::default()).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn now() -> Timestamp {
    "2026-12-04T10:00:00Z".parse().expect("fixed instant must parse")
}

fn agent() -> AgentSipState {
    AgentSipState::new(AOR, SipStateConfig::default())
}

fn apply_dialog(agent: &mut AgentSipState, relative: &str) -> Update {
    agent.apply_dialog_info(dialog(relative), now()).expect("dialog state must accept the document")
}

fn apply_reg(agent: &mut AgentSipState, relative: &str) -> Update {
    agent.apply_reginfo(reginfo(relative), now()).expect("reg state must accept the document")
}

fn dialog_body(version: u64, state: &str, dialogs: &str) -> DialogInfo {
    let body = format!(
        r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="{state}" entity="{AOR}">{dialogs}</dialog-info>"#
    );
    parse_dialog_info(body.as_bytes(), &Limits::default()).expect("test document must parse")
}

fn reg_body(version: u64, registration_state: &str, contact: &str) -> RegInfo {
    let body = format!(
        r#"<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="{version}" state="full">
           <registration aor="{AOR}" id="r1" state="{registration_state}">{contact}</registration></reginfo>"#
    );
    parse_reginfo(body.as_bytes(), &Limits::default()).expect("test document must parse")
}

fn ringing(call_id: &str, direction: CallDirection) -> EventKind {
    EventKind::CallRinging { call_id: call_id.to_string(), direction }
}

fn start(call_id: &str, direction: CallDirection) -> EventKind {
    EventKind::CallStart { call_id: call_id.to_string(), direction }
}

fn end(call_id: &str) -> EventKind {
    EventKind::CallEnd { call_id: call_id.to_string() }
}

fn state(code: &str) -> EventKind {
    EventKind::State { code: code.to_string() }
}

// === RFC examples: dialog-info ===

#[test]
fn r01_early_dialog_rings() {
    let doc = dialog("rfc-bodies/RFC4235-full-early.xml");
    assert_eq!(doc.version, 0);
    assert_eq!(doc.state, DocumentState::Full);

    let mut agent = agent();
    let update = agent.apply_dialog_info(doc, now()).unwrap();
    assert_eq!(update.version, VersionCheck::InOrder);
    assert_eq!(update.events, [ringing("a84b4c76e66710", CallDirection::Outbound)]);
    assert_eq!(agent.dialogs().activity(), LineActivity::Ringing);
}

#[test]
fn r02_missing_remote_tag_accepted() {
    let doc = dialog("rfc-bodies/RFC4235-full-trying-no-remote-tag.xml");
    let only = &doc.dialogs[0];
    assert_eq!(only.remote_tag, None);
    assert_eq!(only.phase(), Some(DialogPhase::Trying));

    let mut agent = agent();
    let update = agent.apply_dialog_info(doc, now()).unwrap();
    assert_eq!(update.events, [ringing("a84b4c76e66710", CallDirection::Outbound)]);
}

#[test]
fn r03_partial_confirmed_merges() {
    let mut agent = agent();
    apply_dialog(&mut agent, "rfc-bodies/RFC4235-full-early.xml");
    let update = apply_dialog(&mut agent, "rfc-bodies/RFC4235-partial-confirmed.xml");

    assert_eq!(update.version, VersionCheck::InOrder);
    assert_eq!(update.events, [start("a84b4c76e66710", CallDirection::Outbound)]);
    assert_eq!(agent.dialogs().activity(), LineActivity::OnCall);
    let remote = agent.dialogs().dialog("as7d900as8").and_then(|d| d.remote.clone()).expect("remote party known");
    assert_eq!(remote.identity.as_deref(), Some("sip:bob@example.net"));
    assert_eq!(remote.display.as_deref(), Some("Bob"));
}

#[test]
fn r04_terminated_keeps_reason() {
    let mut agent = agent();
    apply_dialog(&mut agent, "rfc-bodies/RFC4235-full-early.xml");
    apply_dialog(&mut agent, "rfc-bodies/RFC4235-partial-confirmed.xml");
    let update = apply_dialog(&mut agent, "rfc-bodies/RFC4235-partial-terminated-rejected.xml");

    assert_eq!(update.events, [end("a84b4c76e66710")]);
    assert!(agent.dialogs().dialog("as7d900as8").is_none(), "terminated dialog must be removed");
    let ended = agent.dialogs().last_ended("as7d900as8").expect("reason kept");
    assert_eq!(ended.event.as_deref(), Some("rejected"));
    assert_eq!(ended.code, Some(486));
    assert_eq!(agent.dialogs().activity(), LineActivity::Idle);
}

#[test]
fn r05_no_dialogs_is_idle() {
    let mut agent = agent();
    let update = apply_dialog(&mut agent, "rfc-bodies/RFC4235-full-no-dialogs.xml");
    assert!(update.events.is_empty(), "{:?}", update.events);
    assert_eq!(agent.dialogs().activity(), LineActivity::Idle);
}

#[test]
fn r06_all_elements_parse() {
    let doc = dialog("rfc-bodies/RFC4235-all-elements.xml");
    assert_eq!(doc.entity.as_deref(), Some("sip:bob@example.com"));
    assert_eq!(doc.dialogs.len(), 2);

    let first = &doc.dialogs[0];
    assert_eq!(first.direction, Some(DialogDirection::Recipient));
    assert_eq!(first.duration, Some(12));
    let remote = first.remote.as_ref().expect("remote");
    assert_eq!(remote.display.as_deref(), Some(r#"Caller "5550100" & Co"#));
    assert_eq!(remote.identity.as_deref(), Some("tel:+15555550100"));
    let local = first.local.as_ref().expect("local");
    assert_eq!(local.target.as_deref(), Some("sip:bob@192.0.2.21:5060"));
    assert_eq!(local.rendering, Some(Rendering::Yes));
    assert!(!first.is_held());

    let mut agent = agent();
    let update = agent.apply_dialog_info(doc, now()).unwrap();
    assert_eq!(agent.dialogs().activity(), LineActivity::OnCall, "busy wins over early");
    assert_eq!(
        update.events,
        [
            start("b9a7c3@pc33.example.com", CallDirection::Inbound),
            ringing("c1d2e3@pc33.example.com", CallDirection::Inbound)
        ]
    );
}

// === RFC examples: PIDF and RPID ===

#[test]
fn r07_pidf_open_ignores_extensions() {
    let doc = pidf("rfc-bodies/RFC3863-pidf-example.xml");
    assert_eq!(doc.tuples.len(), 2);
    assert!(doc.tuples.iter().all(|t| t.basic == Some(BasicStatus::Open)));
    let langs: Vec<Option<&str>> = doc.tuples[0].notes.iter().map(|n| n.lang.as_deref()).collect();
    assert_eq!(langs, [Some("en"), Some("fr")]);
    assert_eq!(doc.notes[0].text, "I'll be in Tokyo next week");

    let mut agent = agent();
    assert_eq!(agent.apply_presence(doc, now()).events, [state("presence:open")]);
}

#[test]
fn r08_rpid_away_in_window() {
    let doc = pidf("rfc-bodies/RFC4480-rpid-example.xml");
    let person = &doc.persons[0];
    assert_eq!(person.id.as_deref(), Some("p1"));
    assert_eq!(person.activities.len(), 1, "mood, place and the rest are not activities");
    let activities = &person.activities[0];
    let names: Vec<&str> = activities.items.iter().map(|a| a.as_str()).collect();
    assert_eq!(names, ["away"]);
    assert_eq!(activities.from, Some("2005-05-30T07:00:00Z".parse().unwrap()));
    assert_eq!(activities.until, Some("2005-05-30T12:00:00Z".parse().unwrap()));
    assert_eq!(activities.notes[0].text, "Far away");

    let inside: Timestamp = "2005-05-30T08:00:00Z".parse().unwrap();
    let mut agent = agent();
    assert_eq!(agent.apply_presence(doc, inside).events, [state("rpid:away")]);
    assert_eq!(agent.refresh(now()), [state("presence:open")], "away ended at its until");
}

// === RFC examples: reginfo ===

#[test]
fn r09_init_is_not_registered() {
    let doc = reginfo("rfc-bodies/RFC3680-reginfo-init.xml");
    assert_eq!(doc.registrations[0].aor, "sip:joe@example.com");

    let mut agent = agent();
    let update = agent.apply_reginfo(doc, now()).unwrap();
    assert_eq!(agent.is_registered(), Some(false));
    assert_eq!(agent.registration().end(), Some(RegistrationEnd::NeverRegistered));
    assert_eq!(update.events, [EventKind::Logout]);
}

#[test]
fn r10_registered_contact_logs_in() {
    let mut agent = agent();
    apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-init.xml");
    let update = apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-partial-registered.xml");

    assert_eq!(update.version, VersionCheck::InOrder);
    assert_eq!(agent.is_registered(), Some(true));
    assert_eq!(update.events, [EventKind::Login, EventKind::Device { registered: true }]);
}

#[test]
fn r11_one_live_contact_is_active() {
    let mut agent = agent();
    let update = apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-full-two-contacts.xml");
    assert_eq!(agent.is_registered(), Some(true));
    assert_eq!(agent.registration().registrations()["as9"].contacts.len(), 1);
    assert_eq!(update.events, [EventKind::Login, EventKind::Device { registered: true }]);
}

#[test]
fn r12_unregistered_logs_out() {
    let mut agent = agent();
    apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-init.xml");
    apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-partial-registered.xml");
    let update = apply_reg(&mut agent, "rfc-bodies/RFC3680-reginfo-partial-deactivated.xml");

    assert_eq!(agent.is_registered(), Some(false));
    assert_eq!(agent.registration().end(), Some(RegistrationEnd::Deregistered(ContactEvent::Unregistered)));
    assert_eq!(update.events, [EventKind::Logout]);
}

// === cases that broke other software ===

#[test]
fn b01_empty_full_is_idle() {
    let mut agent = agent();
    let busy = apply_dialog(&mut agent, "cases/B01-dialoginfo-busy.1.xml");
    assert_eq!(busy.events, [start("c1@192.0.2.60", CallDirection::Inbound)]);

    let idle = apply_dialog(&mut agent, "cases/B01-dialoginfo-no-dialog-node.2.xml");
    assert_eq!(idle.events, [end("c1@192.0.2.60")]);
    assert_eq!(agent.dialogs().activity(), LineActivity::Idle);
}

#[test]
fn b04_missing_state_is_unknown() {
    let doc = dialog("cases/B04-dialoginfo-dialog-without-state.xml");
    assert_eq!(doc.dialogs[0].status, None);

    let mut agent = agent();
    let update = agent.apply_dialog_info(doc, now()).unwrap();
    assert_eq!(agent.dialogs().activity(), LineActivity::Unknown, "state unknown, not idle");
    assert!(update.events.is_empty(), "no phase may be claimed: {:?}", update.events);
}

#[test]
fn b04_missing_state_keeps_call() {
    let mut agent = agent();
    let confirmed = dialog_body(1, "full", r#"<dialog id="1004"><state>confirmed</state></dialog>"#);
    agent.apply_dialog_info(confirmed, now()).unwrap();

    let update = apply_dialog(&mut agent, "cases/B04-dialoginfo-dialog-without-state.xml");
    assert!(update.events.is_empty(), "a stateless dialog must not end the call: {:?}", update.events);
}

#[test]
fn b05_selfclosing_root_is_idle() {
    let doc = dialog("cases/B05-dialoginfo-selfclosing-wide-spacing.xml");
    assert_eq!(doc.state, DocumentState::Full);
    assert!(doc.dialogs.is_empty());

    let mut agent = agent();
    agent.apply_dialog_info(doc, now()).unwrap();
    assert_eq!(agent.dialogs().activity(), LineActivity::Idle);
}

#[test]
fn b06_id_only_busy_then_idle() {
    let mut agent = agent();
    let busy = apply_dialog(&mut agent, "cases/B06-dialoginfo-asterisk-id-only.1.xml");
    assert_eq!(busy.events, [start("103", CallDirection::Inbound)]);
    assert_eq!(agent.dialogs().activity(), LineActivity::OnCall);

    let idle = apply_dialog(&mut agent, "cases/B06-dialoginfo-asterisk-id-only.2.xml");
    assert_eq!(idle.events, [end("103")]);
    assert_eq!(agent.dialogs().activity(), LineActivity::Idle);
}

#[test]
fn b07_version_reset_is_stale() {
    let limits = Limits::default();
    let first = parse_dialog_info(&sip_body("cases/B07-notify-cseq-backwards.1.sip"), &limits).unwrap();
    let second = parse_dialog_info(&sip_body("cases/B07-notify-cseq-backwards.2.sip"), &limits).unwrap();

    let mut agent = agent();
    agent.apply_dialog_info(first, now()).unwrap();
    let update = agent.apply_dialog_info(second, now()).unwrap();
    assert_eq!(update.version, VersionCheck::Stale { last: 41 });
    assert!(update.events.is_empty());
    assert_eq!(agent.dialogs().activity(), LineActivity::OnCall, "stale terminated must not apply");
}

#[test]
fn b08_all_prefixed_is_open() {
    let doc = pidf("cases/B08-pidf-all-prefixed-ep.xml");
    assert_eq!(doc.tuples[0].basic, Some(BasicStatus::Open));
    assert_eq!(agent().apply_presence(doc, now()).events, [state("presence:open")]);
}

#[test]
fn b09_default_ns_tuple_is_open() {
    let doc = pidf("cases/B09-pidf-prefixed-root-default-ns-tuple.xml");
    assert_eq!(doc.tuples[0].id, "03a4a00b8ed448c296193b83cd7eb9d4");
    assert_eq!(doc.tuples[0].basic, Some(BasicStatus::Open));
}

#[test]
fn b11_person_on_the_phone() {
    let doc = pidf("cases/B11-pidf-asterisk-on-the-phone.xml");
    assert_eq!(doc.tuples[0].basic, Some(BasicStatus::Open));

    let mut agent = agent();
    assert_eq!(agent.apply_presence(doc, now()).events, [state("rpid:on-the-phone")]);
}

#[test]
fn b11_dialog_package_wins() {
    let mut agent = agent();
    apply_dialog(&mut agent, "rfc-bodies/RFC4235-full-no-dialogs.xml");
    let update = agent.apply_presence(pidf("cases/B11-pidf-asterisk-on-the-phone.xml"), now());
    assert_eq!(update.events, [state("presence:open")], "calls come from the dialog package");
}

#[test]
fn b12_leading_digit_tuple_closed() {
    let doc = pidf("cases/B12-pidf-tuple-id-leading-digit.xml");
    assert_eq!(doc.tuples[0].id, "0b3c7f2e");
    assert_eq!(doc.tuples[0].basic, Some(BasicStatus::Closed));
    assert_eq!(agent().apply_presence(doc, now()).events, [state("presence:closed")]);
}

#[test]
fn b13_expired_contact_unregisters() {
    let doc = reginfo("cases/B13-reginfo-gruu-escaped-contact-id.xml");
    let contact = &doc.registrations[0].contacts[0];
    assert_eq!(contact.id, "<urn:uuid:e123d008-44f5-5b24-9993-2b63d43f625d>");
    assert_eq!(contact.event, ContactEvent::Expired);

    let mut agent = agent();
    let update = agent.apply_reginfo(doc, now()).unwrap();
    assert_eq!(agent.is_registered(), Some(false), "AOR no longer registered, whatever the event");
    assert_eq!(agent.registration().end(), Some(RegistrationEnd::Lost(Some(ContactEvent::Expired))));
    assert_eq!(update.events, [EventKind::Device { registered: false }]);
}

#[test]
fn b13_expired_as_logout_option() {
    let config = SipStateConfig { expired_is_logout: true, ..SipStateConfig::default() };
    let mut agent = AgentSipState::new(AOR, config);
    let update = apply_reg(&mut agent, "cases/B13-reginfo-gruu-escaped-contact-id.xml");
    assert_eq!(update.events, [EventKind::Logout]);
}

#[test]
fn b14_unknown_param_ignored() {
    let doc = reginfo("cases/B14-reginfo-unknown-param.xml");
    let contact = &doc.registrations[0].contacts[0];
    assert_eq!(contact.q, Some(0.5));
    assert_eq!(contact.expires, Some(595));
    assert_eq!(contact.uri, "sip:1007@192.0.2.103:21061;ob;alias=192.0.2.103~21061~1");

    let mut agent = agent();
    let update = agent.apply_reginfo(doc, now()).unwrap();
    assert_eq!(update.events, [EventKind::Login, EventKind::Device { registered: true }]);
}

// === combining the packages ===

#[test]
fn lost_registration_holds_presence() {
    let active = r#"<contact id="c1" state="active" event="registered"><uri>sip:1001@192.0.2.7</uri></contact>"#;
    let expired = r#"<contact id="c1" state="terminated" event="expired"><uri>sip:1001@192.0.2.7</uri></contact>"#;
    let mut agent = agent();
    agent.apply_reginfo(reg_body(0, "active", active), now()).unwrap();
    agent.apply_presence(pidf("cases/B08-pidf-all-prefixed-ep.xml"), now());

    let lost = agent.apply_reginfo(reg_body(1, "terminated", expired), now()).unwrap();
    assert_eq!(lost.events, [EventKind::Device { registered: false }]);
    let held_back = agent.apply_presence(pidf("cases/B12-pidf-tuple-id-leading-digit.xml"), now());
    assert!(held_back.events.is_empty(), "presence must not speak while lost: {:?}", held_back.events);

    let back = agent.apply_reginfo(reg_body(2, "active", active), now()).unwrap();
    assert_eq!(back.events, [EventKind::Device { registered: true }, state("presence:closed")]);
}

#[test]
fn rendering_no_holds_and_resumes() {
    let confirmed = |version, rendering: &str| {
        dialog_body(
            version,
            "partial",
            &format!(
                r#"<dialog id="d1" call-id="c9@192.0.2.9" direction="recipient"><state>confirmed</state>
                   <local><target uri="sip:1001@192.0.2.7"><param pname="+sip.rendering" pval="{rendering}"/></target></local></dialog>"#
            ),
        )
    };
    let mut agent = agent();
    agent.apply_dialog_info(dialog_body(0, "full", ""), now()).unwrap();
    agent.apply_dialog_info(confirmed(1, "yes"), now()).unwrap();

    let held = agent.apply_dialog_info(confirmed(2, "no"), now()).unwrap();
    assert_eq!(held.events, [EventKind::CallHold { call_id: "c9@192.0.2.9".into() }]);
    assert_eq!(agent.dialogs().activity(), LineActivity::Held);

    let resumed = agent.apply_dialog_info(confirmed(3, "yes"), now()).unwrap();
    assert_eq!(resumed.events, [EventKind::CallResume { call_id: "c9@192.0.2.9".into() }]);
}

#[test]
fn forked_dialogs_are_one_call() {
    let forks = r#"<dialog id="f1" call-id="fork@192.0.2.9" local-tag="l" remote-tag="r1" direction="initiator"><state>early</state></dialog>
                   <dialog id="f2" call-id="fork@192.0.2.9" local-tag="l" remote-tag="r2" direction="initiator"><state>early</state></dialog>"#;
    let mut agent = agent();
    let ringing_update = agent.apply_dialog_info(dialog_body(0, "full", forks), now()).unwrap();
    assert_eq!(ringing_update.events, [ringing("fork@192.0.2.9", CallDirection::Outbound)]);

    let answered = r#"<dialog id="f1" call-id="fork@192.0.2.9"><state>confirmed</state></dialog>
                      <dialog id="f2" call-id="fork@192.0.2.9"><state event="cancelled">terminated</state></dialog>"#;
    let update = agent.apply_dialog_info(dialog_body(1, "partial", answered), now()).unwrap();
    assert_eq!(update.events, [start("fork@192.0.2.9", CallDirection::Outbound)]);
}

#[test]
fn partial_after_gap_is_flagged() {
    let mut agent = agent();
    agent.apply_dialog_info(dialog_body(0, "full", ""), now()).unwrap();
    let update = agent
        .apply_dialog_info(dialog_body(5, "partial", r#"<dialog id="d"><state>early</state></dialog>"#), now())
        .unwrap();
    assert_eq!(update.version, VersionCheck::Gap);
}

#[test]
fn new_subscription_resets_version() {
    let mut agent = agent();
    agent
        .apply_dialog_info(dialog_body(9, "full", r#"<dialog id="d"><state>confirmed</state></dialog>"#), now())
        .unwrap();
    agent.reset_version(floorwatch::sip::body::Package::DialogInfo);

    let update = agent.apply_dialog_info(dialog_body(0, "full", ""), now()).unwrap();
    assert_eq!(update.version, VersionCheck::InOrder);
    assert_eq!(update.events, [end("d")]);
}

#[test]
fn presence_codes_are_renamed() {
    let config = SipStateConfig {
        presence_codes: BTreeMap::from([("presence:open".into(), "Beschikbaar".into())]),
        ..Default::default()
    };
    let mut agent = AgentSipState::new(AOR, config);
    let update = agent.apply_presence(pidf("cases/B09-pidf-prefixed-root-default-ns-tuple.xml"), now());
    assert_eq!(update.events, [state("Beschikbaar")]);
}

#[test]
fn dialog_limit_spans_partials() {
    let config = SipStateConfig { max_items: 2, ..SipStateConfig::default() };
    let mut agent = AgentSipState::new(AOR, config);
    agent.apply_dialog_info(dialog_body(0, "full", ""), now()).unwrap();
    for (version, id) in [(1, "a"), (2, "b")] {
        let body = format!(r#"<dialog id="{id}"><state>early</state></dialog>"#);
        agent.apply_dialog_info(dialog_body(version, "partial", &body), now()).unwrap();
    }

    let third = dialog_body(3, "partial", r#"<dialog id="c"><state>early</state></dialog>"#);
    let err = agent.apply_dialog_info(third, now()).unwrap_err();
    assert!(matches!(err, StateError::TooManyDialogs { limit: 2, .. }), "{err}");
    assert_eq!(agent.dialogs().dialogs().count(), 2, "state unchanged");
}

#[test]
fn oversized_body_names_limit() {
    let limits = Limits { max_body_bytes: 100, ..Limits::default() };
    let err = parse_dialog_info(&corpus("rfc-bodies/RFC4235-all-elements.xml"), &limits).unwrap_err();
    assert!(matches!(err, BodyError::TooLarge { limit: 100, .. }), "{err}");
    assert!(err.to_string().contains("limit of 100 bytes"), "{err}");
}

// === no panic on any input ===

/// Runs every parser on `body`, applies what parses to a fresh state, and
/// returns true when any parser accepted it.
fn exercise(body: &[u8]) -> bool {
    let limits = Limits::default();
    let mut agent = agent();
    let mut accepted = false;
    if let Ok(doc) = parse_dialog_info(body, &limits) {
        accepted = true;
        let _ = agent.apply_dialog_info(doc, now());
    }
    if let Ok(doc) = parse_pidf(body, &limits) {
        accepted = true;
        let _ = agent.apply_presence(doc, now());
    }
    if let Ok(doc) = parse_reginfo(body, &limits) {
        accepted = true;
        let _ = agent.apply_reginfo(doc, now());
    }
    accepted
}

fn exercise_or_report(name: &str, variant: &str, body: &[u8]) -> bool {
    match catch_unwind(AssertUnwindSafe(|| exercise(body))) {
        Ok(accepted) => accepted,
        Err(_) => panic!("{name}: parsing panicked on {variant}: {:?}", String::from_utf8_lossy(body)),
    }
}

#[test]
fn corpus_truncations_never_panic() {
    for name in BODY_FILES {
        let body = corpus(name);
        for len in 0..=body.len() {
            exercise_or_report(name, &format!("truncation to {len} bytes"), &body[..len]);
        }
    }
}

#[test]
fn corpus_mutations_never_panic() {
    const MUTATIONS_PER_FILE: usize = 2000;
    const TOKENS: [&[u8]; 10] =
        [b"<", b">", b"&", b"</", b"/>", b"\"", b"&#0;", b"&#x110000;", b"xmlns:x=\"\"", b"<![CDATA[x]]>"];

    let mut rng = StdRng::seed_from_u64(0x5eed_b0d1);
    let mut accepted = 0;
    for name in BODY_FILES {
        let original = corpus(name);
        for round in 0..MUTATIONS_PER_FILE {
            let mut body = original.clone();
            for _ in 0..rng.random_range(1..=4) {
                mutate(&mut body, &mut rng, &TOKENS);
            }
            if exercise_or_report(name, &format!("mutation {round}"), &body) {
                accepted += 1;
            }
        }
    }

    // Both outcomes must occur, or the mutations test only one path.
    let total = BODY_FILES.len() * MUTATIONS_PER_FILE;
    assert!(accepted > 0, "no mutated body parsed");
    assert!(accepted < total, "every mutated body parsed");
}

fn mutate(body: &mut Vec<u8>, rng: &mut StdRng, tokens: &[&[u8]]) {
    if body.is_empty() {
        body.extend_from_slice(tokens[rng.random_range(0..tokens.len())]);
        return;
    }
    let at = rng.random_range(0..body.len());
    match rng.random_range(0..6) {
        0 => body[at] = rng.random(),
        1 => body[at] ^= 1 << rng.random_range(0..8),
        2 => body.truncate(at),
        3 => {
            let to = rng.random_range(at..=body.len().min(at + 32));
            body.drain(at..to);
        }
        4 => {
            let token = tokens[rng.random_range(0..tokens.len())];
            body.splice(at..at, token.iter().copied());
        }
        _ => {
            let to = rng.random_range(at..=body.len().min(at + 64));
            let copy = body[at..to].to_vec();
            body.splice(to..to, copy);
        }
    }
}
