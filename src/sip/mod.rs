//! SIP ingest adapter: floorwatch as a watcher of the platform's event
//! packages. SIP types stay inside this module; the engine sees only
//! normalized agent events.

pub mod subscription;
