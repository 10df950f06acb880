//! The adherence engine: pure code with explicit time that turns normalized
//! agent events, the roster and the passage of time into agent states,
//! adherence, alarms and figures.
//!
//! Nothing here does I/O or reads a clock; the daemon's engine task owns an
//! [`Engine`], feeds it committed journal entries and publishes its outputs.

pub mod engine;
pub mod figures;
pub mod rules;
pub mod schedule;
pub mod tracker;

pub use engine::{AgentSnapshot, CallSnapshot, Engine, EngineConfig, Output};
pub use figures::DayFigures;
pub use rules::{RuleMatrix, RuleSpec, RuleVerdict};
pub use tracker::{AlarmKind, AlarmState};

#[cfg(test)]
mod tests;
