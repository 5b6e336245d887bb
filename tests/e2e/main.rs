//! End-to-end tests: one test binary, a real server per test.

// Helpers of tests stop the test loudly when a step fails.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod content;
mod gate;
mod input;
mod openapi;
mod review;
mod smoke;
mod transitions;
mod vietnamese;
