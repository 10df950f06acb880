//! Processing of one feed connection's frames, shared by server and client
//! mode: parse, drop replays by `seq`, submit to the pipeline, and build the
//! acknowledgement and error frames in the order of the input.
//!
//! A [`FeedSession`] does not track source health. It returns whether the
//! source showed activity, and the caller reports health. The socket helpers at the bottom (send with a timeout,
//! close with a linger) are used by both modes.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::health::{SeqTracker, SeqVerdict};
use super::schema::{self, AckStatus, ErrorCode, Inbound, SchemaError};
use super::telemetry::{self, MessageResult, Mode};
use crate::domain::{AgentEvent, SourceKind};
use crate::ingest::{IngestError, IngestHandle, SubmitOutcome};

/// Maximum wait for one outbound frame to be written. A peer that reads
/// nothing for this long is dropped instead of blocking its connection task.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a close waits for the peer's close reply before dropping TCP.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Bytes read and thrown away after an oversized frame, so that the close
/// frame reaches the peer before the socket is dropped (dropping a socket
/// with unread input makes the kernel send a reset).
const OVERFLOW_DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// The state of one feed connection.
#[derive(Debug)]
pub struct FeedSession {
    mode: Mode,
    /// Source name the events are tagged with.
    source: String,
    /// Remote address, for logs.
    peer: String,
    max_message_bytes: usize,
    /// True until the first text frame; only then may `hello` rename the
    /// source (server mode).
    first_frame: bool,
    seq: SeqTracker,
    /// Invalid inputs on this connection, for log rate limiting.
    invalid_seen: u64,
    /// Rejected events on this connection, for log rate limiting.
    rejected_seen: u64,
    /// Id of the last event acknowledged as accepted or duplicate.
    last_acked: Option<String>,
    /// Close code the peer sent, once it closed.
    peer_close: Option<CloseCode>,
}

/// Result of handling one read from the socket.
#[derive(Debug, Default)]
pub struct Step {
    /// A valid event or heartbeat arrived.
    pub activity: bool,
    /// Set when the connection is over; the socket was closed as needed.
    pub ended: Option<Ended>,
}

/// The end of a connection: reason and the peer's close code.
#[derive(Debug, Clone)]
pub struct Ended {
    /// Short reason for the log line.
    pub reason: String,
    /// Close code the peer sent, if it sent a close frame.
    pub peer_close: Option<CloseCode>,
}

/// The result of one text frame: replies, activity and whether to end.
#[derive(Debug, Default)]
pub struct FrameOutcome {
    /// Text frames to send, in order: acks and errors for the input items.
    pub replies: Vec<String>,
    /// The frame held a valid event or heartbeat: the source is alive.
    pub activity: bool,
    /// Set when the connection must end after sending `replies`.
    pub end: Option<SessionEnd>,
}

/// Reason a connection must end after a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The pipeline is shutting down: close 1001, the platform retries.
    PipelineClosed,
    /// The journal failed, so nothing unacknowledged was committed: close
    /// 1011 so the platform reconnects and sends those events again.
    JournalFailed(String),
    /// Shutdown was requested while a submit was in flight.
    Shutdown,
}

/// Reply slot for one input item, ready or waiting for the submit.
enum Slot {
    Ready(String),
    /// Waits for outcome `index` of the submit.
    Pending {
        index: usize,
        id: String,
    },
}

// === impl FeedSession ===

impl FeedSession {
    /// Starts a session. `seq` carries the sequence state over reconnects in
    /// client mode; a server connection starts from the default.
    pub fn new(mode: Mode, source: String, peer: String, max_message_bytes: usize, seq: SeqTracker) -> FeedSession {
        FeedSession {
            mode,
            source,
            peer,
            max_message_bytes,
            first_frame: true,
            seq,
            invalid_seen: 0,
            rejected_seen: 0,
            last_acked: None,
            peer_close: None,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn last_acked(&self) -> Option<&str> {
        self.last_acked.as_deref()
    }

    pub fn seq(&self) -> SeqTracker {
        self.seq
    }

    /// Processes one text frame. Events are submitted together and the
    /// acknowledgements are built only after the pipeline returned, so an
    /// ack always means committed.
    pub async fn handle_text(
        &mut self,
        text: &str,
        ingest: &IngestHandle,
        shutdown: &CancellationToken,
    ) -> FrameOutcome {
        let first_frame = std::mem::replace(&mut self.first_frame, false);
        let mut outcome = FrameOutcome::default();

        let items = match schema::parse_frame(text, self.max_message_bytes) {
            Ok(items) => items,
            Err(error) => {
                outcome.replies.push(self.invalid(&error));
                return outcome;
            }
        };

        let received_at = Timestamp::now();
        let mut seq = self.seq;
        let mut slots = Vec::with_capacity(items.len());
        let mut events = Vec::new();

        for item in items {
            match item {
                Inbound::Hello { source } => {
                    if let Some(reply) = self.hello(source, first_frame) {
                        slots.push(Slot::Ready(reply));
                    }
                }
                Inbound::Heartbeat { .. } => outcome.activity = true,
                Inbound::InvalidEvent(error) => slots.push(Slot::Ready(self.invalid(&error))),
                Inbound::Event(event) => {
                    outcome.activity = true;
                    match seq.check(event.seq) {
                        SeqVerdict::Duplicate { last_seen } => {
                            telemetry::message(MessageResult::Duplicate);
                            tracing::debug!(source = %self.source, event_id = %event.id, seq = event.seq, last_seen, "dropped replayed event by seq");
                            slots.push(Slot::Ready(schema::ack_frame(&event.id, AckStatus::Duplicate)));
                            continue;
                        }
                        SeqVerdict::Gap { first, last } => telemetry::gap(&self.source, first, last),
                        SeqVerdict::Restarted { last_seen } => {
                            tracing::info!(source = %self.source, seq = event.seq, last_seen, "feed restarted its sequence numbers after reconnect");
                        }
                        SeqVerdict::InOrder => {}
                    }
                    seq.record(event.seq);

                    slots.push(Slot::Pending { index: events.len(), id: event.id.clone() });
                    events.push(AgentEvent {
                        source_kind: SourceKind::WebSocket,
                        source: self.source.clone(),
                        source_event_id: event.id,
                        agent_ref: event.agent,
                        source_time: event.time,
                        received_at,
                        kind: event.kind,
                    });
                }
            }
        }

        let results = if events.is_empty() {
            Vec::new()
        } else {
            match self.submit(events, ingest, shutdown).await {
                Ok(results) => results,
                Err(end) => {
                    // Nothing pending was committed: send only the ready
                    // replies, and keep the old seq so a resend is not
                    // taken for a replay.
                    outcome.replies = slots
                        .into_iter()
                        .filter_map(|slot| match slot {
                            Slot::Ready(reply) => Some(reply),
                            Slot::Pending { .. } => None,
                        })
                        .collect();
                    outcome.end = Some(end);
                    return outcome;
                }
            }
        };
        self.seq = seq;

        for slot in slots {
            let reply = match slot {
                Slot::Ready(reply) => reply,
                Slot::Pending { index, id } => match results.get(index) {
                    Some(SubmitOutcome::Accepted) => self.acked(id, AckStatus::Accepted),
                    Some(SubmitOutcome::Duplicate) => self.acked(id, AckStatus::Duplicate),
                    Some(SubmitOutcome::Rejected { field, message }) => self.rejected(id, field, message),
                    // submit() checked the length; unreachable in practice.
                    None => continue,
                },
            };
            outcome.replies.push(reply);
        }
        outcome
    }

    /// Handles one read from the socket: processes text and binary frames,
    /// sends the replies, and closes the socket when the connection must
    /// end. `message` is what `ws.next()` returned.
    pub async fn process<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        message: Option<Result<Message, WsError>>,
        ingest: &IngestHandle,
        shutdown: &CancellationToken,
    ) -> Step
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut step = Step::default();
        let replies = match message {
            None => {
                step.ended = Some(self.ended("connection closed"));
                return step;
            }
            Some(Ok(Message::Text(text))) => {
                let outcome = self.handle_text(text.as_str(), ingest, shutdown).await;
                step.activity = outcome.activity;
                if let Some(end) = outcome.end {
                    // The connection closes next either way; a failed send
                    // only loses error frames, never an ack.
                    let _ = self.send_all(ws, outcome.replies).await;
                    let (code, reason) = match &end {
                        SessionEnd::PipelineClosed => {
                            (CloseCode::Away, "floorwatch ingest is shutting down; retry later")
                        }
                        SessionEnd::Shutdown => (CloseCode::Away, "floorwatch is shutting down"),
                        SessionEnd::JournalFailed(_) => {
                            (CloseCode::Error, "journal write failed; resend unacknowledged events")
                        }
                    };
                    close(ws, code, reason).await;
                    step.ended = Some(self.ended(reason));
                    return step;
                }
                outcome.replies
            }
            Some(Ok(Message::Binary(data))) => vec![self.handle_binary(data.len())],
            Some(Ok(Message::Close(frame))) => {
                // tungstenite queues the close reply; the next read ends.
                self.peer_close = Some(frame.map_or(CloseCode::Status, |frame| frame.code));
                Vec::new()
            }
            Some(Ok(_)) => Vec::new(),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                let error = SchemaError::frame(
                    ErrorCode::TooLarge,
                    None,
                    format!("message of {size} bytes exceeds the limit of {max_size} bytes"),
                );
                self.invalid(&error);
                close_oversized(ws, size, max_size).await;
                step.ended = Some(self.ended("message too large"));
                return step;
            }
            Some(Err(WsError::Utf8(_))) => {
                let error =
                    SchemaError::frame(ErrorCode::InvalidJson, None, "text frame is not valid UTF-8".to_string());
                self.invalid(&error);
                close(ws, CloseCode::Invalid, "text frame is not valid UTF-8").await;
                step.ended = Some(self.ended("invalid UTF-8"));
                return step;
            }
            Some(Err(err)) => {
                step.ended = Some(self.ended(&format!("read failed: {err}")));
                return step;
            }
        };

        if let Err(reason) = self.send_all(ws, replies).await {
            step.ended = Some(self.ended(&format!("send failed: {reason}")));
        }
        step
    }

    async fn send_all<S>(&self, ws: &mut WebSocketStream<S>, replies: Vec<String>) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        for reply in replies {
            send_text(ws, reply).await?;
        }
        Ok(())
    }

    fn ended(&self, reason: &str) -> Ended {
        Ended { reason: reason.to_string(), peer_close: self.peer_close }
    }

    /// Builds the error frame for a binary frame.
    pub fn handle_binary(&mut self, len: usize) -> String {
        let error = SchemaError::frame(
            ErrorCode::UnsupportedFrame,
            None,
            format!("received a binary frame of {len} bytes; send each message as a JSON text frame"),
        );
        self.invalid(&error)
    }

    async fn submit(
        &self,
        events: Vec<AgentEvent>,
        ingest: &IngestHandle,
        shutdown: &CancellationToken,
    ) -> Result<Vec<SubmitOutcome>, SessionEnd> {
        let count = events.len();
        let answer = tokio::select! {
            biased;
            answer = ingest.submit(events) => answer,
            _ = shutdown.cancelled() => return Err(SessionEnd::Shutdown),
        };

        match answer {
            Ok(results) if results.len() == count => Ok(results),
            Ok(results) => {
                let message = format!("pipeline returned {} outcomes for {count} events", results.len());
                tracing::error!(source = %self.source, peer = %self.peer, %message, "ingest pipeline broke its contract");
                Err(SessionEnd::JournalFailed(message))
            }
            Err(IngestError::ShuttingDown) => Err(SessionEnd::PipelineClosed),
            Err(IngestError::Journal(message)) => {
                tracing::error!(source = %self.source, peer = %self.peer, error = %message, events = count, "journal write failed; closing so the feed resends");
                Err(SessionEnd::JournalFailed(message))
            }
        }
    }

    fn hello(&mut self, source: String, first_frame: bool) -> Option<String> {
        if self.mode == Mode::Client {
            tracing::debug!(source = %self.source, hello_source = %source, "ignoring hello in client mode; the source name comes from the configuration");
            return None;
        }
        if first_frame {
            tracing::info!(peer = %self.peer, from = %self.source, to = %source, "hello names the feed source");
            self.source = source;
            return None;
        }
        if source == self.source {
            return None;
        }
        let error = SchemaError::field(
            ErrorCode::InvalidField,
            "source",
            format!(
                "source: hello is only honoured as the first frame; this connection already feeds \"{}\"; reconnect to change it",
                self.source
            ),
        );
        Some(self.invalid(&error))
    }

    fn acked(&mut self, id: String, status: AckStatus) -> String {
        let result = match status {
            AckStatus::Accepted => MessageResult::Accepted,
            AckStatus::Duplicate => MessageResult::Duplicate,
        };
        telemetry::message(result);
        let reply = schema::ack_frame(&id, status);
        self.last_acked = Some(id);
        reply
    }

    fn rejected(&mut self, id: String, field: &str, message: &str) -> String {
        self.rejected_seen += 1;
        telemetry::rejected(&self.source, &self.peer, &id, field, message, self.rejected_seen);
        let error = SchemaError {
            code: ErrorCode::Rejected,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.to_string(),
            id: Some(id),
        };
        schema::error_frame(&error)
    }

    fn invalid(&mut self, error: &SchemaError) -> String {
        self.invalid_seen += 1;
        telemetry::invalid_input(&self.source, &self.peer, error, self.invalid_seen);
        schema::error_frame(error)
    }
}

/// Sends one text frame, giving up after [`SEND_TIMEOUT`].
pub async fn send_text<S>(ws: &mut WebSocketStream<S>, text: String) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("peer read nothing for {SEND_TIMEOUT:?}")),
    }
}

/// Sends a close frame, then reads until the peer's reply or
/// [`CLOSE_LINGER`], whichever comes first.
pub async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame { code, reason: reason.to_string().into() };
    if tokio::time::timeout(SEND_TIMEOUT, ws.close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

/// Closes with 1009 after a frame or message over `limit` bytes. The
/// WebSocket stream cannot be read any further (the frame's payload was not
/// consumed), so the raw socket is drained, bounded in bytes and time.
pub async fn close_oversized<S>(ws: &mut WebSocketStream<S>, size: usize, limit: usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = format!("message of {size} bytes exceeds the limit of {limit} bytes");
    let frame = CloseFrame { code: CloseCode::Size, reason: reason.into() };
    if tokio::time::timeout(SEND_TIMEOUT, ws.close(Some(frame))).await.is_err() {
        return;
    }

    let socket = ws.get_mut();
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        let mut buffer = vec![0u8; 16 * 1024];
        let mut drained = 0usize;
        while drained < OVERFLOW_DRAIN_BYTES {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
    let _ = socket.shutdown().await;
}
