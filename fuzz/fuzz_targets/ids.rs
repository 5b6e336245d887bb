//! Identifiers from outside: system and organisation codes, usernames, environments, commit and
//! tree ids, `sha256:` digests, security levels, the named enums (kinds, states, roles, …), job
//! names and the JSON form of a subject.
//!
//! Checked, for every input: a parser accepts exactly what its documentation describes (an
//! independent predicate written from the doc comment); an accepted value is in canonical form,
//! parses again to itself from its `Display`, and deserialises from JSON the same way `parse`
//! reads it; a refusal names the value (cut to 80 characters).
#![no_main]

use changegate_app::jobs::Job;
use changegate_domain::{
    ArtifactDigest, ChangeKind, CheckResult, Code, CommitId, Conclusion, CrState, EnvName, OrgKind,
    ParseError, Role, SecurityLevel, Severity, Subject, TreeId, Username,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use std::fmt::{Debug, Display};

/// `parse(s)` agrees with the documented shape, round-trips, and agrees with serde.
fn check<T>(s: &str, parse: fn(&str) -> Result<T, ParseError>, documented: bool, canonical: String)
where
    T: Display + Debug + PartialEq + DeserializeOwned,
{
    let parsed = parse(s);
    assert_eq!(
        parsed.is_ok(),
        documented,
        "{s:?}: parse gave {parsed:?}, the documented shape says {documented}"
    );
    let from_json = serde_json::from_value::<T>(serde_json::Value::String(s.to_owned()));
    assert_eq!(
        from_json.is_ok(),
        parsed.is_ok(),
        "{s:?}: serde and parse disagree"
    );
    match parsed {
        Ok(v) => {
            assert_eq!(v.to_string(), canonical, "{s:?}: not in canonical form");
            assert_eq!(
                parse(&v.to_string()).as_ref(),
                Ok(&v),
                "{s:?}: the canonical form does not parse to itself"
            );
            assert_eq!(from_json.ok().as_ref(), Some(&v));
        }
        Err(e) => {
            assert_eq!(e.value, s.chars().take(80).collect::<String>());
            assert!(e.to_string().contains(e.field));
        }
    }
}

fn hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn named<T: Copy + Debug + PartialEq + DeserializeOwned>(
    s: &str,
    all: &[T],
    parse: fn(&str) -> Result<T, ParseError>,
    name: fn(T) -> &'static str,
) {
    let documented = all.iter().any(|v| name(*v) == s);
    let parsed = parse(s);
    assert_eq!(parsed.is_ok(), documented, "{s:?}: {parsed:?}");
    if let Ok(v) = parsed {
        assert_eq!(name(v), s);
    }
    // The wire name (serde's snake_case) is the same as the parser's.
    let from_json = serde_json::from_value::<T>(serde_json::Value::String(s.to_owned())).ok();
    assert_eq!(from_json, parse(s).ok(), "{s:?}: serde and parse disagree");
}

fn one(s: &str) {
    let first = s.chars().next();
    let in_set = |ok: fn(char) -> bool| s.chars().all(ok);

    // Code: 1-64 ASCII letters, digits, '-', '_', '.', starting with a letter or digit.
    check(
        s,
        Code::parse,
        (1..=64).contains(&s.len())
            && first.is_some_and(|c| c.is_ascii_alphanumeric())
            && in_set(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        s.to_owned(),
    );
    // Username: 2-64 lowercase ASCII letters, digits, '.', '_', '-', starting with a letter.
    check(
        s,
        Username::parse,
        (2..=64).contains(&s.len())
            && first.is_some_and(|c| c.is_ascii_lowercase())
            && in_set(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)),
        s.to_owned(),
    );
    // Environment: 1-32 lowercase ASCII letters, digits and '-' (not starting with '-').
    check(
        s,
        EnvName::parse,
        (1..=32).contains(&s.len())
            && first.is_some_and(|c| c != '-')
            && in_set(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        s.to_owned(),
    );
    // Commit and tree ids: exactly 40 hex digits, stored lowercase.
    check(s, CommitId::parse, hex(s, 40), s.to_ascii_lowercase());
    check(s, TreeId::parse, hex(s, 40), s.to_ascii_lowercase());
    // Digest: 'sha256:' and 64 hex digits, stored lowercase.
    let digest_ok = s.strip_prefix("sha256:").is_some_and(|h| hex(h, 64));
    check(s, ArtifactDigest::parse, digest_ok, s.to_ascii_lowercase());
    if let Ok(d) = ArtifactDigest::parse(s) {
        let h = &d.as_str()[7..];
        assert!(d.as_str().starts_with("sha256:") && d.as_str().len() == 71);
        assert!(
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    // Level: a whole number from 1 to 5 (surrounding white space allowed).
    let level = s.trim().parse::<i64>().ok().filter(|n| (1..=5).contains(n));
    match SecurityLevel::parse(s) {
        Ok(l) => {
            assert_eq!(Some(i64::from(l.get())), level, "{s:?}");
            assert_eq!(SecurityLevel::parse(&l.to_string()), Ok(l));
            assert_eq!(
                serde_json::from_str::<SecurityLevel>(&l.to_string()).ok(),
                Some(l)
            );
        }
        Err(_) => assert_eq!(level, None, "{s:?}"),
    }

    named(s, ChangeKind::ALL, ChangeKind::parse, ChangeKind::as_str);
    named(s, CrState::ALL, CrState::parse, CrState::as_str);
    named(s, Conclusion::ALL, Conclusion::parse, Conclusion::as_str);
    named(s, CheckResult::ALL, CheckResult::parse, CheckResult::as_str);
    named(s, Severity::ALL, Severity::parse, Severity::as_str);
    named(s, &Role::ALL, Role::parse, Role::as_str);
    let kinds = [OrgKind::Owner, OrgKind::Reviewer, OrgKind::Inspector];
    named(s, &kinds, OrgKind::parse, OrgKind::as_str);
    match Job::parse(s) {
        Ok(j) => assert_eq!(j.name(), s),
        Err(e) => assert!(Job::ALL.iter().all(|j| j.name() != s), "{e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    one(&text);
    // Each line alone too, so that one input exercises several short values.
    if text.contains('\n') {
        for line in text.lines().take(8) {
            one(line);
        }
    }
    // A subject as JSON (the wire and database form): accepted ones round-trip canonically.
    if let Ok(sub) = serde_json::from_slice::<Subject>(data) {
        let again = serde_json::to_string(&sub).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Subject>(&again).ok(),
            Some(sub.clone())
        );
        match &sub {
            Subject::GitCommit { commit, tree } => {
                assert!(CommitId::parse(commit.as_str()).is_ok());
                assert!(TreeId::parse(tree.as_str()).is_ok());
            }
            Subject::Artifact { digest } => {
                assert!(ArtifactDigest::parse(digest.as_str()).is_ok())
            }
        }
    }
});
