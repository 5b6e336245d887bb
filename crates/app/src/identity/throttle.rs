//! Sign-in throttling (issue 16): wrong passwords slow and then stop the address that sends them,
//! not the account they name, so that an outsider who knows a reviewer's username cannot lock the
//! reviewer out.
//!
//! Failures are counted in memory, per replica, in three bounded maps: by (account, address), by
//! address alone (an IPv6 address by its /64), and by account across addresses. [`PAIR_LIMIT`]
//! failures of one account from one address, or [`ADDRESS_LIMIT`] from one address whatever the
//! accounts, throttle that pair or address for [`THROTTLE_FOR`]; only [`ACCOUNT_LOCK_AFTER`]
//! failures of one account, from addresses its organisation admits, lock the account itself
//! (failures from addresses its IP allow-list refuses never count towards that). A count lapses
//! [`WINDOW`] after its last failure.
//!
//! A map at its capacity first drops lapsed counts, then the lowest tenth of the counts that
//! throttle nothing: a sprayer of new names or addresses cannot wipe the counts that matter.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures of one account from one address that throttle that pair.
pub const PAIR_LIMIT: u32 = 5;
/// Failures from one address, whatever the accounts, that throttle that address.
pub const ADDRESS_LIMIT: u32 = 20;
/// Failures of one account, from any addresses its organisation admits, that lock the account.
pub const ACCOUNT_LOCK_AFTER: u32 = 50;
/// How long a throttle lasts.
pub const THROTTLE_FOR: Duration = Duration::minutes(15);
/// A count lapses this long after its last failure.
pub const WINDOW: Duration = Duration::minutes(15);
/// Counts kept per map, at most.
const CAPACITY: usize = 100_000;

/// What stops a sign-in before its password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Too many failures from this address (for this account, or for any): until then.
    Throttled(DateTime<Utc>),
    /// Too many failures of this account: until then.
    Locked(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    n: u32,
    last: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl Count {
    fn lapsed(&self, now: DateTime<Utc>) -> bool {
        match self.until {
            Some(u) => u <= now,
            None => self.last + WINDOW <= now,
        }
    }
}

#[derive(Debug)]
struct Counts<K> {
    map: HashMap<K, Count>,
    cap: usize,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap,
        }
    }

    fn until(&self, k: &K, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.map.get(k).and_then(|c| c.until).filter(|u| *u > now)
    }

    /// Counts a failure; returns the count and when a throttle it started (or runs) ends.
    fn bump(&mut self, k: &K, now: DateTime<Utc>, limit: u32, hold: Duration) -> (u32, bool) {
        if !self.map.contains_key(k) && self.map.len() >= self.cap {
            self.evict(now);
        }
        let c = self.map.entry(k.clone()).or_insert(Count {
            n: 0,
            last: now,
            until: None,
        });
        if c.lapsed(now) {
            *c = Count {
                n: 0,
                last: now,
                until: None,
            };
        }
        if c.until.is_some() {
            return (c.n, false);
        }
        c.n = c.n.saturating_add(1);
        c.last = now;
        let starts = c.n >= limit;
        if starts {
            c.until = Some(now + hold);
        }
        (c.n, starts)
    }

    /// Makes room: lapsed counts go, then the lowest tenth of those that throttle nothing.
    fn evict(&mut self, now: DateTime<Utc>) {
        self.map.retain(|_, c| !c.lapsed(now));
        if self.map.len() < self.cap * 9 / 10 {
            return;
        }
        let mut ns: Vec<u32> = self
            .map
            .values()
            .filter(|c| c.until.is_none())
            .map(|c| c.n)
            .collect();
        if ns.is_empty() {
            // Every count throttles: the oldest tenth goes (they lapse first anyway).
            let mut ends: Vec<DateTime<Utc>> = self.map.values().filter_map(|c| c.until).collect();
            let k = ends.len() / 10;
            let (_, cut, _) = ends.select_nth_unstable(k);
            let cut = *cut;
            self.map.retain(|_, c| c.until.is_some_and(|u| u > cut));
            return;
        }
        let k = (self.cap / 10).min(ns.len() - 1);
        let (_, cut, _) = ns.select_nth_unstable(k);
        let cut = *cut;
        let mut room = self.cap / 10;
        self.map.retain(|_, c| {
            if room > 0 && c.until.is_none() && c.n <= cut {
                room -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// The address a throttle applies to: an IPv6 address by its /64 (one host's share).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        v4 => v4,
    }
}

/// The counts.
#[derive(Debug)]
pub struct Throttle {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    pairs: Counts<(String, IpAddr)>,
    addresses: Counts<IpAddr>,
    accounts: Counts<String>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

/// What one failure did.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// Failures of this account from this address in a row (for the backoff).
    pub pair: u32,
    /// When this failure locked the account: until then.
    pub locks_account: Option<DateTime<Utc>>,
}

impl Throttle {
    /// A throttle that keeps at most `cap` counts per map.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                pairs: Counts::new(cap),
                addresses: Counts::new(cap),
                accounts: Counts::new(cap),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a sign-in as `account` from `ip` is stopped now, and until when.
    pub fn blocked(&self, account: &str, ip: IpAddr, now: DateTime<Utc>) -> Option<Blocked> {
        let g = self.lock();
        if let Some(u) = g.accounts.until(&account.to_owned(), now) {
            return Some(Blocked::Locked(u));
        }
        let pair = g.pairs.until(&(account.to_owned(), address_key(ip)), now);
        let addr = g.addresses.until(&address_key(ip), now);
        pair.max(addr).map(Blocked::Throttled)
    }

    /// Counts a failed sign-in as `account` from `ip`; `admitted`: whether the account's
    /// organisation admits the address (only then does it count towards the account's lock).
    pub fn failed(&self, account: &str, ip: IpAddr, admitted: bool, now: DateTime<Utc>) -> Failure {
        let mut g = self.lock();
        let ip = address_key(ip);
        let (pair, _) = g
            .pairs
            .bump(&(account.to_owned(), ip), now, PAIR_LIMIT, THROTTLE_FOR);
        g.addresses.bump(&ip, now, ADDRESS_LIMIT, THROTTLE_FOR);
        let locks_account = if admitted {
            let (_, starts) =
                g.accounts
                    .bump(&account.to_owned(), now, ACCOUNT_LOCK_AFTER, THROTTLE_FOR);
            starts.then_some(now + THROTTLE_FOR)
        } else {
            None
        };
        Failure {
            pair,
            locks_account,
        }
    }

    /// A successful sign-in as `account` from `ip`: that pair starts again.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        self.lock()
            .pairs
            .map
            .remove(&(account.to_owned(), address_key(ip)));
    }

    /// An admin unlocked `account`: its counts and throttles end everywhere in this process.
    pub fn forget_account(&self, account: &str) {
        let mut g = self.lock();
        g.accounts.map.remove(account);
        g.pairs.map.retain(|(a, _), _| a != account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_guesser_is_throttled_and_the_owner_at_another_address_is_not() {
        let t = Throttle::default();
        let now = Utc::now();
        for _ in 0..PAIR_LIMIT {
            t.failed("hoa", ip("127.0.0.2"), true, now);
        }
        assert_eq!(
            t.blocked("hoa", ip("127.0.0.2"), now),
            Some(Blocked::Throttled(now + THROTTLE_FOR))
        );
        assert_eq!(t.blocked("hoa", ip("127.0.0.1"), now), None);
        assert_eq!(t.blocked("hoa", ip("127.0.0.2"), now + THROTTLE_FOR), None);
    }

    #[test]
    fn an_address_that_sprays_many_accounts_is_throttled_for_all() {
        let t = Throttle::default();
        let now = Utc::now();
        for i in 0..ADDRESS_LIMIT {
            t.failed(&format!("user{i}"), ip("2001:db8::1"), true, now);
        }
        assert!(matches!(
            t.blocked("someone.else", ip("2001:db8::2"), now),
            Some(Blocked::Throttled(_))
        ));
        assert_eq!(t.blocked("someone.else", ip("2001:db8:1::1"), now), None);
    }

    #[test]
    fn the_account_locks_only_far_above_and_never_from_refused_addresses() {
        let t = Throttle::default();
        let now = Utc::now();
        for i in 0..(ACCOUNT_LOCK_AFTER * 2) {
            t.failed(
                "hoa",
                IpAddr::from([10, 0, (i / 200) as u8, (i % 200) as u8]),
                false,
                now,
            );
        }
        assert_eq!(t.blocked("hoa", ip("127.0.0.1"), now), None);
        let mut locked = None;
        for i in 0..ACCOUNT_LOCK_AFTER {
            let f = t.failed("hoa", IpAddr::from([10, 1, 0, i as u8]), true, now);
            locked = locked.or(f.locks_account);
        }
        assert_eq!(locked, Some(now + THROTTLE_FOR));
        assert_eq!(
            t.blocked("hoa", ip("127.0.0.1"), now),
            Some(Blocked::Locked(now + THROTTLE_FOR))
        );
        t.forget_account("hoa");
        assert_eq!(t.blocked("hoa", ip("127.0.0.1"), now), None);
    }

    #[test]
    fn spraying_new_names_does_not_wipe_the_counts_that_throttle() {
        let t = Throttle::with_capacity(1000);
        let now = Utc::now();
        for _ in 0..PAIR_LIMIT {
            t.failed("hoa", ip("127.0.0.2"), true, now);
        }
        for i in 0..5000u32 {
            t.failed(
                &format!("spray{i}"),
                IpAddr::from(i.to_be_bytes()),
                true,
                now,
            );
        }
        assert!(matches!(
            t.blocked("hoa", ip("127.0.0.2"), now),
            Some(Blocked::Throttled(_))
        ));
        assert!(t.lock().pairs.map.len() <= 1000);
    }
}
