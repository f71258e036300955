//! Tests of rmi: compile-time tests (trybuild UI tests, a hygiene test) and end-to-end tests live under `tests/`.

pub mod process;
pub mod services;
