//! The webhook outbox: where a delivery stands.

use serde::{Deserialize, Serialize};
use std::fmt;

str_enum!(
    /// Where a webhook delivery stands.
    DeliveryStatus, "delivery status" {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// Delivered.
        Delivered = "delivered",
        /// Given up after a day of retries, or undeliverable (its webhook is gone).
        Failed = "failed",
    }
);
