//! SIP ingest adapter: floorwatch as a watcher of the platform's event
//! packages. SIP types stay inside this module, and the engine receives only
//! normalized agent events.

pub mod subscription;
