//! What a change request covers and what the gate is asked about: the `subjects` of a new change
//! request (JSON body, `changegate request --commit/--tree/--artifact`) read by
//! `changes::parse_subjects`, and the gate's query string (`GET /api/v1/gate?system=…&env=…&
//! commit=…`, `changegate check`) read as axum reads it and then by `gate::parse_query`.
//!
//! Checked: the parsed subjects are exactly the valid inputs, in order and in canonical form; an
//! input is refused (an error naming its field) exactly when one subject is invalid, one is
//! listed twice (after normalisation) or there are more than 100; a query is accepted exactly
//! when every parameter parses and some content is named, and then carries those values.
#![no_main]

use changegate_api::{GateParams, WireSubject};
use changegate_app::AppError;
use changegate_app::changes::parse_subjects;
use changegate_app::gate::parse_query;
use changegate_domain::{ArtifactDigest, Code, CommitId, EnvName, Subject, TreeId};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fn expected(s: &WireSubject) -> Option<Subject> {
    match s {
        WireSubject::GitCommit { commit, tree } => Some(Subject::GitCommit {
            commit: CommitId::parse(commit).ok()?,
            tree: TreeId::parse(tree).ok()?,
        }),
        WireSubject::Artifact { digest } => Some(Subject::Artifact {
            digest: ArtifactDigest::parse(digest).ok()?,
        }),
    }
}

fn subjects(data: &[u8]) {
    let Ok(wire) = serde_json::from_slice::<Vec<WireSubject>>(data) else {
        return;
    };
    let mut errors = vec![];
    let out = parse_subjects(&wire, &mut errors);
    if wire.len() > 100 {
        assert!(out.is_empty() && errors.len() == 1, "{errors:?}");
        return;
    }
    let want: Vec<Subject> = wire.iter().filter_map(expected).collect();
    assert_eq!(out, want);
    let invalid = want.len() != wire.len();
    let distinct: BTreeSet<String> = want
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    let twice = distinct.len() != want.len();
    assert_eq!(
        errors.is_empty(),
        !invalid && !twice,
        "{wire:?}: {errors:?}"
    );
    for (field, message) in &errors {
        assert!(field.starts_with("subjects"), "{field}");
        assert!(!message.is_empty());
    }
}

fn query(data: &[u8]) {
    let Ok(p) = serde_urlencoded::from_bytes::<GateParams>(data) else {
        return;
    };
    let given = p.commit.is_some() || p.tree.is_some() || p.artifact.is_some();
    let ok = Code::parse(&p.system).is_ok()
        && EnvName::parse(&p.env).is_ok()
        && p.commit
            .as_deref()
            .is_none_or(|c| CommitId::parse(c).is_ok())
        && p.tree.as_deref().is_none_or(|t| TreeId::parse(t).is_ok())
        && p.artifact
            .as_deref()
            .is_none_or(|a| ArtifactDigest::parse(a).is_ok());
    match parse_query(&p) {
        Ok((code, q)) => {
            assert!(ok && given, "{p:?} accepted");
            assert_eq!(code.as_str(), p.system);
            assert_eq!(q.env.as_str(), p.env);
            assert_eq!(
                q.commit,
                p.commit.as_deref().and_then(|c| CommitId::parse(c).ok())
            );
            assert_eq!(
                q.tree,
                p.tree.as_deref().and_then(|t| TreeId::parse(t).ok())
            );
            assert_eq!(
                q.artifact,
                p.artifact
                    .as_deref()
                    .and_then(|a| ArtifactDigest::parse(a).ok())
            );
        }
        Err(AppError::Invalid(errors)) => {
            assert!(!(ok && given), "{p:?} refused: {errors:?}");
            assert!(!errors.is_empty());
        }
        Err(e) => panic!("{p:?}: not a validation error: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'q', rest)) => query(rest),
        Some((b's', rest)) => subjects(rest),
        _ => {
            subjects(data);
            query(data);
        }
    }
});
