//! Unit tests for the wire checks on small hand-written messages.
