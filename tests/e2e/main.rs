//! End-to-end tests: one test binary, a real server per test.

// Helpers of tests stop the test loudly when a step fails.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod api_second_factor;
mod attestation;
mod audit;
mod authz;
mod break_glass;
mod browser;
mod cli;
mod concurrency;
mod content;
mod crash;
mod crash_random;
mod deployments;
mod freeze;
mod gate;
mod hostile;
mod input;
mod isolation;
mod jobs;
mod longpoll;
mod notifications;
mod openapi;
mod pipeline;
mod process;
mod re_review;
mod remediation;
mod replicas;
mod review;
mod sink;
mod smoke;
mod transitions;
mod vietnamese;
mod web_security;
mod webhook_faults;
