//! `floorwatch watch`: a live terminal table of the floor, read from the
//! `WatchFloor` stream like any other client. It resumes after a dropped
//! connection with the last sequence number it saw.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::domain::{ActivityType, NotReadyReason, StateGroup};
use crate::i18n::{Locale, activity_name, state_name};
use crate::proto::floor_service_client::FloorServiceClient;
use crate::proto::floor_update::Update;
use crate::proto::{self, AgentView, TeamSummary, WatchFloorRequest};

/// How often the table is redrawn.
const REDRAW: Duration = Duration::from_secs(1);

/// Contents of the table.
#[derive(Default)]
struct FloorTable {
    agents: BTreeMap<String, AgentView>,
    teams: BTreeMap<String, TeamSummary>,
    last_seq: u64,
    snapshot_done: bool,
    /// Server clock of the last message and the local instant it arrived;
    /// elapsed times are shown in server time.
    server_time: Option<(Timestamp, std::time::Instant)>,
}

/// Runs the watch command; returns the exit code.
pub fn run_watch(addr: &str, teams: Vec<String>, once: bool, lang: &str, token: &str) -> i32 {
    let Some(locale) = Locale::parse(lang) else {
        eprintln!("floorwatch: --lang {lang:?} is not supported; use nl or en");
        return crate::cli::EXIT_CONFIG;
    };
    let runtime = match crate::commands::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("floorwatch: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(watch(addr, teams, once, locale, token)) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("floorwatch: {message}");
            1
        }
    }
}

async fn watch(addr: &str, teams: Vec<String>, once: bool, locale: Locale, token: &str) -> Result<(), String> {
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| "FLOORWATCH_TOKEN contains characters not allowed in a header".to_string())?;
    if !addr.starts_with("http://") {
        return Err(format!(
            "--addr {addr:?} is not supported; give a plaintext address such as http://127.0.0.1:50051 (TLS is not built in)"
        ));
    }
    let mut table = FloorTable::default();
    let mut failures = 0u32;

    loop {
        let channel = Channel::from_shared(addr.to_string())
            .map_err(|e| format!("--addr {addr:?} is not a valid URI: {e}"))?
            .connect_timeout(Duration::from_secs(5));
        let result = async {
            let channel = channel.connect().await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            let mut client = FloorServiceClient::new(channel);
            let mut request = Request::new(WatchFloorRequest {
                teams: teams.clone(),
                resume_after_seq: table.last_seq,
                lang: locale.as_str().to_string(),
            });
            request.metadata_mut().insert("authorization", bearer.clone());
            let mut stream = client
                .watch_floor(request)
                .await
                .map_err(|s| format!("{}: {}", code_name(s.code()), s.message()))?
                .into_inner();

            let mut redraw = tokio::time::interval(REDRAW);
            // With --once, print shortly after the snapshot and the first
            // team figures are in, so every team's line has arrived.
            let settle = tokio::time::sleep(Duration::from_secs(3600));
            tokio::pin!(settle);
            let mut settling = false;
            loop {
                tokio::select! {
                    message = stream.message() => match message {
                        Ok(Some(update)) => {
                            table.apply(update);
                            if once && table.snapshot_done && !settling {
                                settling = true;
                                let wait = if table.teams.is_empty() { 1500 } else { 300 };
                                settle.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(wait));
                            }
                        }
                        Ok(None) => return Err("the server ended the stream".to_string()),
                        Err(status) => return Err(format!("{}: {}", code_name(status.code()), status.message())),
                    },
                    _ = &mut settle, if settling => {
                        print!("{}", table.render(locale));
                        return Ok(true);
                    }
                    _ = redraw.tick(), if !once && table.snapshot_done => {
                        let mut out = std::io::stdout().lock();
                        let _ = write!(out, "\x1b[2J\x1b[H{}", table.render(locale));
                        let _ = out.flush();
                    }
                }
            }
        }
        .await;

        match result {
            Ok(_) => return Ok(()),
            Err(message)
                if message.starts_with("UNAUTHENTICATED") || message.starts_with("PERMISSION_DENIED") || once =>
            {
                return Err(message);
            }
            Err(message) => {
                failures += 1;
                if failures > 30 {
                    return Err(format!("{message}; giving up after {failures} attempts"));
                }
                eprintln!("floorwatch: {message}; reconnecting");
                tokio::time::sleep(Duration::from_secs(u64::from(failures.min(5)))).await;
            }
        }
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        _ => "ERROR",
    }
}

// === impl FloorTable ===

impl FloorTable {
    fn apply(&mut self, update: proto::FloorUpdate) {
        self.last_seq = self.last_seq.max(update.seq);
        if let Some(t) = update.server_time.as_ref().and_then(|t| Timestamp::new(t.seconds, t.nanos).ok()) {
            self.server_time = Some((t, std::time::Instant::now()));
        }
        match update.update {
            Some(Update::SnapshotBegin(_)) => {
                self.agents.clear();
                self.snapshot_done = false;
            }
            Some(Update::SnapshotEnd(_)) | Some(Update::Resumed(_)) => self.snapshot_done = true,
            Some(Update::Agent(agent)) => {
                self.agents.insert(agent.agent_id.clone(), agent);
            }
            Some(Update::Team(team)) => {
                self.teams.insert(team.team.clone(), team);
            }
            Some(Update::Coalesced(_)) | None => {}
        }
    }

    /// Returns the server's current time, estimated from the last message.
    fn server_now(&self) -> Timestamp {
        match self.server_time {
            Some((t, received)) => {
                let elapsed = jiff::SignedDuration::try_from(received.elapsed()).unwrap_or_default();
                t.checked_add(elapsed).unwrap_or(t)
            }
            None => Timestamp::now(),
        }
    }

    fn render(&self, locale: Locale) -> String {
        let now = self.server_now();
        let nl = locale == Locale::Nl;
        let mut out = String::new();
        let clock = now.to_zoned_datetime(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S %Z");
        let header = if nl {
            format!("floorwatch — {} agenten, {clock}, positie {}\n", self.agents.len(), self.last_seq)
        } else {
            format!("floorwatch — {} agents, {clock}, position {}\n", self.agents.len(), self.last_seq)
        };
        out.push_str(&header);

        let team_header = if nl {
            "team                  agenten ingelogd beschikb. gesprek nawerk n.beschikb. onbereikb. afwijkend alarmen  adherence\n"
        } else {
            "team                   agents  logged  available on call wrap-up not ready unreachable out-of-adh alarms adherence\n"
        };
        out.push_str(team_header);
        for team in self.teams.values() {
            out.push_str(&format!(
                "{:<22} {:>6} {:>7} {:>9} {:>7} {:>6} {:>10} {:>10} {:>9} {:>7} {:>9}\n",
                truncate(&team.team, 22),
                team.agents,
                team.logged_in,
                team.available,
                team.on_call,
                team.wrap_up,
                team.not_ready,
                team.unreachable,
                team.out_of_adherence,
                team.alarms,
                team.adherence_percent_today.map_or("-".to_string(), |p| format!("{p:.1}%")),
            ));
        }
        out.push('\n');

        let columns = if nl {
            ("agent", "team", "status", "sinds", "gepland", "adherence", "afwijkend", "gesprek")
        } else {
            ("agent", "team", "state", "since", "scheduled", "adherence", "out for", "call")
        };
        out.push_str(&format!(
            "{:<24} {:<16} {:<22} {:>8} {:<16} {:<12} {:>9} {}\n",
            columns.0, columns.1, columns.2, columns.3, columns.4, columns.5, columns.6, columns.7
        ));
        let mut agents: Vec<&AgentView> = self.agents.values().collect();
        agents.sort_by(|a, b| (&a.team, &a.display_name).cmp(&(&b.team, &b.display_name)));
        for agent in agents {
            let state = state_from_proto(agent.state).map_or("?", |g| state_name(g, locale));
            let since = agent.state_since.as_ref().map_or("-".to_string(), |t| elapsed(now, t.seconds));
            let scheduled =
                agent.scheduled_activity.and_then(activity_from_proto).map_or("-", |a| activity_name(a, locale));
            let adherence = adherence_label(agent.adherence, locale);
            let out_for = if agent.out_of_adherence_seconds > 0 {
                format_duration(agent.out_of_adherence_seconds)
            } else {
                String::new()
            };
            let alarm = if agent.alarm { " !" } else { "" };
            let call = agent.call.as_ref().map_or(String::new(), |c| {
                let held = if c.held { if nl { " (wacht)" } else { " (held)" } } else { "" };
                format!("{}{held}", c.call_id)
            });
            out.push_str(&format!(
                "{:<24} {:<16} {:<22} {:>8} {:<16} {:<12} {:>9}{alarm} {}\n",
                truncate(&agent.display_name, 24),
                truncate(&agent.team, 16),
                truncate(state, 22),
                since,
                truncate(scheduled, 16),
                adherence,
                out_for,
                call,
            ));
        }
        out
    }
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

fn elapsed(now: Timestamp, since_seconds: i64) -> String {
    format_duration((now.as_second() - since_seconds).max(0))
}

/// Formats a duration as h:mm:ss, so minutes are never read as hours.
fn format_duration(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    format!("{h}:{m:02}:{s:02}")
}

fn adherence_label(value: i32, locale: Locale) -> &'static str {
    use proto::AdherenceStatus as A;
    let nl = locale == Locale::Nl;
    match A::try_from(value) {
        Ok(A::InAdherence) => {
            if nl {
                "volgens rooster"
            } else {
                "in adherence"
            }
        }
        Ok(A::OutOfAdherence) => {
            if nl {
                "AFWIJKEND"
            } else {
                "OUT"
            }
        }
        Ok(A::Neutral) => {
            if nl {
                "neutraal"
            } else {
                "neutral"
            }
        }
        Ok(A::Unknown) => {
            if nl {
                "onbekend"
            } else {
                "unknown"
            }
        }
        Ok(A::Excused) => {
            if nl {
                "uitgezonderd"
            } else {
                "excused"
            }
        }
        _ => "-",
    }
}

fn state_from_proto(value: i32) -> Option<StateGroup> {
    use proto::StateGroup as P;
    Some(match P::try_from(value).ok()? {
        P::Unspecified => return None,
        P::LoggedOut => StateGroup::LoggedOut,
        P::Available => StateGroup::Available,
        P::Ringing => StateGroup::Ringing,
        P::OnCallInbound => StateGroup::OnCallInbound,
        P::OnCallOutbound => StateGroup::OnCallOutbound,
        P::Held => StateGroup::Held,
        P::WrapUp => StateGroup::WrapUp,
        P::NotReadyBreak => StateGroup::NotReady(NotReadyReason::Break),
        P::NotReadyLunch => StateGroup::NotReady(NotReadyReason::Lunch),
        P::NotReadyTraining => StateGroup::NotReady(NotReadyReason::Training),
        P::NotReadyMeeting => StateGroup::NotReady(NotReadyReason::Meeting),
        P::NotReadyCoaching => StateGroup::NotReady(NotReadyReason::Coaching),
        P::NotReadyTechnical => StateGroup::NotReady(NotReadyReason::Technical),
        P::NotReadyOther => StateGroup::NotReady(NotReadyReason::Other),
        P::Unreachable => StateGroup::Unreachable,
    })
}

fn activity_from_proto(value: i32) -> Option<ActivityType> {
    crate::api::convert::activity_from_proto(value, "").ok()
}
