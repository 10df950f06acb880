//! The state machine of one agent: what the agent is doing, how that
//! compares with the schedule, and the figures that follow from it.
//!
//! A tracker is pure. Every input carries its instant; the caller guarantees
//! inputs arrive in non-decreasing time order (the engine clamps late events
//! and recomputes by replay). Between inputs the tracker walks its own
//! boundaries — schedule changes, exception edges and alarm deadlines — so
//! figures do not depend on how often it is polled.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::figures::DayFigures;
use super::rules::RuleMatrix;
use super::schedule::{Schedule, day_start_ms, local_date};
use crate::domain::{ActivityType, AdherenceStatus, CallDirection, EventKind, StateGroup};

/// Most calls tracked per agent at once; a platform that never ends calls
/// cannot grow the list beyond this (the oldest is dropped).
const MAX_CALLS: usize = 8;

/// Shared inputs a tracker reads but does not own.
pub struct Context<'a> {
    pub rules: &'a RuleMatrix,
    pub tz: &'a TimeZone,
    pub schedule: &'a Schedule,
    /// Supervisor-approved exceptions as `[start_ms, end_ms)`, sorted.
    pub exceptions: &'a [(i64, i64)],
}

/// Cause of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    /// Logged out while work is scheduled.
    NotLoggedIn,
    /// Logged in, but the device or the home connection is gone.
    Unreachable,
    /// Any other state the rule matrix calls out of adherence.
    OutOfAdherence,
}

/// An alarm as the tracker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmState {
    pub kind: AlarmKind,
    pub out_since_ms: i64,
    pub raised_at_ms: i64,
    pub activity: Option<ActivityType>,
    pub group: StateGroup,
}

/// Something the caller must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerOutput {
    /// A field shown on the floor changed.
    Changed,
    AlarmRaised(AlarmState),
    AlarmCleared(AlarmState),
}

/// A call the agent has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub call_id: String,
    pub direction: CallDirection,
    pub connected: bool,
    pub held: bool,
    pub since_ms: i64,
}

/// Per-agent state; see the module documentation.
#[derive(Debug, Clone)]
pub struct Tracker {
    // Inputs as last reported.
    logged_in: bool,
    code_group: StateGroup,
    state_code: Option<Arc<str>>,
    calls: Vec<Call>,
    device_registered: Option<bool>,
    source: Option<Arc<str>>,
    source_down: bool,

    /// Instant up to which figures are accounted.
    at_ms: i64,

    // Derived at `at_ms`.
    group: StateGroup,
    group_since_ms: i64,
    slot: Option<usize>,
    excused: bool,
    status: AdherenceStatus,
    status_since_ms: i64,
    out_since_ms: Option<i64>,
    alarm: Option<AlarmState>,

    /// Shift index and scheduled start, while the agent has not logged in
    /// since the first work activity of that shift began.
    late_pending: Option<(u32, i64)>,
    /// Shift index and logout instant, while the agent stays logged out
    /// after logging out during that shift.
    early_pending: Option<(u32, i64)>,

    /// Cached bounds of the local day containing `at_ms`, so accounting does
    /// not convert time zones on every input.
    day_cache: Option<(Date, i64, i64)>,
    days: BTreeMap<Date, DayFigures>,
}

// === impl Tracker ===

impl Tracker {
    /// Creates a logged-out agent whose figures start at `at_ms`.
    pub fn new(ctx: &Context<'_>, at_ms: i64) -> Tracker {
        let mut tracker = Tracker {
            logged_in: false,
            code_group: StateGroup::Available,
            state_code: None,
            calls: Vec::new(),
            device_registered: None,
            source: None,
            source_down: false,
            at_ms,
            group: StateGroup::LoggedOut,
            group_since_ms: at_ms,
            slot: None,
            excused: false,
            status: AdherenceStatus::Neutral,
            status_since_ms: at_ms,
            out_since_ms: None,
            alarm: None,
            late_pending: None,
            early_pending: None,
            day_cache: None,
            days: BTreeMap::new(),
        };
        let mut ignored = Vec::new();
        tracker.reevaluate(ctx, at_ms, &mut ignored);
        tracker.status_since_ms = at_ms;
        tracker
    }

    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    pub fn group(&self) -> StateGroup {
        self.group
    }

    pub fn group_since_ms(&self) -> i64 {
        self.group_since_ms
    }

    pub fn state_code(&self) -> Option<&Arc<str>> {
        self.state_code.as_ref()
    }

    pub fn status(&self) -> AdherenceStatus {
        self.status
    }

    pub fn status_since_ms(&self) -> i64 {
        self.status_since_ms
    }

    pub fn out_since_ms(&self) -> Option<i64> {
        self.out_since_ms
    }

    pub fn alarm(&self) -> Option<&AlarmState> {
        self.alarm.as_ref()
    }

    pub fn slot(&self) -> Option<usize> {
        self.slot
    }

    pub fn device_registered(&self) -> Option<bool> {
        self.device_registered
    }

    pub fn source(&self) -> Option<&Arc<str>> {
        self.source.as_ref()
    }

    pub fn source_down(&self) -> bool {
        self.source_down
    }

    /// Returns the call shown on the floor: the latest connected call, else
    /// the latest ringing one.
    pub fn current_call(&self) -> Option<&Call> {
        self.calls.iter().rev().find(|c| c.connected).or_else(|| self.calls.last())
    }

    pub fn days(&self) -> &BTreeMap<Date, DayFigures> {
        &self.days
    }

    /// Marks every retained day as approximate (history limit hit).
    pub fn mark_approximate(&mut self, day: Date) {
        self.days.entry(day).or_default().approximate = true;
    }

    /// Returns the day the figures at `at_ms` count toward: the start day of
    /// the shift in progress, else the local date.
    pub fn current_day(&mut self, ctx: &Context<'_>) -> Date {
        match self.slot {
            Some(slot) => ctx.schedule.shift(ctx.schedule.slot(slot).shift).day,
            None => self.day_bounds(ctx, self.at_ms).0,
        }
    }

    /// Returns the next instant after `at_ms` at which the tracker changes
    /// by itself: a schedule or exception boundary, or an alarm deadline.
    pub fn next_wake_ms(&self, ctx: &Context<'_>) -> Option<i64> {
        let mut next = ctx.schedule.next_boundary_after(self.at_ms);
        let mut consider = |t: i64| {
            if t > self.at_ms {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };

        if let Some(t) = next_exception_edge(ctx.exceptions, self.at_ms) {
            consider(t);
        }
        if let (Some(out_since), None) = (self.out_since_ms, &self.alarm) {
            consider(out_since + ctx.rules.threshold_ms(self.activity(ctx)));
        }
        next
    }

    /// Moves time forward to `t`, handling every boundary on the way.
    pub fn advance_to(&mut self, ctx: &Context<'_>, t: i64, out: &mut Vec<TrackerOutput>) {
        while let Some(wake) = self.next_wake_ms(ctx) {
            if wake > t {
                break;
            }
            self.account_to(ctx, wake);
            self.reevaluate(ctx, wake, out);
        }
        self.account_to(ctx, t);
    }

    /// Applies an agent event at `t` (not before `at_ms`). For a `State`
    /// event, `code` is the code as a shared string with its configured
    /// group, which is `None` for an unknown code. `source_down` is the
    /// health of `source` at `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_event(
        &mut self,
        ctx: &Context<'_>,
        t: i64,
        kind: &EventKind,
        code: Option<&(Option<StateGroup>, Arc<str>)>,
        source: &Arc<str>,
        source_down: bool,
        out: &mut Vec<TrackerOutput>,
    ) {
        let t = t.max(self.at_ms);
        self.advance_to(ctx, t, out);

        if self.source.as_ref() != Some(source) {
            self.source = Some(source.clone());
        }
        self.source_down = source_down;

        match kind {
            EventKind::Login => self.logged_in = true,
            EventKind::Logout => {
                self.logged_in = false;
                self.calls.clear();
                // The next login may come from another device or source, so
                // a lost registration does not carry over to it.
                self.device_registered = None;
            }
            EventKind::State { code: text } => {
                let (code_group, shared) = match code {
                    Some((group, shared)) => (*group, shared.clone()),
                    None => (None, Arc::from(text.as_str())),
                };
                self.state_code = Some(shared);
                match code_group {
                    Some(StateGroup::LoggedOut) => {
                        self.logged_in = false;
                        self.calls.clear();
                    }
                    Some(group) => {
                        self.logged_in = true;
                        self.code_group = group;
                    }
                    // An unknown code keeps the group; the engine reports it.
                    None => {}
                }
            }
            EventKind::CallRinging { call_id, direction } => {
                self.logged_in = true;
                self.upsert_call(call_id, *direction, false, t);
            }
            EventKind::CallStart { call_id, direction } => {
                self.logged_in = true;
                self.upsert_call(call_id, *direction, true, t);
            }
            EventKind::CallHold { call_id } => self.set_held(call_id, true),
            EventKind::CallResume { call_id } => self.set_held(call_id, false),
            EventKind::CallEnd { call_id } => self.calls.retain(|c| &c.call_id != call_id),
            EventKind::Device { registered } => self.device_registered = Some(*registered),
        }

        self.reevaluate(ctx, t, out);
    }

    /// Applies a health change of a source at `t`; ignored unless it is the
    /// source this agent depends on.
    pub fn apply_source_health(
        &mut self,
        ctx: &Context<'_>,
        t: i64,
        source: &str,
        healthy: bool,
        out: &mut Vec<TrackerOutput>,
    ) {
        if self.source.as_deref() != Some(source) {
            return;
        }
        let t = t.max(self.at_ms);
        self.advance_to(ctx, t, out);
        self.source_down = !healthy;
        self.reevaluate(ctx, t, out);
    }

    /// Re-derives everything after the schedule or exceptions changed.
    pub fn refresh(&mut self, ctx: &Context<'_>, out: &mut Vec<TrackerOutput>) {
        self.reevaluate(ctx, self.at_ms, out);
    }

    /// Returns the figures of `day` as of `now`, counting the time since
    /// `at_ms` without changing the tracker.
    pub fn figures_as_of(&self, ctx: &Context<'_>, day: Date, now: i64) -> DayFigures {
        let mut probe = self.clone();
        let mut ignored = Vec::new();
        probe.advance_to(ctx, now, &mut ignored);
        probe.days.get(&day).copied().unwrap_or_default()
    }

    fn activity(&self, ctx: &Context<'_>) -> Option<ActivityType> {
        self.slot.map(|s| ctx.schedule.slot(s).activity)
    }

    fn upsert_call(&mut self, call_id: &str, direction: CallDirection, connected: bool, t: i64) {
        if let Some(call) = self.calls.iter_mut().find(|c| c.call_id == call_id) {
            call.direction = direction;
            if connected && !call.connected {
                call.connected = true;
                call.since_ms = t;
            }
            return;
        }
        if self.calls.len() == MAX_CALLS {
            self.calls.remove(0);
        }
        self.calls.push(Call { call_id: call_id.to_string(), direction, connected, held: false, since_ms: t });
    }

    fn set_held(&mut self, call_id: &str, held: bool) {
        if let Some(call) = self.calls.iter_mut().find(|c| c.call_id == call_id) {
            call.held = held;
            call.connected = true;
        }
    }

    fn derive_group(&self) -> StateGroup {
        if !self.logged_in {
            return StateGroup::LoggedOut;
        }
        if self.device_registered == Some(false) {
            return StateGroup::Unreachable;
        }
        if let Some(call) = self.calls.iter().rev().find(|c| c.connected) {
            return match (call.held, call.direction) {
                (true, _) => StateGroup::Held,
                (false, CallDirection::Inbound) => StateGroup::OnCallInbound,
                (false, CallDirection::Outbound) => StateGroup::OnCallOutbound,
            };
        }
        if !self.calls.is_empty() {
            return StateGroup::Ringing;
        }
        self.code_group
    }

    /// Adds `[at_ms, t)` to the figures with the attributes in force.
    fn account_to(&mut self, ctx: &Context<'_>, t: i64) {
        while self.at_ms < t {
            let from = self.at_ms;
            let to = match self.slot {
                // A shift counts whole toward its start day.
                Some(_) => t,
                None => t.min(self.day_bounds(ctx, from).2),
            };
            let ms = to - from;
            let day = self.current_day(ctx);
            let figures = self.days.entry(day).or_default();

            match self.slot {
                Some(slot) => {
                    let activity = ctx.schedule.slot(slot).activity;
                    figures.add_scheduled(self.status, activity.is_work(), self.group.is_logged_in_for_work(), ms);
                }
                None => {
                    if self.group.is_logged_in() {
                        figures.unscheduled_login_ms += ms;
                    }
                }
            }
            self.at_ms = to;
        }
    }

    /// Returns (date, start, end) of the local day containing `t`.
    fn day_bounds(&mut self, ctx: &Context<'_>, t: i64) -> (Date, i64, i64) {
        if let Some(cached) = self.day_cache
            && cached.1 <= t
            && t < cached.2
        {
            return cached;
        }
        let date = local_date(t, ctx.tz);
        let start = day_start_ms(date, ctx.tz);
        let end = date.tomorrow().map(|d| day_start_ms(d, ctx.tz)).unwrap_or(i64::MAX);
        let bounds = (date, start, end);
        self.day_cache = Some(bounds);
        bounds
    }

    /// Re-derives group, activity and status at `t` (== `at_ms`) and emits
    /// what changed.
    fn reevaluate(&mut self, ctx: &Context<'_>, t: i64, out: &mut Vec<TrackerOutput>) {
        let before = (self.group, self.slot, self.status, self.alarm.is_some(), self.source_down);
        let previous_slot = self.slot;
        let was_logged_in = self.group != StateGroup::LoggedOut;

        self.slot = ctx.schedule.slot_at(t);
        self.excused = exception_covers(ctx.exceptions, t);
        let group = self.derive_group();
        if group != self.group {
            self.group = group;
            self.group_since_ms = t;
        }
        let is_logged_in = self.group != StateGroup::LoggedOut;

        self.track_shift_edges(ctx, t, previous_slot, was_logged_in, is_logged_in);

        let activity = self.activity(ctx);
        let status = if self.excused {
            AdherenceStatus::Excused
        } else if self.source_down {
            AdherenceStatus::Unknown
        } else {
            ctx.rules.status(activity, self.group)
        };
        if status != self.status {
            self.status = status;
            self.status_since_ms = t;
        }

        self.track_alarm(ctx, t, activity, out);

        let after = (self.group, self.slot, self.status, self.alarm.is_some(), self.source_down);
        if before != after {
            out.push(TrackerOutput::Changed);
        }
    }

    /// Late logins and early logouts, measured per shift.
    fn track_shift_edges(
        &mut self,
        ctx: &Context<'_>,
        t: i64,
        previous_slot: Option<usize>,
        was_logged_in: bool,
        is_logged_in: bool,
    ) {
        let previous_shift = previous_slot.map(|s| ctx.schedule.slot(s).shift);
        let shift = self.slot.map(|s| ctx.schedule.slot(s).shift);

        // Leaving a shift settles what is pending for it.
        if let Some(left) = previous_shift.filter(|&p| Some(p) != shift) {
            if let Some((pending_shift, logout_ms)) = self.early_pending
                && pending_shift == left
            {
                let end = ctx.schedule.shift(left).end_ms.min(t);
                let day = ctx.schedule.shift(left).day;
                self.days.entry(day).or_default().early_logout_ms += end - logout_ms;
                self.early_pending = None;
            }
            if self.late_pending.is_some_and(|(s, _)| s == left) {
                // Never logged in: a no-show, which adherence already shows.
                self.late_pending = None;
            }
        }

        // The first work activity of a shift starts while logged out.
        if let Some(current) = shift {
            let first_work = ctx.schedule.shift(current).first_work_start_ms;
            if first_work == Some(t) && !is_logged_in && self.late_pending.is_none() {
                self.late_pending = Some((current, t));
            }
        }

        if !was_logged_in && is_logged_in {
            if let Some((pending_shift, start_ms)) = self.late_pending.take()
                && shift == Some(pending_shift)
            {
                let day = ctx.schedule.shift(pending_shift).day;
                self.days.entry(day).or_default().late_login_ms += t - start_ms;
            }
            self.early_pending = None;
        }

        if was_logged_in
            && !is_logged_in
            && let Some(current) = shift
        {
            self.early_pending = Some((current, t));
        }
    }

    fn track_alarm(&mut self, ctx: &Context<'_>, t: i64, activity: Option<ActivityType>, out: &mut Vec<TrackerOutput>) {
        if self.status != AdherenceStatus::OutOfAdherence {
            self.out_since_ms = None;
            if let Some(alarm) = self.alarm.take() {
                out.push(TrackerOutput::AlarmCleared(alarm));
            }
            return;
        }

        let out_since = *self.out_since_ms.get_or_insert(t);
        if self.alarm.is_none() && t >= out_since + ctx.rules.threshold_ms(activity) {
            let kind = match self.group {
                StateGroup::LoggedOut => AlarmKind::NotLoggedIn,
                StateGroup::Unreachable => AlarmKind::Unreachable,
                _ => AlarmKind::OutOfAdherence,
            };
            let alarm = AlarmState { kind, out_since_ms: out_since, raised_at_ms: t, activity, group: self.group };
            let day = self.current_day(ctx);
            self.days.entry(day).or_default().alarms += 1;
            self.alarm = Some(alarm.clone());
            out.push(TrackerOutput::AlarmRaised(alarm));
        }
    }
}

fn exception_covers(exceptions: &[(i64, i64)], t: i64) -> bool {
    exceptions.iter().any(|&(start, end)| start <= t && t < end)
}

fn next_exception_edge(exceptions: &[(i64, i64)], t: i64) -> Option<i64> {
    exceptions.iter().flat_map(|&(start, end)| [start, end]).filter(|&edge| edge > t).min()
}

// === impl AlarmKind ===

impl AlarmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::NotLoggedIn => "not_logged_in",
            AlarmKind::Unreachable => "unreachable",
            AlarmKind::OutOfAdherence => "out_of_adherence",
        }
    }
}
