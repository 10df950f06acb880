//! floorwatch: live adherence, listen-in and chat for contact centers whose
//! agents work from home.

pub mod adherence;
pub mod admin;
pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod floor;
pub mod i18n;
pub mod ingest;
pub mod roster;
pub mod sip;
pub mod store;
pub mod telemetry;
pub mod watch;
pub mod websocket;

/// Generated gRPC types and services of package `floorwatch.v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("floorwatch.v1");

    /// Encoded descriptor set of every floorwatch proto, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/floorwatch_descriptor.bin"));
}
