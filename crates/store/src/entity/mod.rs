//! sea-orm entities, one module per table. JSON-valued columns are stored as text so that they
//! round-trip byte for byte on both backends (the audit hash covers exact text).

pub mod api_token;
pub mod audit_checkpoint;
pub mod audit_event;
pub mod audit_head;
pub mod change_request;
pub mod cr_subject;
pub mod delivery;
pub mod deployment;
pub mod external_assessment;
pub mod freeze_window;
pub mod github_delivery;
pub mod github_pending;
pub mod incident;
pub mod incident_notice;
pub mod job_run;
pub mod observation;
pub mod observation_source;
pub mod organisation;
pub mod record_counter;
pub mod remediation;
pub mod reminder;
pub mod security_signal;
pub mod session;
pub mod sign_off;
pub mod signing_key;
pub mod system;
pub mod unapproved_content;
pub mod user;
pub mod web_draft;
pub mod web_form_use;
pub mod webhook;
