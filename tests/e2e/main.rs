//! End-to-end tests: one test binary, a real server per test.

mod content;
mod gate;
mod smoke;
