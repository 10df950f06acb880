//! The simulated site behind `floorwatch demo`: a generated agent directory
//! and week roster, agents that behave against that roster, and the encoders
//! that turn both into the files and frames the daemon's normal import and
//! ingest paths accept.
//!
//! Everything here is pure: time comes in as an argument and randomness from
//! a seeded generator, so a seed reproduces a site and its events exactly.
//! Nothing here opens a socket, reads the clock or publishes anything; the
//! `demo` command does that with what these functions return.

mod behaviour;
pub mod driver;
mod export;
mod names;
mod site;

pub use behaviour::{NoShow, SimEvent, Simulator, codes};
pub use export::{sim_event_to_json_v1, site_agents_csv, site_roster_csv};
pub use site::{DEFAULT_AGENTS, FIRST_EXTENSION, Site, generate_site};
