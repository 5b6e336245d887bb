//! Policy packs (`workflows/*.toml`), read by `PolicyPack::parse` at start-up.
//!
//! Checked: a pack that parses keeps every documented bound (quorum 1-9, re-review at most 120
//! months, validity 1-3650 days, window 1-720 hours, …); each level's rule is the one written
//! under the one key that names that level; written back as TOML it parses again to the same
//! pack (it re-validates). A refusal names the file, and the line it cites is in the text.
#![no_main]

use changegate_domain::policy::{
    Approval, ChecklistItem, Emergency, Evaluation, Incidents, LevelRule, PackMeta, Registration,
    Reminders,
};
use changegate_domain::{ChangeKind, PolicyPack, SecurityLevel};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The TOML layout of a pack, written from a parsed one.
#[derive(Serialize)]
struct Doc<'a> {
    pack: &'a PackMeta,
    approval: &'a Approval,
    registration: &'a Registration,
    evaluation: &'a Evaluation,
    reminders: &'a Reminders,
    emergency: &'a Emergency,
    incidents: &'a Incidents,
    levels: BTreeMap<String, LevelRule>,
    checklist: &'a [ChecklistItem],
}

fn levels() -> impl Iterator<Item = SecurityLevel> {
    (1..=5).filter_map(|n| SecurityLevel::new(n).ok())
}

fn doc(p: &PolicyPack) -> Doc<'_> {
    Doc {
        pack: &p.meta,
        approval: &p.approval,
        registration: &p.registration,
        evaluation: &p.evaluation,
        reminders: &p.reminders,
        emergency: &p.emergency,
        incidents: &p.incidents,
        levels: levels().map(|l| (l.to_string(), p.level(l))).collect(),
        checklist: &p.checklist,
    }
}

fn bounds(p: &PolicyPack) {
    for l in levels() {
        let r = p.level(l);
        assert!((1..=9).contains(&r.quorum), "level {l}: {r:?}");
        assert!(r.re_review_months <= 120, "level {l}: {r:?}");
    }
    assert!((1..=3650).contains(&p.approval.validity_days));
    assert!((1..=5).contains(&p.registration.population_db_min_level));
    assert!((1..=720).contains(&p.emergency.window_hours));
    assert!(p.incidents.breach_notify_hours >= 1);
    assert!(
        p.reminders
            .days_before
            .iter()
            .all(|d| (1..=365).contains(d))
    );
    assert!(!p.checklist.is_empty());
    let mut ids = BTreeSet::new();
    for item in &p.checklist {
        assert!(!item.id.is_empty() && item.id.len() <= 64, "{:?}", item.id);
        assert!(
            item.id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{:?}",
            item.id
        );
        assert!(ids.insert(item.id.as_str()), "{:?} twice", item.id);
        assert!(!item.vi.trim().is_empty() && !item.en.trim().is_empty());
        assert_eq!(p.item(&item.id), Some(item));
    }
    assert!(p.requires_evaluation(ChangeKind::ReReview));
}

/// Each level is named by exactly one key of `[levels]`, and its rule is the one under that key.
fn levels_as_written(p: &PolicyPack, text: &str) {
    let Ok(value) = text.parse::<toml::Table>() else {
        panic!("a pack parsed but its text is not a TOML table");
    };
    let Some(table) = value.get("levels").and_then(toml::Value::as_table) else {
        panic!("a pack parsed without a [levels] table");
    };
    for l in levels() {
        let keys: Vec<&String> = table
            .keys()
            .filter(|k| SecurityLevel::parse(k) == Ok(l))
            .collect();
        assert_eq!(keys.len(), 1, "level {l} is named by the keys {keys:?}");
        let written = toml::Value::try_into::<LevelRule>(table[keys[0].as_str()].clone()).ok();
        assert_eq!(written, Some(p.level(l)), "level {l}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicyPack::parse("fuzz.toml", text) {
        Ok(p) => {
            bounds(&p);
            levels_as_written(&p, text);
            let written = match toml::to_string(&doc(&p)) {
                Ok(t) => t,
                Err(e) => panic!("a parsed pack cannot be written back: {e}"),
            };
            let again = match PolicyPack::parse("again.toml", &written) {
                Ok(p) => p,
                Err(e) => panic!("a parsed pack written back does not re-validate: {e}\n{written}"),
            };
            let (a, b) = (
                serde_json::to_value(doc(&p)).ok(),
                serde_json::to_value(doc(&again)).ok(),
            );
            assert!(a.is_some());
            assert_eq!(a, b, "the pack changed when written back and read again");
        }
        Err(e) => {
            assert_eq!(e.file, "fuzz.toml");
            assert!(!e.message.is_empty());
            assert!(e.to_string().starts_with("policy pack fuzz.toml: "));
            if let Some(rest) = e.message.strip_prefix("line ") {
                let n: usize = rest
                    .split(':')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let lines = text.matches('\n').count() + 1;
                assert!(
                    (1..=lines).contains(&n),
                    "{}: the text has {lines} lines",
                    e.message
                );
            }
        }
    }
});
