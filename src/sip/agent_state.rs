//! Per-AOR state built from the three event packages, and the normalized
//! agent events it implies.
//!
//! [`DialogState`], [`PresenceState`] and [`RegState`] each keep what one
//! package has reported for one AOR: they apply documents in version order,
//! merge partial documents and drop stale ones. [`AgentSipState`] owns one
//! of each, combines them into one view of the agent, and returns the
//! [`EventKind`] transitions between the view it reported last and the view
//! now. Everything here is pure: the caller passes the parsed document and
//! `now`, and sends the returned events to the ingest pipeline itself. The
//! rules for combining the packages are in `docs/integration/sip.md`.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use thiserror::Error;

use crate::domain::{CallDirection, EventKind};
use crate::sip::body::{
    ContactEvent, ContactState, Dialog, DialogDirection, DialogInfo, DialogPhase, DocumentState, Package, Presence,
    RegInfo, Registration, RegistrationState,
};

/// Default maximum number of dialogs, and of active contacts, tracked per
/// AOR; partial documents add up to it.
pub const DEFAULT_MAX_ITEMS: usize = 256;

/// How many ended dialogs are kept with their reason.
const MAX_ENDED_DIALOGS: usize = 32;

/// RPID activities that only mean the person is in a call; see
/// [`PresenceState::code`].
const CALL_ACTIVITIES: [&str; 2] = ["on-the-phone", "busy"];

/// Relation of a versioned document (dialog-info, reginfo) to the last one
/// applied in the same subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// Applied; the version followed the last one, or the document was full.
    InOrder,
    /// Applied, but it is a partial document with no full one before it, or
    /// versions were skipped: the state may miss changes, so the caller
    /// should refresh the subscription to get a full document.
    Gap,
    /// Not applied: the version is not greater than `last`, the last one
    /// applied (RFC 4235 §4.1, RFC 3680 §5.4).
    Stale { last: u64 },
}

/// Error from applying a document. The state is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    #[error("{aor}: applying the dialog-info document would track {count} dialogs, more than the limit of {limit}")]
    TooManyDialogs { aor: String, count: usize, limit: usize },
    #[error("{aor}: applying the reginfo document would track {count} active contacts, more than the limit of {limit}")]
    TooManyContacts { aor: String, count: usize, limit: usize },
}

// === dialog package ===

/// The dialogs one AOR is in, merged from dialog-info documents.
///
/// Invariant: no stored dialog is terminated; a terminated dialog is removed
/// and its reason kept in [`DialogState::ended`].
#[derive(Debug, Clone)]
pub struct DialogState {
    /// Version of the last document applied in the current subscription.
    version: Option<u64>,
    /// True once any document was applied, across subscriptions.
    has_state: bool,
    dialogs: BTreeMap<String, Dialog>,
    ended: VecDeque<EndedDialog>,
    max_dialogs: usize,
}

/// A dialog that ended, with the reason its last `<state>` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedDialog {
    pub id: String,
    pub call_id: Option<String>,
    /// The `event` attribute (`rejected`, `remote-bye`, …); `None` when the
    /// dialog was dropped from a full document without a terminated state.
    pub event: Option<String>,
    pub code: Option<u16>,
}

/// Activity of the AOR's line, from the dialog package alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineActivity {
    /// No dialog.
    Idle,
    /// Only dialogs whose document gave no `<state>`: something is going on,
    /// but not what.
    Unknown,
    /// A call is ringing or being set up, none is connected.
    Ringing,
    /// Every connected call is held.
    Held,
    /// At least one call is connected and not held.
    OnCall,
}

/// The phase of one call: the dialogs that share its call key, combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallPhase {
    /// No dialog of the call has a `<state>`.
    Unknown,
    Ringing,
    Connected,
    Held,
}

/// One call as the dialog package shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// The Call-ID, or the dialog id when the document gave no Call-ID.
    pub call_id: String,
    pub direction: Option<DialogDirection>,
    pub phase: CallPhase,
}

// === presence package ===

/// The last presence document of one AOR. PIDF documents carry the whole
/// state and no version, so each one replaces the previous.
#[derive(Debug, Clone, Default)]
pub struct PresenceState {
    document: Option<Presence>,
}

// === reg package ===

/// The registrations of one AOR, merged from reginfo documents.
///
/// Invariant: only active contacts are stored. A terminated contact is
/// removed, and [`RegState::end`] keeps the reason the last binding ended.
#[derive(Debug, Clone)]
pub struct RegState {
    version: Option<u64>,
    has_state: bool,
    registrations: BTreeMap<String, RegistrationEntry>,
    end: Option<RegistrationEnd>,
    max_contacts: usize,
}

/// One registration with its active contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationEntry {
    pub aor: String,
    pub state: RegistrationState,
    /// Active contacts by contact id.
    pub contacts: BTreeMap<String, String>,
}

/// Reason an AOR is not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationEnd {
    /// The device or an administrator removed the binding
    /// (`unregistered` or `deactivated`): a deliberate logout.
    Deregistered(ContactEvent),
    /// The binding ran out or was refused (`expired`, `rejected`,
    /// `probation`, or any other event on a terminated contact), or the
    /// document did not say why.
    Lost(Option<ContactEvent>),
    /// No contact was ever bound (`init`, or no registration at all).
    NeverRegistered,
}

// === combiner ===

/// Site choices for turning package state into agent events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipStateConfig {
    /// Renames of normalized presence codes (`rpid:away`, `presence:open`,
    /// …) to platform state codes, applied before a code is emitted. Codes
    /// not listed are emitted unchanged and mapped in `[state_codes]`.
    pub presence_codes: BTreeMap<String, String>,
    /// Direction of a call whose dialogs carry no `direction` attribute.
    pub unknown_direction: CallDirection,
    /// Treat a registration that ends with `expired` as a logout instead
    /// of a lost device, for registrars that report a deregistration as
    /// `expired`.
    pub expired_is_logout: bool,
    /// Maximum number of dialogs, and of active contacts, tracked per AOR.
    pub max_items: usize,
}

/// The SIP view of one agent (one AOR): the three packages' state and the
/// events reported so far.
///
/// Each `apply_*` method applies a document and returns the events that take
/// the agent from the view last reported to the current one, so feeding
/// every returned event to the engine keeps it in step. Events are ordered:
/// registration, then calls (by call id), then the presence state code.
#[derive(Debug, Clone)]
pub struct AgentSipState {
    aor: String,
    config: SipStateConfig,
    dialogs: DialogState,
    presence: PresenceState,
    registration: RegState,
    reported: Reported,
}

/// The view that the events returned so far have given the engine.
#[derive(Debug, Clone, Default)]
struct Reported {
    login: LoginView,
    calls: BTreeMap<String, (CallPhase, CallDirection)>,
    code: Option<String>,
}

/// The registration side of the agent, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum LoginView {
    /// The reg package has reported nothing: presence and calls alone count.
    #[default]
    Unknown,
    Registered,
    /// Registration lost: the agent is shown unreachable.
    Lost,
    LoggedOut,
}

/// The outcome of applying one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub version: VersionCheck,
    /// Events to emit, in order; empty for a stale document.
    pub events: Vec<EventKind>,
}

// === impl DialogState ===

impl Default for DialogState {
    fn default() -> Self {
        DialogState::new(DEFAULT_MAX_ITEMS)
    }
}

impl DialogState {
    /// Creates an empty state that tracks at most `max_dialogs` dialogs.
    pub fn new(max_dialogs: usize) -> DialogState {
        DialogState { version: None, has_state: false, dialogs: BTreeMap::new(), ended: VecDeque::new(), max_dialogs }
    }

    /// Applies a document.
    ///
    /// - A version not greater than the last applied one is stale: ignored.
    /// - A full document replaces every dialog; dialogs it leaves out end
    ///   without a reason.
    /// - A partial document merges per dialog id: values it gives replace the
    ///   stored ones, values it leaves out are kept.
    /// - A terminated dialog is removed and its reason kept.
    ///
    /// `aor` only names the AOR in an error.
    pub fn apply(&mut self, doc: DialogInfo, aor: &str) -> Result<VersionCheck, StateError> {
        let check = version_check(self.version, doc.version, doc.state);
        if let VersionCheck::Stale { .. } = check {
            return Ok(check);
        }

        let mut dialogs = match doc.state {
            DocumentState::Full => BTreeMap::new(),
            DocumentState::Partial => self.dialogs.clone(),
        };
        let mut ended = Vec::new();

        for dialog in doc.dialogs {
            if dialog.phase() == Some(DialogPhase::Terminated) {
                dialogs.remove(&dialog.id);
                ended.push(EndedDialog::from_terminated(&dialog));
                continue;
            }
            let merged = match (doc.state, dialogs.remove(&dialog.id)) {
                (DocumentState::Partial, Some(old)) => merge_dialog(old, dialog),
                _ => dialog,
            };
            dialogs.insert(merged.id.clone(), merged);
        }

        if dialogs.len() > self.max_dialogs {
            return Err(StateError::TooManyDialogs {
                aor: aor.to_string(),
                count: dialogs.len(),
                limit: self.max_dialogs,
            });
        }

        if doc.state == DocumentState::Full {
            for (id, old) in &self.dialogs {
                let reported = ended.iter().any(|e| &e.id == id);
                if !dialogs.contains_key(id) && !reported {
                    ended.push(EndedDialog { id: id.clone(), call_id: old.call_id.clone(), event: None, code: None });
                }
            }
        }
        for item in ended {
            if self.ended.len() == MAX_ENDED_DIALOGS {
                self.ended.pop_front();
            }
            self.ended.push_back(item);
        }
        self.dialogs = dialogs;
        self.version = Some(doc.version);
        self.has_state = true;
        Ok(check)
    }

    /// Forgets the version of the last document, for a new subscription
    /// (its versions start again). The dialogs stay until the new
    /// subscription's first full document replaces them.
    pub fn reset_version(&mut self) {
        self.version = None;
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Returns true once any document was applied.
    pub fn has_state(&self) -> bool {
        self.has_state
    }

    /// Returns the live dialogs, ordered by dialog id.
    pub fn dialogs(&self) -> impl Iterator<Item = &Dialog> {
        self.dialogs.values()
    }

    pub fn dialog(&self, id: &str) -> Option<&Dialog> {
        self.dialogs.get(id)
    }

    /// Returns the most recently ended dialogs, oldest first (at most 32).
    pub fn ended(&self) -> impl Iterator<Item = &EndedDialog> {
        self.ended.iter()
    }

    /// Returns how the dialog `id` last ended, if it did recently.
    pub fn last_ended(&self, id: &str) -> Option<&EndedDialog> {
        self.ended.iter().rev().find(|e| e.id == id)
    }

    /// Groups the dialogs into calls by Call-ID (the dialog id when there is
    /// none), so the forks of one call count once.
    pub fn calls(&self) -> BTreeMap<String, CallView> {
        let mut calls: BTreeMap<String, CallView> = BTreeMap::new();
        for dialog in self.dialogs.values() {
            let call_id = dialog.call_id.clone().unwrap_or_else(|| dialog.id.clone());
            let phase = dialog_call_phase(dialog);
            let call = calls.entry(call_id.clone()).or_insert(CallView { call_id, direction: None, phase });
            call.direction = call.direction.or(dialog.direction);
            call.phase = stronger_phase(call.phase, phase);
        }
        calls
    }

    /// Returns what the line is doing; a connected call wins over a held
    /// one, a held one over a ringing one.
    pub fn activity(&self) -> LineActivity {
        self.calls()
            .values()
            .map(|call| match call.phase {
                CallPhase::Unknown => LineActivity::Unknown,
                CallPhase::Ringing => LineActivity::Ringing,
                CallPhase::Held => LineActivity::Held,
                CallPhase::Connected => LineActivity::OnCall,
            })
            .max()
            .unwrap_or(LineActivity::Idle)
    }
}

/// Merges a partial update into the stored dialog: what the update gives
/// wins, what it leaves out is kept.
fn merge_dialog(old: Dialog, new: Dialog) -> Dialog {
    Dialog {
        id: new.id,
        call_id: new.call_id.or(old.call_id),
        local_tag: new.local_tag.or(old.local_tag),
        remote_tag: new.remote_tag.or(old.remote_tag),
        direction: new.direction.or(old.direction),
        status: new.status.or(old.status),
        duration: new.duration.or(old.duration),
        local: new.local.or(old.local),
        remote: new.remote.or(old.remote),
    }
}

fn dialog_call_phase(dialog: &Dialog) -> CallPhase {
    match dialog.phase() {
        None => CallPhase::Unknown,
        Some(DialogPhase::Trying | DialogPhase::Proceeding | DialogPhase::Early) => CallPhase::Ringing,
        Some(DialogPhase::Confirmed) if dialog.is_held() => CallPhase::Held,
        Some(DialogPhase::Confirmed) => CallPhase::Connected,
        // Terminated dialogs are never stored; count one as gone.
        Some(DialogPhase::Terminated) => CallPhase::Unknown,
    }
}

/// Combines the phases of two dialogs of one call: a connected fork wins.
fn stronger_phase(a: CallPhase, b: CallPhase) -> CallPhase {
    let rank = |p: CallPhase| match p {
        CallPhase::Unknown => 0,
        CallPhase::Ringing => 1,
        CallPhase::Held => 2,
        CallPhase::Connected => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn version_check(last: Option<u64>, version: u64, state: DocumentState) -> VersionCheck {
    match (last, state) {
        (Some(last), _) if version <= last => VersionCheck::Stale { last },
        (None, DocumentState::Partial) => VersionCheck::Gap,
        (Some(last), DocumentState::Partial) if version > last.saturating_add(1) => VersionCheck::Gap,
        _ => VersionCheck::InOrder,
    }
}

// === impl EndedDialog ===

impl EndedDialog {
    fn from_terminated(dialog: &Dialog) -> EndedDialog {
        EndedDialog {
            id: dialog.id.clone(),
            call_id: dialog.call_id.clone(),
            event: dialog.status.as_ref().and_then(|s| s.event.clone()),
            code: dialog.status.as_ref().and_then(|s| s.code),
        }
    }
}

// === impl PresenceState ===

impl PresenceState {
    /// Replaces the state with `doc`.
    pub fn apply(&mut self, doc: Presence) {
        self.document = Some(doc);
    }

    pub fn document(&self) -> Option<&Presence> {
        self.document.as_ref()
    }

    /// Returns the normalized state code the presence document implies at
    /// `now`, or `None` when it contains nothing usable:
    ///
    /// 1. The first activity that applies at `now` (inside its `from` and
    ///    `until`) and is not `unknown`, looking at persons, then tuples,
    ///    then devices, in document order: `rpid:<activity>`, for example
    ///    `rpid:away` or `rpid:other:lunch`. With `skip_call_activities`,
    ///    `on-the-phone` and `busy` are passed over.
    /// 2. Otherwise the basic status: `presence:open` when any tuple is
    ///    open, `presence:closed` when tuples have a status and none is open.
    pub fn code(&self, now: Timestamp, skip_call_activities: bool) -> Option<String> {
        let doc = self.document.as_ref()?;

        let person = doc.persons.iter().flat_map(|p| &p.activities);
        let tuple = doc.tuples.iter().flat_map(|t| &t.activities);
        let device = doc.devices.iter().flat_map(|d| &d.activities);
        let activity = person
            .chain(tuple)
            .chain(device)
            // NOTE: `from` and `until` are compared with floorwatch's clock, so a
            // client with a wrong clock can have its activity skipped.
            .filter(|a| a.applies_at(now))
            .flat_map(|a| &a.items)
            .filter(|item| !item.is_unknown())
            .find(|item| !(skip_call_activities && CALL_ACTIVITIES.contains(&item.as_str())));
        if let Some(activity) = activity {
            return Some(format!("rpid:{}", activity.as_str()));
        }

        let mut statuses = doc.tuples.iter().filter_map(|t| t.basic).peekable();
        statuses.peek()?;
        if statuses.any(|s| s == crate::sip::body::BasicStatus::Open) {
            Some("presence:open".to_string())
        } else {
            Some("presence:closed".to_string())
        }
    }
}

// === impl RegState ===

impl Default for RegState {
    fn default() -> Self {
        RegState::new(DEFAULT_MAX_ITEMS)
    }
}

impl RegState {
    /// Creates an empty state that tracks at most `max_contacts` active
    /// contacts.
    pub fn new(max_contacts: usize) -> RegState {
        RegState { version: None, has_state: false, registrations: BTreeMap::new(), end: None, max_contacts }
    }

    /// Applies a document.
    ///
    /// - A version not greater than the last applied one is stale: ignored.
    /// - A full document replaces every registration.
    /// - A partial document updates the registrations it lists. Within them
    ///   it adds active contacts and removes terminated ones, by contact id.
    /// - A registration in state `init` or `terminated` has no contacts.
    ///
    /// When the AOR is left without an active contact, [`RegState::end`]
    /// says why; see [`RegistrationEnd`] for the rule.
    pub fn apply(&mut self, doc: RegInfo, aor: &str) -> Result<VersionCheck, StateError> {
        let check = version_check(self.version, doc.version, doc.state);
        if let VersionCheck::Stale { .. } = check {
            return Ok(check);
        }

        let was_active: Vec<(String, String)> = self.active_contact_keys();
        let mut registrations = match doc.state {
            DocumentState::Full => BTreeMap::new(),
            DocumentState::Partial => self.registrations.clone(),
        };
        let mut terminated: Vec<(String, String, ContactEvent)> = Vec::new();

        for registration in &doc.registrations {
            apply_registration(&mut registrations, registration, &mut terminated);
        }

        let count: usize = registrations.values().map(|r| r.contacts.len()).sum();
        if count > self.max_contacts {
            return Err(StateError::TooManyContacts { aor: aor.to_string(), count, limit: self.max_contacts });
        }

        self.registrations = registrations;
        self.version = Some(doc.version);
        self.has_state = true;
        self.end = if self.is_registered() { None } else { Some(self.end_reason(&was_active, &terminated)) };
        Ok(check)
    }

    /// Forgets the version of the last document, for a new subscription.
    pub fn reset_version(&mut self) {
        self.version = None;
    }

    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Returns true once any document was applied.
    pub fn has_state(&self) -> bool {
        self.has_state
    }

    /// Returns true when any registration has an active contact.
    pub fn is_registered(&self) -> bool {
        self.registrations.values().any(|r| !r.contacts.is_empty())
    }

    /// Returns why the AOR is not registered; `None` while it is, or before
    /// any document.
    pub fn end(&self) -> Option<RegistrationEnd> {
        self.end
    }

    /// Returns the registrations by registration id.
    pub fn registrations(&self) -> &BTreeMap<String, RegistrationEntry> {
        &self.registrations
    }

    fn active_contact_keys(&self) -> Vec<(String, String)> {
        self.registrations
            .iter()
            .flat_map(|(rid, r)| r.contacts.keys().map(move |cid| (rid.clone(), cid.clone())))
            .collect()
    }

    /// Decides why the AOR is now unregistered from the contacts this
    /// document terminated: those that were active before count first, and
    /// when none were (a first document), all terminated ones. A
    /// deliberate event (`unregistered`, `deactivated`) on any of them wins
    /// over the others.
    fn end_reason(
        &self,
        was_active: &[(String, String)],
        terminated: &[(String, String, ContactEvent)],
    ) -> RegistrationEnd {
        let previously_active: Vec<ContactEvent> = terminated
            .iter()
            .filter(|(rid, cid, _)| was_active.iter().any(|(r, c)| r == rid && c == cid))
            .map(|(_, _, event)| *event)
            .collect();
        let events: Vec<ContactEvent> = if previously_active.is_empty() {
            terminated.iter().map(|(_, _, event)| *event).collect()
        } else {
            previously_active
        };

        let deliberate = events.iter().find(|e| matches!(e, ContactEvent::Unregistered | ContactEvent::Deactivated));
        if let Some(event) = deliberate {
            return RegistrationEnd::Deregistered(*event);
        }
        if let Some(event) = events.first() {
            return RegistrationEnd::Lost(Some(*event));
        }
        let never = self.registrations.values().all(|r| r.state == RegistrationState::Init);
        if never && was_active.is_empty() {
            return self.end.unwrap_or(RegistrationEnd::NeverRegistered);
        }
        // The document did not say why; keep an earlier reason if there is one.
        self.end.unwrap_or(RegistrationEnd::Lost(None))
    }
}

fn apply_registration(
    registrations: &mut BTreeMap<String, RegistrationEntry>,
    registration: &Registration,
    terminated: &mut Vec<(String, String, ContactEvent)>,
) {
    let entry = registrations.entry(registration.id.clone()).or_insert_with(|| RegistrationEntry {
        aor: registration.aor.clone(),
        state: registration.state,
        contacts: BTreeMap::new(),
    });
    entry.aor = registration.aor.clone();
    entry.state = registration.state;

    for contact in &registration.contacts {
        match contact.state {
            ContactState::Active => {
                entry.contacts.insert(contact.id.clone(), contact.uri.clone());
            }
            ContactState::Terminated => {
                entry.contacts.remove(&contact.id);
                terminated.push((registration.id.clone(), contact.id.clone(), contact.event));
            }
        }
    }
    if registration.state != RegistrationState::Active {
        entry.contacts.clear();
    }
}

// === impl SipStateConfig ===

impl Default for SipStateConfig {
    fn default() -> Self {
        SipStateConfig {
            presence_codes: BTreeMap::new(),
            // NOTE: a guess for PBXs that omit `direction`; most calls at this
            // site are inbound, but an outbound call is then counted inbound.
            unknown_direction: CallDirection::Inbound,
            expired_is_logout: false,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

// === impl AgentSipState ===

impl AgentSipState {
    /// Creates the state of `aor` with nothing known yet.
    pub fn new(aor: impl Into<String>, config: SipStateConfig) -> AgentSipState {
        let max = config.max_items;
        AgentSipState {
            aor: aor.into(),
            config,
            dialogs: DialogState::new(max),
            presence: PresenceState::default(),
            registration: RegState::new(max),
            reported: Reported::default(),
        }
    }

    pub fn aor(&self) -> &str {
        &self.aor
    }

    /// Applies a dialog-info document and returns the resulting events.
    pub fn apply_dialog_info(&mut self, doc: DialogInfo, now: Timestamp) -> Result<Update, StateError> {
        let version = doc.version;
        let check = self.dialogs.apply(doc, &self.aor)?;
        Ok(self.finish(Package::DialogInfo, version, check, now))
    }

    /// Applies a presence document and returns the resulting events.
    pub fn apply_presence(&mut self, doc: Presence, now: Timestamp) -> Update {
        self.presence.apply(doc);
        Update { version: VersionCheck::InOrder, events: self.reconcile(now) }
    }

    /// Applies a reginfo document and returns the resulting events.
    pub fn apply_reginfo(&mut self, doc: RegInfo, now: Timestamp) -> Result<Update, StateError> {
        let version = doc.version;
        let check = self.registration.apply(doc, &self.aor)?;
        Ok(self.finish(Package::RegInfo, version, check, now))
    }

    /// Re-evaluates at `now` without a new document and returns the
    /// resulting events; call it when an RPID `from` or `until` instant
    /// passes.
    pub fn refresh(&mut self, now: Timestamp) -> Vec<EventKind> {
        self.reconcile(now)
    }

    /// Starts a new subscription for `package`: its document versions start
    /// again, so the last version applied no longer counts. The package's
    /// state stays until the new subscription's first full document.
    pub fn reset_version(&mut self, package: Package) {
        match package {
            Package::DialogInfo => self.dialogs.reset_version(),
            Package::RegInfo => self.registration.reset_version(),
            Package::Pidf => {}
        }
    }

    pub fn dialogs(&self) -> &DialogState {
        &self.dialogs
    }

    pub fn presence(&self) -> &PresenceState {
        &self.presence
    }

    pub fn registration(&self) -> &RegState {
        &self.registration
    }

    /// Returns true when the reg package reports an active contact for the
    /// AOR, false when it reports none, and `None` before any reginfo.
    pub fn is_registered(&self) -> Option<bool> {
        self.registration.has_state().then(|| self.registration.is_registered())
    }

    fn finish(&mut self, package: Package, version: u64, check: VersionCheck, now: Timestamp) -> Update {
        match check {
            VersionCheck::Stale { last } => {
                tracing::debug!(aor = %self.aor, %package, version, last, "stale document ignored");
                return Update { version: check, events: Vec::new() };
            }
            VersionCheck::Gap => {
                tracing::debug!(aor = %self.aor, %package, version, "document applied after a version gap");
            }
            VersionCheck::InOrder => {}
        }
        Update { version: check, events: self.reconcile(now) }
    }

    /// Returns the events that take the reported view to the current one,
    /// and records the current view as reported.
    fn reconcile(&mut self, now: Timestamp) -> Vec<EventKind> {
        let mut events = Vec::new();
        self.reconcile_login(&mut events);
        self.reconcile_calls(&mut events);
        self.reconcile_code(now, &mut events);
        events
    }

    fn reconcile_login(&mut self, events: &mut Vec<EventKind>) {
        let target = self.login_view();
        let current = self.reported.login;
        match (current, target) {
            (LoginView::Unknown | LoginView::LoggedOut, LoginView::Registered) => {
                events.push(EventKind::Login);
                events.push(EventKind::Device { registered: true });
            }
            (LoginView::Lost, LoginView::Registered) => events.push(EventKind::Device { registered: true }),
            (LoginView::Unknown | LoginView::Registered | LoginView::Lost, LoginView::LoggedOut) => {
                events.push(EventKind::Logout);
            }
            (LoginView::Unknown | LoginView::Registered, LoginView::Lost) => {
                events.push(EventKind::Device { registered: false });
            }
            // Unchanged; or logged out and now lost, where the deliberate
            // logout stands when a later document only says a leftover
            // binding expired.
            _ => return,
        }
        if matches!(target, LoginView::Lost | LoginView::LoggedOut) {
            // Re-send the presence code once the agent is back.
            self.reported.code = None;
        }
        self.reported.login = target;
    }

    fn login_view(&self) -> LoginView {
        if !self.registration.has_state() {
            return LoginView::Unknown;
        }
        if self.registration.is_registered() {
            return LoginView::Registered;
        }
        match self.registration.end() {
            Some(RegistrationEnd::Lost(Some(ContactEvent::Expired))) if self.config.expired_is_logout => {
                LoginView::LoggedOut
            }
            Some(RegistrationEnd::Lost(_)) => LoginView::Lost,
            Some(RegistrationEnd::Deregistered(_) | RegistrationEnd::NeverRegistered) | None => LoginView::LoggedOut,
        }
    }

    fn reconcile_calls(&mut self, events: &mut Vec<EventKind>) {
        let calls = self.dialogs.calls();

        let gone: Vec<String> = self.reported.calls.keys().filter(|id| !calls.contains_key(*id)).cloned().collect();
        for call_id in gone {
            self.reported.calls.remove(&call_id);
            events.push(EventKind::CallEnd { call_id });
        }

        for (call_id, call) in calls {
            let direction = match call.direction {
                Some(DialogDirection::Recipient) => CallDirection::Inbound,
                Some(DialogDirection::Initiator) => CallDirection::Outbound,
                None => self.config.unknown_direction,
            };
            let reported = self.reported.calls.get(&call_id).copied();
            let (before, direction) = match reported {
                Some((phase, reported_direction)) => (Some(phase), reported_direction),
                None => (None, direction),
            };
            let after = call_transition(&call_id, direction, before, call.phase, events);
            if let Some(phase) = after {
                self.reported.calls.insert(call_id, (phase, direction));
            }
        }
    }

    fn reconcile_code(&mut self, now: Timestamp, events: &mut Vec<EventKind>) {
        if matches!(self.reported.login, LoginView::Lost | LoginView::LoggedOut) {
            return;
        }
        let Some(code) = self.presence.code(now, self.dialogs.has_state()) else {
            return;
        };
        let code = self.config.presence_codes.get(&code).cloned().unwrap_or(code);
        if self.reported.code.as_ref() != Some(&code) {
            self.reported.code = Some(code.clone());
            events.push(EventKind::State { code });
        }
    }
}

/// Pushes the events that take a call from the reported phase `before`
/// (`None`: not reported) to `after`, and returns the phase now reported.
/// A call never goes back to ringing, and an unknown phase changes nothing,
/// so `CallPhase::Unknown` is never reported.
fn call_transition(
    call_id: &str,
    direction: CallDirection,
    before: Option<CallPhase>,
    after: CallPhase,
    events: &mut Vec<EventKind>,
) -> Option<CallPhase> {
    let id = || call_id.to_string();
    match (before, after) {
        (_, CallPhase::Unknown) => return before,
        (None, CallPhase::Ringing) => events.push(EventKind::CallRinging { call_id: id(), direction }),
        (None | Some(CallPhase::Ringing), CallPhase::Connected) => {
            events.push(EventKind::CallStart { call_id: id(), direction });
        }
        (None | Some(CallPhase::Ringing), CallPhase::Held) => {
            events.push(EventKind::CallStart { call_id: id(), direction });
            events.push(EventKind::CallHold { call_id: id() });
        }
        (Some(CallPhase::Connected), CallPhase::Held) => events.push(EventKind::CallHold { call_id: id() }),
        (Some(CallPhase::Held), CallPhase::Connected) => events.push(EventKind::CallResume { call_id: id() }),
        // Unchanged, or back to ringing, which a call never does.
        (Some(phase), _) => return Some(phase),
    }
    Some(after)
}
