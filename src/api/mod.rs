//! The gRPC API (package `floorwatch.v1`): floor and alarm streams,
//! adherence figures, the roster, and event ingest, with bearer-token
//! authentication on every call.

pub mod adherence;
pub mod auth;
pub mod convert;
pub mod floor;
pub mod ingest;
pub mod roster;
pub mod server;
pub mod source_health;
pub mod state;
