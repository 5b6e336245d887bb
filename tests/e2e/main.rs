//! End-to-end tests: one test binary, a real server per test.

// Helpers of tests stop the test loudly when a step fails.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod annual_report;
mod api_second_factor;
mod attestation;
mod audit;
mod authz;
mod backup;
mod break_glass;
mod browser;
mod cli;
mod concurrency;
mod content;
mod crash;
mod crash_random;
mod deployments;
mod enforce;
mod freeze;
mod gate;
mod hostile;
mod incident_clocks;
mod input;
mod isolation;
mod jobs;
mod k8s_mtls;
mod live_index;
mod longpoll;
mod notifications;
mod officials_ui;
mod openapi;
mod ops;
mod people;
mod pipeline;
mod process;
mod re_review;
mod registry;
mod remediation;
mod remediation_loop;
mod replicas;
mod review;
mod rules_2026;
mod sink;
mod smoke;
mod snapshots;
mod transitions;
mod upgrade;
mod vietnamese;
mod web_security;
mod webhook_faults;
