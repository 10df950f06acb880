//! The SIP ingest adapter: watches each agent's `dialog`, `presence` and
//! `reg` event packages and turns what they report into normalized agent
//! events.
//!
//! So far this holds the pure layers: [`body`] parses NOTIFY bodies and
//! [`agent_state`] keeps the per-AOR state that maps them to
//! [`crate::domain::EventKind`] transitions. Neither does I/O. The SIP
//! stack itself (transport, transactions, SUBSCRIBE and its refreshes) and
//! the task that feeds the ingest pipeline come later.

pub mod agent_state;
pub mod body;
