//! Tests of the journal against real SQLite files in temporary directories.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::Rng;
use rusqlite::Connection;
use tokio::task::JoinSet;

use super::*;
use crate::domain::{ActivityType, Agent, CallDirection, EventKind};

/// Environment variable that turns `crash_child_appends` into the child
/// process of `crash_keeps_acknowledged_entries`; its value is the file.
const CRASH_CHILD_ENV: &str = "FLOORWATCH_STORE_CRASH_CHILD_DB";
/// Appends each of the child's 4 tasks makes when not killed.
const CRASH_CHILD_APPENDS: u64 = 500;

fn ts(text: &str) -> Timestamp {
    text.parse().expect("test timestamps must parse")
}

fn options() -> JournalOptions {
    JournalOptions { batch_max: 4096, batch_delay: Duration::ZERO, queue: 64 }
}

fn journal_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("journal.db")
}

fn open(path: &Path, options: JournalOptions) -> Journal {
    Journal::open(path, options).expect("a journal in a fresh temp dir must open")
}

/// An event whose effective time is its source time.
fn event(source: &str, id: &str, agent_id: &str, at: &str, kind: EventKind) -> JournalEntry {
    let source_time = ts(at);
    JournalEntry::Event(JournaledEvent {
        event: AgentEvent {
            source_kind: SourceKind::WebSocket,
            source: source.to_string(),
            source_event_id: id.to_string(),
            agent_ref: format!("sip:{agent_id}@pbx.example.com"),
            source_time,
            received_at: source_time + jiff::SignedDuration::from_millis(120),
            kind,
        },
        agent_id: agent_id.to_string(),
        effective_time: source_time,
    })
}

fn login(id: &str) -> JournalEntry {
    event("platform-main", id, "a-1", "2026-12-04T08:00:00Z", EventKind::Login)
}

fn seq_of(outcome: &AppendOutcome) -> u64 {
    match outcome {
        AppendOutcome::Committed { seq } => *seq,
        AppendOutcome::Duplicate => panic!("expected a committed entry, got a duplicate"),
    }
}

fn agent(id: &str, team: &str) -> Agent {
    Agent {
        id: id.to_string(),
        display_name: format!("Agent {id}"),
        team: team.to_string(),
        contract_hours: 22.5,
        platform_ids: vec![format!("sip:{id}@pbx.example.com"), format!("u-{id}")],
    }
}

fn activity(agent_id: &str, start: &str, end: &str, activity: ActivityType) -> ScheduledActivity {
    ScheduledActivity { agent_id: agent_id.to_string(), start: ts(start), end: ts(end), activity }
}

fn publication(
    start: &str,
    end: &str,
    agent_ids: &[&str],
    activities: Vec<ScheduledActivity>,
    comment: &str,
) -> RosterVersionRecord {
    RosterVersionRecord {
        period_start: ts(start),
        period_end: ts(end),
        agent_ids: agent_ids.iter().map(|id| id.to_string()).collect(),
        activities,
        comment: comment.to_string(),
        published_by: "planner@example.com".to_string(),
        published_at: ts("2026-11-20T09:00:00Z"),
    }
}

fn exception(agent_id: &str, start: &str, end: &str, reason: &str) -> NewException {
    NewException {
        agent_id: agent_id.to_string(),
        start: ts(start),
        end: ts(end),
        reason: reason.to_string(),
        approved_by: "supervisor@example.com".to_string(),
        approved_at: ts("2026-12-04T12:00:00Z"),
    }
}

/// Returns the source event ids in the file, read over a new connection.
fn stored_event_ids(path: &Path) -> HashSet<String> {
    let conn = Connection::open(path).expect("the journal file must open");
    let mut select = conn
        .prepare("SELECT source_event_id FROM journal WHERE source_event_id IS NOT NULL")
        .expect("select must prepare");
    select.query_map([], |row| row.get(0)).expect("select must run").collect::<Result<_, _>>().expect("rows must read")
}

/// Every event kind and a late event, from several sources.
fn sample_entries() -> Vec<JournalEntry> {
    let mut late = event("cti-bridge", "late-1", "a-2", "2026-12-04T08:00:30Z", EventKind::Logout);
    if let JournalEntry::Event(journaled) = &mut late {
        journaled.event.source_kind = SourceKind::Grpc;
        journaled.event.received_at = ts("2026-12-04T08:15:00Z");
        journaled.effective_time = journaled.event.received_at;
    }

    vec![
        event("platform-main", "e-1", "a-1", "2026-12-04T08:00:00.125Z", EventKind::Login),
        event("platform-main", "e-2", "a-1", "2026-12-04T08:00:01Z", EventKind::State { code: "Available".into() }),
        event(
            "platform-main",
            "e-3",
            "a-1",
            "2026-12-04T08:01:00Z",
            EventKind::CallRinging { call_id: "c-1".into(), direction: CallDirection::Inbound },
        ),
        event(
            "platform-main",
            "e-4",
            "a-1",
            "2026-12-04T08:01:05Z",
            EventKind::CallStart { call_id: "c-1".into(), direction: CallDirection::Inbound },
        ),
        event("platform-main", "e-5", "a-1", "2026-12-04T08:02:00Z", EventKind::CallHold { call_id: "c-1".into() }),
        event("platform-main", "e-6", "a-1", "2026-12-04T08:02:30Z", EventKind::CallResume { call_id: "c-1".into() }),
        event("platform-main", "e-7", "a-1", "2026-12-04T08:05:00Z", EventKind::CallEnd { call_id: "c-1".into() }),
        JournalEntry::SourceHealth {
            source: "pbx-sip".into(),
            kind: SourceKind::Sip,
            healthy: false,
            at: ts("2026-12-04T08:06:00Z"),
        },
        event("pbx-sip", "e-8", "a-1", "2026-12-04T08:07:00Z", EventKind::Device { registered: false }),
        JournalEntry::SourceHealth {
            source: "pbx-sip".into(),
            kind: SourceKind::Sip,
            healthy: true,
            at: ts("2026-12-04T08:08:00Z"),
        },
        late,
    ]
}

#[tokio::test]
async fn append_replay_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let entries = sample_entries();

    let mut outcomes = journal.append(entries[..4].to_vec()).await.unwrap();
    outcomes.extend(journal.append(entries[4..].to_vec()).await.unwrap());
    let seqs: Vec<u64> = outcomes.iter().map(seq_of).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "seqs must increase: {seqs:?}");

    let replayed = journal.read_journal_since(ts("2026-12-04T00:00:00Z")).unwrap();
    let replayed_seqs: Vec<u64> = replayed.iter().map(|(seq, _)| *seq).collect();
    let replayed_entries: Vec<JournalEntry> = replayed.into_iter().map(|(_, entry)| entry).collect();
    assert_eq!(replayed_seqs, seqs);
    assert_eq!(replayed_entries, entries);
}

#[tokio::test]
async fn replay_selects_by_effective_time_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    journal.append(sample_entries()).await.unwrap();

    // From 08:05 on: the call end, both health changes, the device event,
    // and the late event, whose source time is 08:00:30 but whose
    // effective time is its 08:15 receive time. It was appended last.
    let replayed = journal.read_journal_since(ts("2026-12-04T08:05:00Z")).unwrap();
    let times: Vec<Timestamp> = replayed.iter().map(|(_, entry)| entry.effective_time()).collect();
    assert_eq!(
        times,
        vec![
            ts("2026-12-04T08:05:00Z"),
            ts("2026-12-04T08:06:00Z"),
            ts("2026-12-04T08:07:00Z"),
            ts("2026-12-04T08:08:00Z"),
            ts("2026-12-04T08:15:00Z"),
        ]
    );

    let mut visited = Vec::new();
    let count = journal.for_each_since(ts("2026-12-04T08:05:00Z"), |seq, _| visited.push(seq)).unwrap();
    assert_eq!(count, 5);
    assert_eq!(visited, replayed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>());
}

#[tokio::test]
async fn journal_pages_cover_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    journal.append(sample_entries()).await.unwrap();
    let all = journal.read_journal_since(Timestamp::UNIX_EPOCH).unwrap();

    let mut paged = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = journal.read_journal_page(Timestamp::UNIX_EPOCH, after_seq, 3).unwrap();
        let Some((last, _)) = page.last() else { break };
        after_seq = *last;
        assert!(page.len() <= 3, "page of {} entries exceeds the limit", page.len());
        paged.extend(page);
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn timestamps_truncate_to_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let entry = event("platform-main", "e-1", "a-1", "2026-12-04T08:00:00.123456789Z", EventKind::Login);
    journal.append(vec![entry]).await.unwrap();

    let replayed = journal.read_journal_since(Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(replayed[0].1.effective_time(), ts("2026-12-04T08:00:00.123Z"));
}

#[tokio::test]
async fn duplicates_across_calls() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    journal.append(vec![login("e-1")]).await.unwrap();

    // Same source and id with another body: still a duplicate.
    let resent = event("platform-main", "e-1", "a-1", "2026-12-04T09:00:00Z", EventKind::Logout);
    let other_source = event("cti-bridge", "e-1", "a-1", "2026-12-04T08:00:00Z", EventKind::Login);
    let outcomes = journal.append(vec![resent, login("e-2"), other_source]).await.unwrap();

    assert_eq!(outcomes[0], AppendOutcome::Duplicate);
    assert!(matches!(outcomes[1], AppendOutcome::Committed { .. }));
    assert!(matches!(outcomes[2], AppendOutcome::Committed { .. }), "another source may reuse an id");

    let replayed = journal.read_journal_since(Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(replayed.len(), 3);
    assert_eq!(replayed[0].1, login("e-1"), "the first copy must stay");
}

#[tokio::test]
async fn duplicates_within_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());

    let outcomes = journal.append(vec![login("e-1"), login("e-1"), login("e-2")]).await.unwrap();

    assert!(matches!(outcomes[0], AppendOutcome::Committed { .. }));
    assert_eq!(outcomes[1], AppendOutcome::Duplicate);
    assert!(matches!(outcomes[2], AppendOutcome::Committed { .. }));
}

#[tokio::test]
async fn duplicates_within_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    // The long wait puts both concurrent calls into one batch.
    let options = JournalOptions { batch_delay: Duration::from_millis(300), ..options() };
    let journal = open(&journal_path(&dir), options);

    let (first, second) = tokio::join!(journal.append(vec![login("e-1")]), journal.append(vec![login("e-1")]));

    assert!(matches!(first.unwrap()[0], AppendOutcome::Committed { .. }));
    assert_eq!(second.unwrap()[0], AppendOutcome::Duplicate);
}

#[tokio::test]
async fn health_entries_never_deduplicate() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let health = JournalEntry::SourceHealth {
        source: "platform-main".into(),
        kind: SourceKind::WebSocket,
        healthy: false,
        at: ts("2026-12-04T08:00:00Z"),
    };

    let outcomes = journal.append(vec![health.clone(), health]).await.unwrap();

    assert!(outcomes.iter().all(|outcome| matches!(outcome, AppendOutcome::Committed { .. })));
}

#[tokio::test]
async fn append_acknowledged_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, options());

    let outcomes = journal.append(vec![login("e-1")]).await.unwrap();
    let seq = seq_of(&outcomes[0]) as i64;

    // A new connection sees only committed data.
    let conn = Connection::open(&path).unwrap();
    let id: String = conn
        .query_row("SELECT source_event_id FROM journal WHERE seq = ?1", [seq], |row| row.get(0))
        .expect("the acknowledged row must be visible to another connection");
    assert_eq!(id, "e-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_get_unique_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, JournalOptions { queue: 8, ..options() });

    let mut tasks = JoinSet::new();
    for task in 0..16 {
        let journal = journal.clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            let mut shared_outcome = None;
            for call in 0..25 {
                let size = 1 + call % 3;
                let entries = (0..size).map(|n| login(&format!("t{task}-c{call}-n{n}"))).collect();
                let outcomes = journal.append(entries).await.unwrap();
                assert_eq!(outcomes.len(), size);
                seqs.extend(outcomes.iter().map(seq_of));
                if call == 10 {
                    shared_outcome = Some(journal.append(vec![login("shared")]).await.unwrap()[0]);
                }
            }
            (seqs, shared_outcome)
        });
    }

    let mut all_seqs = HashSet::new();
    let mut shared_committed = 0;
    let mut committed = 0;
    while let Some(joined) = tasks.join_next().await {
        let (seqs, shared_outcome) = joined.unwrap();
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "one task's seqs must increase: {seqs:?}");
        committed += seqs.len();
        all_seqs.extend(seqs);
        if let Some(AppendOutcome::Committed { seq }) = shared_outcome {
            shared_committed += 1;
            all_seqs.insert(seq);
            committed += 1;
        }
    }

    assert_eq!(shared_committed, 1, "exactly one copy of the shared id must commit");
    assert_eq!(all_seqs.len(), committed, "seqs must be unique");
    assert_eq!(stored_event_ids(&path).len(), committed);
}

#[tokio::test]
async fn append_waits_when_queue_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, JournalOptions { queue: 1, ..options() });

    // Another connection holds the write lock, so the writer stalls in
    // BEGIN with the first request and the second one fills the queue.
    let blocker = Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let first = tokio::spawn({
        let journal = journal.clone();
        async move { journal.append(vec![login("e-1")]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = tokio::spawn({
        let journal = journal.clone();
        async move { journal.append(vec![login("e-2")]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let third = tokio::time::timeout(Duration::from_millis(200), journal.append(vec![login("e-3")])).await;
    assert!(third.is_err(), "append must wait while the queue is full");

    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());
}

#[tokio::test]
async fn failed_request_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, JournalOptions { batch_delay: Duration::from_millis(300), ..options() });
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW.source = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned by the test'); END;",
        )
        .unwrap();
    let poison = event("poison", "p-1", "a-1", "2026-12-04T08:00:00Z", EventKind::Login);

    let (good, bad, also_good) = tokio::join!(
        journal.append(vec![login("e-1")]),
        journal.append(vec![login("e-2"), poison]),
        journal.append(vec![login("e-3")]),
    );

    assert!(good.is_ok());
    assert!(matches!(bad, Err(StoreError::Write { operation: "append", .. })), "{bad:?}");
    assert!(also_good.is_ok());
    let stored = stored_event_ids(&path);
    assert!(!stored.contains("e-2"), "the failed call's earlier entry must be undone");
    assert_eq!(stored, HashSet::from(["e-1".to_string(), "e-3".to_string()]));
}

#[tokio::test]
async fn rolled_back_batch_fails_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, JournalOptions { batch_delay: Duration::from_millis(300), ..options() });
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON journal WHEN NEW.source = 'poison' \
             BEGIN SELECT RAISE(ROLLBACK, 'rolled back by the test'); END;",
        )
        .unwrap();
    let poison = event("poison", "p-1", "a-1", "2026-12-04T08:00:00Z", EventKind::Login);

    let (before, bad, after) = tokio::join!(
        journal.append(vec![login("e-1")]),
        journal.append(vec![poison]),
        journal.append(vec![login("e-3")]),
    );

    assert!(matches!(before, Err(StoreError::RolledBack { .. })), "{before:?}");
    assert!(bad.is_err());
    assert!(matches!(after, Err(StoreError::RolledBack { .. })), "{after:?}");
    assert!(stored_event_ids(&path).is_empty());

    let retried = journal.append(vec![login("e-1")]).await;
    assert!(retried.is_ok(), "the writer must keep working after a rollback: {retried:?}");
}

#[tokio::test]
async fn shutdown_commits_queued_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, options());

    // join! polls in order, so every append is queued before the shutdown.
    let appends = futures::future::join_all((0..20).map(|n| journal.append(vec![login(&format!("e-{n}"))])));
    let (outcomes, shutdown) = tokio::join!(appends, journal.shutdown());

    shutdown.unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(stored_event_ids(&path).len(), 20);

    let late = journal.append(vec![login("late")]).await;
    assert!(matches!(late, Err(StoreError::Closed { .. })), "{late:?}");
    assert_eq!(journal.read_journal_since(Timestamp::UNIX_EPOCH).unwrap().len(), 20, "reads must still work");
    journal.shutdown().await.expect("a second shutdown must return at once");
}

#[tokio::test]
async fn agents_upsert_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    journal.put_agents(vec![agent("a-2", "team-noord"), agent("a-1", "team-noord")]).await.unwrap();

    let mut moved = agent("a-2", "team-zuid");
    moved.platform_ids.push("sip:2017@pbx.example.com".into());
    journal.put_agents(vec![moved.clone()]).await.unwrap();

    let agents = journal.load_agents().unwrap();
    assert_eq!(agents, vec![agent("a-1", "team-noord"), moved]);
}

#[tokio::test]
async fn roster_publish_replaces_listed_agents_in_period() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let week = vec![
        activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T11:00:00Z", ActivityType::PhoneDuty),
        activity("a-1", "2026-12-08T08:00:00Z", "2026-12-08T11:00:00Z", ActivityType::PhoneDuty),
        // Starts before Tuesday and ends inside it: outside the new period.
        activity("a-1", "2026-12-07T23:00:00Z", "2026-12-08T00:30:00Z", ActivityType::ExtraHours),
        activity("a-2", "2026-12-08T09:00:00Z", "2026-12-08T12:00:00Z", ActivityType::PhoneDuty),
    ];
    let first = publication("2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z", &["a-1", "a-2"], week, "week 50");
    let version_one = journal.publish_roster(first).await.unwrap();

    let tuesday = vec![
        activity("a-1", "2026-12-08T13:00:00Z", "2026-12-08T16:00:00Z", ActivityType::PhoneDuty),
        activity("a-1", "2026-12-08T16:00:00Z", "2026-12-08T16:30:00Z", ActivityType::Break),
    ];
    let swap = publication("2026-12-08T00:00:00Z", "2026-12-09T00:00:00Z", &["a-1"], tuesday, "swap");
    let version_two = journal.publish_roster(swap).await.unwrap();

    let roster = journal.load_roster().unwrap();
    assert_eq!(version_one, 1);
    assert_eq!(version_two, 2);
    assert_eq!(roster.version, 2);
    assert_eq!(
        roster.activities,
        vec![
            activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T11:00:00Z", ActivityType::PhoneDuty),
            activity("a-1", "2026-12-07T23:00:00Z", "2026-12-08T00:30:00Z", ActivityType::ExtraHours),
            activity("a-1", "2026-12-08T13:00:00Z", "2026-12-08T16:00:00Z", ActivityType::PhoneDuty),
            activity("a-1", "2026-12-08T16:00:00Z", "2026-12-08T16:30:00Z", ActivityType::Break),
            activity("a-2", "2026-12-08T09:00:00Z", "2026-12-08T12:00:00Z", ActivityType::PhoneDuty),
        ]
    );
}

#[tokio::test]
async fn roster_publish_clears_agent_without_activities() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let monday = vec![activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T11:00:00Z", ActivityType::PhoneDuty)];
    journal
        .publish_roster(publication("2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z", &["a-1"], monday, "plan"))
        .await
        .unwrap();

    journal
        .publish_roster(publication("2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z", &["a-1"], vec![], "sick"))
        .await
        .unwrap();

    assert!(journal.load_roster().unwrap().activities.is_empty());
}

#[tokio::test]
async fn roster_versions_listed_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    assert_eq!(journal.load_roster().unwrap(), RosterSnapshot::default());

    let monday = vec![activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T11:00:00Z", ActivityType::Training)];
    let first = publication("2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z", &["a-1"], monday, "week 50");
    let second = publication("2026-12-14T00:00:00Z", "2026-12-21T00:00:00Z", &["a-1"], vec![], "week 51");
    journal.publish_roster(first.clone()).await.unwrap();
    journal.publish_roster(second).await.unwrap();

    let versions = journal.roster_versions().unwrap();
    let listed: Vec<(u64, &str)> = versions.iter().map(|v| (v.version, v.comment.as_str())).collect();
    assert_eq!(listed, vec![(1, "week 50"), (2, "week 51")]);
    assert_eq!(versions[0].published_by, "planner@example.com");
    assert_eq!(versions[0].published_at, ts("2026-11-20T09:00:00Z"));
    assert_eq!(versions[1].period_start, ts("2026-12-14T00:00:00Z"));
    assert_eq!(journal.roster_version(1).unwrap(), Some(first));
    assert_eq!(journal.roster_version(3).unwrap(), None);
}

#[tokio::test]
async fn roster_publish_rejects_invalid_records() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let period = ("2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z");
    let cases = [
        (
            "unlisted agent",
            publication(
                period.0,
                period.1,
                &["a-1"],
                vec![activity("a-2", "2026-12-07T08:00:00Z", "2026-12-07T09:00:00Z", ActivityType::PhoneDuty)],
                "",
            ),
        ),
        (
            "start outside period",
            publication(
                period.0,
                period.1,
                &["a-1"],
                vec![activity("a-1", "2026-12-08T08:00:00Z", "2026-12-08T09:00:00Z", ActivityType::PhoneDuty)],
                "",
            ),
        ),
        (
            "end before start",
            publication(
                period.0,
                period.1,
                &["a-1"],
                vec![activity("a-1", "2026-12-07T09:00:00Z", "2026-12-07T08:00:00Z", ActivityType::PhoneDuty)],
                "",
            ),
        ),
        ("empty period", publication(period.1, period.0, &["a-1"], vec![], "")),
    ];

    for (case, record) in cases {
        let result = journal.publish_roster(record).await;
        assert!(matches!(result, Err(StoreError::InvalidRequest { .. })), "{case}: {result:?}");
    }
    assert!(journal.roster_versions().unwrap().is_empty(), "nothing may be stored");
}

#[tokio::test]
async fn exceptions_overlap_half_open() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());
    let morning = exception("a-1", "2026-12-04T08:00:00Z", "2026-12-04T09:00:00Z", "headset broken");
    let afternoon = exception("a-2", "2026-12-04T13:00:00Z", "2026-12-04T14:00:00Z", "VPN outage");
    let morning_id = journal.add_exception(morning.clone()).await.unwrap();
    let afternoon_id = journal.add_exception(afternoon).await.unwrap();
    assert_ne!(morning_id, afternoon_id);

    let found = journal.exceptions_overlapping(ts("2026-12-04T08:30:00Z"), ts("2026-12-04T13:00:00Z")).unwrap();
    assert_eq!(found.len(), 1, "an exception starting at the end of the range does not overlap");
    assert_eq!(
        found[0],
        ExceptionRecord {
            id: morning_id,
            agent_id: morning.agent_id,
            start: morning.start,
            end: morning.end,
            reason: morning.reason,
            approved_by: morning.approved_by,
            approved_at: morning.approved_at,
        }
    );

    let since = journal.load_exceptions_since(ts("2026-12-04T09:00:00Z")).unwrap();
    assert_eq!(since.iter().map(|e| e.id).collect::<Vec<_>>(), vec![afternoon_id]);
}

#[tokio::test]
async fn exception_rejects_empty_period() {
    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), options());

    let result = journal.add_exception(exception("a-1", "2026-12-04T09:00:00Z", "2026-12-04T09:00:00Z", "x")).await;

    assert!(matches!(result, Err(StoreError::InvalidRequest { .. })), "{result:?}");
}

#[tokio::test]
async fn reopen_after_drop_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let monday = vec![activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T11:00:00Z", ActivityType::PhoneDuty)];
    {
        let journal = open(&path, options());
        journal.append(sample_entries()).await.unwrap();
        journal.put_agents(vec![agent("a-1", "team-noord")]).await.unwrap();
        let record = publication("2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z", &["a-1"], monday.clone(), "plan");
        journal.publish_roster(record).await.unwrap();
        journal.add_exception(exception("a-1", "2026-12-07T08:00:00Z", "2026-12-07T08:30:00Z", "fault")).await.unwrap();
    }

    let journal = open(&path, options());
    let replayed: Vec<JournalEntry> =
        journal.read_journal_since(Timestamp::UNIX_EPOCH).unwrap().into_iter().map(|(_, entry)| entry).collect();
    assert_eq!(replayed, sample_entries());
    assert_eq!(journal.load_agents().unwrap(), vec![agent("a-1", "team-noord")]);
    assert_eq!(journal.load_roster().unwrap(), RosterSnapshot { version: 1, activities: monday });
    assert_eq!(journal.load_exceptions_since(Timestamp::UNIX_EPOCH).unwrap().len(), 1);

    let outcomes = journal.append(vec![login("e-1"), login("e-new")]).await.unwrap();
    assert_eq!(outcomes[0], AppendOutcome::Duplicate, "duplicates must be found across restarts");
    assert!(seq_of(&outcomes[1]) > sample_entries().len() as u64, "seqs must continue after a restart");
}

#[tokio::test]
async fn pragmas_wal_and_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let journal = open(&path, options());

    let settings = journal.settings();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "2 is synchronous=FULL");
    assert_eq!(settings.schema_version, schema::latest_version());

    // journal_mode is stored in the file, so another connection sees it.
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    let version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(version, schema::latest_version());
}

#[tokio::test]
async fn reopen_keeps_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    open(&path, options()).shutdown().await.unwrap();

    let journal = open(&path, options());

    assert_eq!(journal.settings().schema_version, schema::latest_version());
}

#[test]
fn open_rejects_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();

    let result = Journal::open(&path, options());

    assert!(matches!(result, Err(StoreError::SchemaTooNew { found: 99, .. })), "{result:?}");
}

#[test]
fn open_error_names_path_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("journal.db");

    let error = Journal::open(&path, options()).expect_err("a file in a missing directory must not open");

    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("check that the state directory exists and is writable"), "{message}");
}

/// Child process of `crash_keeps_acknowledged_entries`; does nothing
/// unless [`CRASH_CHILD_ENV`] is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of crash_keeps_acknowledged_entries"]
async fn crash_child_appends() {
    let Ok(path) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    let journal = open(Path::new(&path), JournalOptions { batch_max: 64, batch_delay: Duration::ZERO, queue: 16 });

    let mut tasks = JoinSet::new();
    for task in 0..4 {
        let journal = journal.clone();
        tasks.spawn(async move {
            for call in 0..CRASH_CHILD_APPENDS {
                let k = call * 4 + task;
                let outcomes = journal.append(vec![login(&format!("crash-{k}"))]).await.unwrap();
                seq_of(&outcomes[0]);
                println!("committed {k}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
}

#[test]
fn crash_keeps_acknowledged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let total = (CRASH_CHILD_APPENDS * 4) as usize;
    let kill_after = rand::rng().random_range(20..600);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["store::tests::crash_child_appends", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary must start again as the child");
    let stdout = child.stdout.take().expect("stdout was piped");

    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(k) = line.strip_prefix("committed ").and_then(|k| k.trim().parse::<u64>().ok()) {
                let _ = lines_tx.send(k);
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acknowledged = HashSet::new();
    let mut child_finished = false;
    while acknowledged.len() < kill_after {
        match lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(k) => {
                acknowledged.insert(k);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("child acknowledged {} of {kill_after} appends in 60 s", acknowledged.len());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                child_finished = true;
                break;
            }
        }
    }

    // Child::kill sends SIGKILL on Unix: no destructor or flush runs.
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    acknowledged.extend(lines_rx.try_iter());
    if child_finished {
        assert_eq!(acknowledged.len(), total, "the child stopped early; run crash_child_appends alone to see why");
    }

    let stored = stored_event_ids(&path);
    let lost: Vec<u64> = acknowledged.iter().copied().filter(|k| !stored.contains(&format!("crash-{k}"))).collect();
    assert!(lost.is_empty(), "acknowledged but missing after SIGKILL: {lost:?}");
    println!("crash test: killed after {} acknowledged appends, {} rows in the file", acknowledged.len(), stored.len());

    let reopened = open(&path, options());
    assert_eq!(reopened.read_journal_since(Timestamp::UNIX_EPOCH).unwrap().len(), stored.len());
}

/// Prints the sustained append rate; a note, not an assertion, because the
/// rate depends on the machine and the debug build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_throughput_note() {
    const TASKS: usize = 16;
    const CALLS: usize = 125;
    const ENTRIES_PER_CALL: usize = 10;

    let dir = tempfile::tempdir().unwrap();
    let journal = open(&journal_path(&dir), JournalOptions { batch_max: 4096, batch_delay: Duration::ZERO, queue: 64 });

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let journal = journal.clone();
        tasks.spawn(async move {
            for call in 0..CALLS {
                let entries = (0..ENTRIES_PER_CALL).map(|n| login(&format!("t{task}-c{call}-n{n}"))).collect();
                journal.append(entries).await.unwrap();
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let elapsed = started.elapsed();

    let events = TASKS * CALLS * ENTRIES_PER_CALL;
    println!(
        "journal append: {events} events from {TASKS} tasks in {:.2} s = {:.0} events/s (batch_max 4096, this build)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
}
