//! Newtypes for every identifier that comes from outside. Each has a `parse` that refuses invalid
//! input with a [`ParseError`] naming the field and the value, and normalises (hex to lowercase).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value from outside that does not have the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {expected}")]
pub struct ParseError {
    /// Which kind of value was expected (`system code`, `commit id`, …).
    pub field: &'static str,
    /// The offending value, cut to 80 characters.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

impl ParseError {
    fn new(field: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            field,
            value: value.chars().take(80).collect(),
            expected,
        }
    }
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn all_chars(s: &str, ok: impl Fn(char) -> bool) -> bool {
    s.chars().all(ok)
}

string_newtype!(
    /// Code of an organisation or a system: 1–64 ASCII letters, digits, `-`, `_`, `.`, starting
    /// with a letter or digit (`STNMT`, `tthc-tinh`).
    Code
);
impl Code {
    /// Parses a code.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = (1..=64).contains(&s.len())
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && all_chars(s, |c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "code",
                s,
                "1-64 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit",
            ))
        }
    }
}

string_newtype!(
    /// A username: 2–64 lowercase ASCII letters, digits, `.`, `_`, `-`, starting with a letter.
    Username
);
impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = (2..=64).contains(&s.len())
            && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && all_chars(s, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "username",
                s,
                "2-64 lowercase ASCII letters, digits, '.', '_' or '-', starting with a letter",
            ))
        }
    }
}

string_newtype!(
    /// An environment name: 1–32 lowercase ASCII letters, digits and `-` (`production`, `staging`).
    EnvName
);
impl EnvName {
    /// Parses an environment name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = (1..=32).contains(&s.len())
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && all_chars(s, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new(
                "environment",
                s,
                "1-32 lowercase ASCII letters, digits or '-'",
            ))
        }
    }
}

fn hex_exact(s: &str, len: usize) -> Option<String> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

string_newtype!(
    /// A git commit id: exactly 40 hexadecimal digits (SHA-1 object id), stored lowercase.
    CommitId
);
impl CommitId {
    /// Parses a commit id.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        hex_exact(s, 40)
            .map(Self)
            .ok_or_else(|| ParseError::new("commit id", s, "exactly 40 hexadecimal digits"))
    }
}

string_newtype!(
    /// A git tree id: exactly 40 hexadecimal digits, stored lowercase.
    TreeId
);
impl TreeId {
    /// Parses a tree id.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        hex_exact(s, 40)
            .map(Self)
            .ok_or_else(|| ParseError::new("tree id", s, "exactly 40 hexadecimal digits"))
    }
}

string_newtype!(
    /// An artifact digest: `sha256:` followed by 64 hexadecimal digits, stored lowercase.
    ArtifactDigest
);
impl ArtifactDigest {
    /// Parses an artifact digest.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        s.strip_prefix("sha256:")
            .and_then(|h| hex_exact(h, 64))
            .map(|h| Self(format!("sha256:{h}")))
            .ok_or_else(|| {
                ParseError::new(
                    "artifact digest",
                    s,
                    "'sha256:' followed by 64 hexadecimal digits",
                )
            })
    }
}

/// Security level (*cấp độ*) 1–5 under Decree 85/2016.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// Parses a level from a number.
    pub fn new(n: i64) -> Result<Self, ParseError> {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=5).contains(n))
            .map(Self)
            .ok_or_else(|| {
                ParseError::new(
                    "security level",
                    &n.to_string(),
                    "a whole number from 1 to 5",
                )
            })
    }
    /// Parses a level from text.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| ParseError::new("security level", s, "a whole number from 1 to 5"))
            .and_then(Self::new)
    }
    /// The level as a number 1–5.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for SecurityLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::new(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a change request asks to deploy, bound to content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Subject {
    /// A git commit and its tree. A later commit with the same tree (a rebase or a reworded
    /// message) is the same content and stays covered; any change of content is a new subject.
    GitCommit {
        /// The commit id.
        commit: CommitId,
        /// The commit's tree id.
        tree: TreeId,
    },
    /// A build artifact, by digest.
    Artifact {
        /// `sha256:…`
        digest: ArtifactDigest,
    },
}

str_enum!(
    /// Which kind of [`Subject`] a subject is, as its row records it.
    SubjectKind, "subject kind" {
        /// A git commit and its tree.
        GitCommit = "git_commit",
        /// A build artifact.
        Artifact = "artifact",
    }
);

impl Subject {
    /// Its kind.
    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::GitCommit { .. } => SubjectKind::GitCommit,
            Subject::Artifact { .. } => SubjectKind::Artifact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commit_ids_are_forty_hex_digits_and_lowercased() {
        let id = CommitId::parse(&"AB".repeat(20)).map(|c| c.to_string());
        assert_eq!(id, Ok("ab".repeat(20)));
        assert!(CommitId::parse(&"a".repeat(39)).is_err());
        assert!(CommitId::parse(&"g".repeat(40)).is_err());
        assert!(CommitId::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn digests_need_the_sha256_prefix_and_64_hex_digits() {
        assert!(ArtifactDigest::parse(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(ArtifactDigest::parse(&"0".repeat(64)).is_err());
        assert!(ArtifactDigest::parse(&format!("sha512:{}", "0".repeat(64))).is_err());
        assert!(ArtifactDigest::parse(&format!("sha256:{}", "0".repeat(63))).is_err());
    }

    #[test]
    fn levels_outside_one_to_five_are_refused() {
        assert!(SecurityLevel::new(0).is_err());
        assert!(SecurityLevel::new(6).is_err());
        assert!(SecurityLevel::new(-3).is_err());
        assert_eq!(SecurityLevel::new(3).map(SecurityLevel::get), Ok(3));
    }

    #[test]
    fn parse_errors_name_the_bad_value() {
        let e = Code::parse("bad code!")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"bad code!\""), "{e}");
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_accepted_values_round_trip(s in "\\PC{0,80}") {
            if let Ok(c) = Code::parse(&s) { prop_assert_eq!(c.as_str(), s.as_str()); }
            if let Ok(c) = EnvName::parse(&s) { prop_assert_eq!(c.as_str(), s.as_str()); }
            if let Ok(c) = Username::parse(&s) { prop_assert_eq!(c.as_str(), s.as_str()); }
            if let Ok(c) = CommitId::parse(&s) { prop_assert_eq!(c.as_str(), s.to_ascii_lowercase()); }
            if let Ok(c) = ArtifactDigest::parse(&s) { prop_assert_eq!(c.as_str(), s.to_ascii_lowercase()); }
            let _ = SecurityLevel::parse(&s);
        }

        #[test]
        fn any_forty_hex_digits_are_a_commit(s in "[0-9a-fA-F]{40}") {
            prop_assert!(CommitId::parse(&s).is_ok());
        }
    }
}
