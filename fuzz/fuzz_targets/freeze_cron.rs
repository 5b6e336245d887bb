//! Freeze windows declared through the API (`cron` + `duration_minutes`, read by
//! `gate::parse_cron` with the API's 120-character cap) and judged by the gate in the server's
//! time zone; and the scheduler's job cron expressions (`jobs::parse_job_cron`, `slot_at`).
//!
//! Input: an optional first line `TZ-INDEX NOW-OFFSET-SECONDS DURATION-MINUTES`, then the pattern.
//!
//! Checked: an accepted freeze pattern has 5 fields; its next start is after now; a window is in
//! force at the moment it starts; if no window is in force now, none comes into force before the
//! next start (the signed allow's `valid_until` relies on that); a job's slot is not after now
//! and is its own slot.
#![no_main]

use changegate_app::jobs::{parse_job_cron, slot_at};
use changegate_domain::gate::{Freeze, FreezeSpan, parse_cron};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;

const ZONES: [Tz; 8] = [
    Tz::UTC,
    Tz::Asia__Ho_Chi_Minh,
    Tz::Europe__London,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Pacific__Chatham,
    Tz::America__Santiago,
    Tz::Asia__Tehran,
];

/// Ten years either side of 2026-01-01.
const SPAN: i64 = 10 * 366 * 86_400;

fn header(line: &str) -> Option<(Tz, i64, i64)> {
    let mut it = line.split_whitespace().map(|w| w.parse::<i64>().ok());
    let tz = ZONES[usize::try_from(it.next()??.rem_euclid(8)).ok()?];
    let offset = it.next()??.rem_euclid(2 * SPAN) - SPAN;
    let minutes = it.next()??.rem_euclid(10_080) + 1;
    Some((tz, offset, minutes))
}

fn freeze(pattern: &str, tz: Tz, now: DateTime<Utc>, minutes: i64) {
    // The API refuses longer patterns before parsing them.
    if pattern.len() > 120 {
        return;
    }
    let cron = match parse_cron(pattern) {
        Ok(c) => c,
        Err(e) => {
            assert_eq!(e.field, "cron");
            return;
        }
    };
    assert_eq!(pattern.split_whitespace().count(), 5, "{pattern:?}");
    let f = Freeze {
        id: 1,
        environment: None,
        span: FreezeSpan::Recurring {
            cron: Box::new(cron),
            duration: Duration::minutes(minutes),
            tz,
        },
        reason: "fuzz".into(),
    };
    let env = changegate_domain::EnvName::parse("production").unwrap_or_else(|_| unreachable!());
    let Some(start) = f.next_start(now) else {
        return;
    };
    assert!(
        start > now,
        "{pattern:?} in {tz}: next start {start} is not after {now}"
    );
    assert!(
        f.active(&env, start),
        "{pattern:?} in {tz} for {minutes} min: not in force at its start {start}"
    );
    if !f.active(&env, now) {
        let gap = start - now;
        for k in 1..8 {
            let t = now + gap * k / 8;
            if t < start {
                assert!(
                    !f.active(&env, t),
                    "{pattern:?} in {tz} for {minutes} min: in force at {t}, between {now} and its next start {start}"
                );
            }
        }
    }
}

fn job(pattern: &str, tz: Tz, now: DateTime<Utc>) {
    if pattern.len() > 120 {
        return;
    }
    let Ok(cron) = parse_job_cron(pattern) else {
        return;
    };
    if let Some(slot) = slot_at(&cron, tz, now) {
        assert!(slot <= now, "{pattern:?} in {tz}: slot {slot} after {now}");
        assert_eq!(
            slot_at(&cron, tz, slot),
            Some(slot),
            "{pattern:?} in {tz}: the slot of {slot} is not itself"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, pattern) = text.split_once('\n').unwrap_or(("", text));
    let (tz, offset, minutes, pattern) = match header(head) {
        Some((tz, o, m)) => (tz, o, m, pattern),
        None => (Tz::Asia__Ho_Chi_Minh, 0, 60, text),
    };
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(|| unreachable!());
    let now = base + Duration::seconds(offset);
    freeze(pattern, tz, now, minutes);
    job(pattern, tz, now);
});
