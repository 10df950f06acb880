//! The SIP ingest adapter: watches each agent's `dialog`, `presence` and
//! `reg` event packages and turns what they report into normalized agent
//! events. SIP types stay inside this module; the engine receives only
//! normalized agent events.
//!
//! So far this holds the pure layers: [`body`] parses NOTIFY bodies,
//! [`agent_state`] keeps the per-AOR state that maps them to
//! [`crate::domain::EventKind`] transitions, and [`subscription`] keeps one
//! RFC 6665 subscription per agent and package alive. None does I/O.
// TODO: the SIP stack (transport, transactions, digest) and the task that
// drives these layers and feeds the ingest pipeline are not built yet.

pub mod adapter;
pub mod agent_state;
pub mod body;
mod stack;
pub mod subscription;
pub mod telemetry;
pub mod wire;
