//! The codes a client acts on, as enums: the gate's decision, the reasons of a denial and the
//! problem codes of error answers. On the wire they are the same snake_case strings as always;
//! a code this build does not know (from a newer server) reads as `Other` and keeps its text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! wire_codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this build does not know, as sent.
            Other(String),
        }

        impl $name {
            /// Every known code.
            pub const ALL: &[$name] = &[$($name::$variant),*];

            /// The code's string on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }

            /// The code named by `s` (`Other` when unknown).
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::parse(s)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name::parse(&s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                String::schema()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

wire_codes! {
    /// The gate's answer.
    Decision {
        /// The content may deploy.
        Allow = "allow",
        /// It may not.
        Deny = "deny",
    }
}

wire_codes! {
    /// Why the gate denied. CI pipelines depend on these strings.
    ReasonCode {
        /// No system has that code.
        UnknownSystem = "unknown_system",
        /// The system is suspended.
        SystemSuspended = "system_suspended",
        /// The system is retired.
        SystemRetired = "system_retired",
        /// An open incident of blocking severity.
        IncidentOpen = "incident_open",
        /// The periodic re-review is overdue.
        ReReviewOverdue = "re_review_overdue",
        /// A condition of an approval that closes the gate is overdue and not verified.
        ConditionOverdue = "condition_overdue",
        /// Inside a freeze window.
        FreezeWindow = "freeze_window",
        /// No approved change request covers the content.
        NoApprovedChange = "no_approved_change",
        /// A change request covering it waits for its evaluation.
        PendingEvaluation = "pending_evaluation",
        /// The evaluation of a change request covering it failed.
        EvaluationFailed = "evaluation_failed",
        /// The approval covering it has expired.
        ApprovalExpired = "approval_expired",
        /// The approval covering it was revoked.
        ApprovalRevoked = "approval_revoked",
        /// The approval does not cover that environment.
        EnvironmentNotCovered = "environment_not_covered",
        /// The server could not gather the facts; fail closed.
        GateUnavailable = "gate_unavailable",
    }
}

wire_codes! {
    /// The stable code of an error answer (`Problem.code`).
    ProblemCode {
        /// No or an unknown credential.
        Unauthorized = "unauthorized",
        /// The token has expired.
        TokenExpired = "token_expired",
        /// The actor may not do this.
        Forbidden = "forbidden",
        /// Separation of duties forbids it.
        SeparationOfDuties = "separation_of_duties",
        /// No such thing, or not visible to the actor.
        NotFound = "not_found",
        /// Fields are invalid (see `errors`).
        ValidationFailed = "validation_failed",
        /// The change is not in a state that allows this.
        IllegalTransition = "illegal_transition",
        /// The reviewer has already signed off this change.
        AlreadySigned = "already_signed",
        /// A major change passes only after its external assessment is recorded (Decree
        /// 331/2026 Art. 31.2.c).
        ExternalAssessmentRequired = "external_assessment_required",
        /// Something with that code or name exists.
        AlreadyExists = "already_exists",
        /// The account already has a second factor.
        AlreadyEnrolled = "already_enrolled",
        /// No second-factor enrolment was started, or it changed meanwhile.
        NoEnrolment = "no_enrolment",
        /// The password was changed meanwhile.
        PasswordChanged = "password_changed",
        /// The gate cannot decide now; deny.
        GateUnavailable = "gate_unavailable",
        /// The server is not ready.
        NotReady = "not_ready",
        /// The body is not JSON.
        MalformedJson = "malformed_json",
        /// The JSON body does not fit the operation.
        InvalidBody = "invalid_body",
        /// The query does not fit the operation.
        InvalidQuery = "invalid_query",
        /// The body is not `application/json`.
        UnsupportedMediaType = "unsupported_media_type",
        /// The body is too large.
        PayloadTooLarge = "payload_too_large",
        /// The request could not be read.
        BadRequest = "bad_request",
        /// The path does not take that method.
        MethodNotAllowed = "method_not_allowed",
        /// The server failed; see its log.
        InternalError = "internal_error",
        /// `POST /k8s/validate` got a body that is not an AdmissionReview v1 with a uid.
        NotAdmissionReview = "not_admission_review",
        /// Too many failed sign-ins from this address; the detail says until when.
        SignInThrottled = "sign_in_throttled",
        /// The account is locked after repeated failures; the detail says until when.
        AccountLocked = "account_locked",
        /// The system is retired: it takes no new change requests and cannot be retired again.
        SystemRetired = "system_retired",
        /// An admin cannot deactivate or change their own account.
        OwnAccount = "own_account",
        /// The change would leave no active admin.
        LastAdmin = "last_admin",
        /// Deactivating an account that is already inactive.
        AlreadyInactive = "already_inactive",
        /// Reactivating an account that is already active.
        AlreadyActive = "already_active",
        /// The account is inactive (reactivate it first).
        AccountInactive = "account_inactive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_as_written_and_unknown_ones_keep_their_text() {
        for c in ProblemCode::ALL {
            let json = serde_json::to_string(c).unwrap_or_default();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(
                serde_json::from_str::<ProblemCode>(&json).ok().as_ref(),
                Some(c)
            );
        }
        let later: ReasonCode =
            serde_json::from_str("\"moon_phase\"").unwrap_or(ReasonCode::FreezeWindow);
        assert_eq!(later, ReasonCode::Other("moon_phase".into()));
        assert_eq!(
            serde_json::to_string(&later).unwrap_or_default(),
            "\"moon_phase\""
        );
        assert_eq!(Decision::parse("allow"), Decision::Allow);
        assert!(ReasonCode::PendingEvaluation == "pending_evaluation");
    }
}
