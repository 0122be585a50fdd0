//! The per-credential rate limit: GCRA (the generic cell rate algorithm) kept in Redis by one
//! atomic script, so every replica draws on one allowance; while Redis cannot be reached each
//! replica enforces its share (`rate_limit.replicas`) of the rate in process.
//!
//! GCRA keeps one number per credential, the theoretical arrival time (TAT): the time at which
//! the allowance would be full again. A request costing `cost` tokens (1, or a batch's items)
//! at `now` is admitted when `TAT + cost × interval - max(burst, cost) × interval <= now`, and
//! then moves the TAT on by `cost` intervals. A cost above the burst is admitted only with the
//! allowance full, and the credential then waits until the debt is paid down to the burst: a
//! credential gets exactly its rate in items, whatever the size of its requests.
//!
//! Asking Redis on every request costs a round trip each (a quarter of a replica's
//! throughput), so by default (`rate_limit.mode = "lease"`) a replica takes a *lease*: a
//! block of tokens debited from the shared GCRA in one script call and spent locally. The
//! block is `min(rate_limit.lease_tokens, burst / (2 × rate_limit.replicas))`. The request
//! that leaves a lease half spent tops it up to a block (the others keep spending
//! meanwhile); one that finds it empty takes a new one, returning (crediting back to the
//! TAT) tokens held past `rate_limit.lease_ms`. A replica never holds more than a block.
//! Every admitted request was debited from the one shared allowance, so over a credential's
//! life the replicas admit no more than exact mode; what leases change is *when*: tokens a
//! replica holds were debited before they are spent, so in any window the replicas together
//! admit at most `replicas × block` more than the exact limit (at most half the burst), and
//! a replica holding tokens it does not need can make another refuse up to as many early.
//! A block of 1 (bursts below `2 × replicas`) is exact mode. `rate_limit.mode = "exact"`
//! asks Redis on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Notify;

use crate::cache::{RateLimitKey, SharedTier};

/// A sustained rate and how many requests may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    /// At least 1 µs: rates above 60 million a minute are 60 million a minute.
    fn interval_us(self) -> i64 {
        (60_000_000 / i64::from(self.per_minute.max(1))).max(1)
    }

    /// This replica's part of the rate when replicas cannot coordinate.
    fn share(self, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        Self {
            per_minute: (self.per_minute / replicas).max(1),
            burst: (self.burst / replicas).max(1),
        }
    }
}

/// The answer for one request, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests allowed at once (the burst).
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the allowance is full again.
    pub reset_secs: u64,
    /// Seconds until a refused request may succeed (0 when admitted).
    pub retry_after_secs: u64,
}

impl Decision {
    fn from_micros(
        allowed: bool,
        rate: Rate,
        remaining: i64,
        reset_us: i64,
        retry_us: i64,
    ) -> Self {
        let seconds = |us: i64| u64::try_from(us).unwrap_or(0).div_ceil(1_000_000);
        Self {
            allowed,
            limit: rate.burst,
            remaining: u32::try_from(remaining.max(0))
                .unwrap_or(u32::MAX)
                .min(rate.burst),
            reset_secs: seconds(reset_us),
            retry_after_secs: if allowed { 0 } else { seconds(retry_us).max(1) },
        }
    }
}

/// One GCRA step (times in µs) for `cost` tokens: the decision and the TAT to keep
/// (unchanged when refused).
fn gcra(tat: Option<i64>, now: i64, rate: Rate, cost: u32) -> (Decision, i64) {
    let interval = rate.interval_us();
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(i64::from(cost).saturating_mul(interval));
    let allow_at = new_tat - i64::from(rate.burst.max(cost)) * interval;
    if now < allow_at {
        return (
            Decision::from_micros(false, rate, 0, tat - now, allow_at - now),
            tat,
        );
    }
    let remaining = (now - allow_at) / interval;
    (
        Decision::from_micros(true, rate, remaining, new_tat - now, 0),
        new_tat,
    )
}

/// The same step in Redis, atomically, on Redis's clock (one clock for every replica), for
/// `cost` tokens, granting up to `want` when the allowance has them (a lease), after
/// crediting back `returned` unspent tokens of the replica's last lease. Exact mode asks
/// with `want = cost` and nothing returned: [`gcra`] itself. KEYS[1]: the credential's TAT;
/// ARGV: interval, burst, cost, want, returned. Returns `{granted, remaining, reset_us,
/// retry_us}`: refused when granted < cost. A cost of 0 tops a lease up with what the
/// allowance has, up to `want`.
const SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local returned = tonumber(ARGV[5])
local tat = (tonumber(redis.call('GET', KEYS[1])) or now) - returned * interval
if tat < now then tat = now end
local allow_at = tat + cost * interval - math.max(burst, cost) * interval
if now < allow_at then
  if returned > 0 then
    redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  end
  return {0, 0, tat - now, allow_at - now}
end
local available = math.floor((now + burst * interval - tat) / interval)
local granted = cost
if cost <= burst then granted = math.min(math.max(want, cost), available) end
local new_tat = tat + granted * interval
if new_tat > now then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {granted, math.max(available - granted, 0), new_tat - now, 0}
";

/// How replicas share a credential's allowance through Redis (`rate_limit.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Blocks of tokens taken from Redis and spent locally (see the module documentation).
    Lease,
    /// One Redis call per request.
    Exact,
}

/// How leases are taken: `rate_limit.lease_tokens` at most per block, spent for
/// `rate_limit.lease_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Leasing {
    pub mode: Mode,
    pub max_tokens: u32,
    pub ttl: Duration,
}

impl Leasing {
    /// Tokens per lease for `rate` shared by `replicas`: 1 means a call per request.
    fn block(self, rate: Rate, replicas: u32) -> u32 {
        match self.mode {
            Mode::Exact => 1,
            Mode::Lease => (rate.burst / (2 * replicas.max(1))).clamp(1, self.max_tokens.max(1)),
        }
    }
}

/// The tokens one replica holds for one credential.
#[derive(Debug)]
struct Lease {
    tokens: u32,
    /// Unspent tokens are not spent after this (they go back with the next call).
    spend_until: Instant,
    /// What the last grant said was left in the shared allowance, and when it is full.
    shared_remaining: i64,
    reset_at: Instant,
    /// A call for more tokens is on its way: one at a time per credential.
    refilling: bool,
    /// The last call found the allowance spent: refused here until then, with no call.
    refused_until: Instant,
}

/// What a request does once it has looked at its credential's lease.
enum Next {
    /// Spent from the lease.
    Spent(Decision),
    /// Spent from the lease, which is now half empty: this request tops it up to a block.
    SpentThenTopUp(Decision, u32),
    /// The lease cannot pay: this request asks for a new one, returning what was held.
    Take { returned: u32, want: u32 },
    /// The lease cannot pay and another request is already asking: this one waits for it.
    Wait,
    /// The allowance was found spent: refused without a call until `refused_until`.
    Refused(Decision),
}

impl Lease {
    fn empty(now: Instant) -> Self {
        Self {
            tokens: 0,
            spend_until: now,
            shared_remaining: 0,
            reset_at: now,
            refilling: false,
            refused_until: now,
        }
    }

    fn spend(&mut self, cost: u32, rate: Rate, now: Instant) -> Option<Decision> {
        if now >= self.spend_until || self.tokens < cost {
            return None;
        }
        self.tokens -= cost;
        Some(Decision::from_micros(
            true,
            rate,
            self.shared_remaining + i64::from(self.tokens),
            micros_until(self.reset_at, now),
            0,
        ))
    }

    /// Spends `cost` when the lease can pay, and says what else to do: the lease never
    /// holds more than `block` tokens.
    fn next(&mut self, cost: u32, rate: Rate, block: u32, now: Instant) -> Next {
        if let Some(decision) = self.spend(cost, rate, now) {
            if self.refilling || self.tokens >= block / 2 {
                return Next::Spent(decision);
            }
            self.refilling = true;
            return Next::SpentThenTopUp(decision, block - self.tokens);
        }
        if self.refilling {
            return Next::Wait;
        }
        if now < self.refused_until {
            return Next::Refused(Decision::from_micros(
                false,
                rate,
                0,
                micros_until(self.reset_at, now),
                micros_until(self.refused_until, now),
            ));
        }
        self.refilling = true;
        // Tokens past their time go back; tokens still good stay and are topped up.
        let returned = if now >= self.spend_until {
            std::mem::take(&mut self.tokens)
        } else {
            0
        };
        Next::Take {
            returned,
            want: block.saturating_sub(self.tokens).max(cost),
        }
    }

    /// Adds `granted` tokens (less `cost`, spent by the request that asked) from a grant
    /// that left `remaining` in the shared allowance, full again `reset_us` from now.
    fn add(&mut self, grant: Grant, cost: u32, ttl: Duration) {
        let now = Instant::now();
        self.tokens += grant.granted.saturating_sub(cost);
        self.spend_until = now + ttl;
        self.shared_remaining = grant.remaining;
        self.reset_at = now + micros(grant.reset_us);
    }

    /// Remembers a refusal: until it may succeed, requests are refused without a call.
    fn refuse(&mut self, grant: Grant) {
        let now = Instant::now();
        self.reset_at = now + micros(grant.reset_us);
        self.refused_until = now + micros(grant.retry_us);
    }
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// Microseconds from `now` to `until` (0 when it has passed).
fn micros_until(until: Instant, now: Instant) -> i64 {
    i64::try_from(until.saturating_duration_since(now).as_micros()).unwrap_or(i64::MAX)
}

/// One credential's lease, and the requests waiting for its refill.
#[derive(Debug)]
struct Slot {
    lease: Mutex<Lease>,
    refilled: Notify,
}

/// A refill on its way: when it ends, however it ends (a request dropped mid-call
/// included), the next one may start and those waiting look again.
struct Refill<'a>(&'a Slot);

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        lock(&self.0.lease).refilling = false;
        self.0.refilled.notify_waiters();
    }
}

/// A lease script's answer.
#[derive(Debug, Clone, Copy)]
struct Grant {
    granted: u32,
    remaining: i64,
    reset_us: i64,
    retry_us: i64,
}

impl Grant {
    /// The decision for a request of `cost` tokens, with `held` more in this replica's lease
    /// once admitted (the script says 0 remaining and a retry time when refusing).
    fn decision(self, rate: Rate, cost: u32, held: u32) -> Decision {
        let allowed = self.granted >= cost;
        let held = if allowed { i64::from(held) } else { 0 };
        Decision::from_micros(
            allowed,
            rate,
            self.remaining + held,
            self.reset_us,
            self.retry_us,
        )
    }
}

/// Credentials tracked in process before the expired ones are swept.
const LOCAL_CAPACITY: usize = 100_000;

pub struct RateLimiter {
    shared: Option<Arc<SharedTier>>,
    script: redis::Script,
    leasing: Leasing,
    replicas: u32,
    started: Instant,
    /// Per-credential TATs (µs since `started`) for when Redis is not there.
    local: Mutex<HashMap<String, i64>>,
    /// Per-credential leases, locked only to look and to add (never across a call).
    leases: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shared", &self.shared.is_some())
            .field("replicas", &self.replicas)
            .field("leasing", &self.leasing)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(shared: Option<Arc<SharedTier>>, replicas: u32, leasing: Leasing) -> Self {
        Self {
            shared,
            script: redis::Script::new(SCRIPT),
            leasing,
            replicas,
            started: Instant::now(),
            local: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Admits or refuses a request of `identity` at `rate` that costs `cost` tokens (at
    /// least 1).
    pub async fn check(&self, identity: &str, rate: Rate, cost: u32) -> Decision {
        let cost = cost.max(1);
        if let Some(shared) = &self.shared {
            let block = self.leasing.block(rate, self.replicas);
            let decision = if block > 1 {
                self.check_leased(shared, identity, rate, cost, block).await
            } else {
                self.take(shared, identity, rate, cost, cost, 0)
                    .await
                    .map(|grant| grant.decision(rate, cost, 0))
            };
            if let Some(decision) = decision {
                return decision;
            }
        }
        self.check_locally(identity, rate.share(self.replicas), cost)
    }

    /// From this replica's lease of the credential's tokens, taking or topping up the lease
    /// when it runs low; `None` when Redis did not answer.
    async fn check_leased(
        &self,
        shared: &SharedTier,
        identity: &str,
        rate: Rate,
        cost: u32,
        block: u32,
    ) -> Option<Decision> {
        let slot = self.slot(identity);
        loop {
            let next = lock(&slot.lease).next(cost, rate, block, Instant::now());
            return match next {
                Next::Spent(decision) | Next::Refused(decision) => Some(decision),
                Next::SpentThenTopUp(decision, want) => {
                    let _refill = Refill(&slot);
                    let grant = self.take(shared, identity, rate, 0, want, 0).await;
                    if let Some(grant) = grant {
                        lock(&slot.lease).add(grant, 0, self.leasing.ttl);
                    }
                    Some(decision)
                }
                Next::Take { returned, want } => {
                    let _refill = Refill(&slot);
                    let grant = self
                        .take(shared, identity, rate, cost, want, returned)
                        .await;
                    let mut lease = lock(&slot.lease);
                    // Returned tokens the call did not reach are lost: never spent twice.
                    let grant = grant?;
                    if grant.granted < cost {
                        lease.refuse(grant);
                    } else {
                        lease.add(grant, cost, self.leasing.ttl);
                    }
                    Some(grant.decision(rate, cost, lease.tokens))
                }
                Next::Wait => {
                    let refilled = slot.refilled.notified();
                    tokio::pin!(refilled);
                    refilled.as_mut().enable();
                    // Registered before looking again: a refill ending in between is seen.
                    if lock(&slot.lease).refilling {
                        refilled.await;
                    }
                    continue;
                }
            };
        }
    }

    /// One script call: `cost` tokens needed, up to `want` taken, `returned` given back.
    async fn take(
        &self,
        shared: &SharedTier,
        identity: &str,
        rate: Rate,
        cost: u32,
        want: u32,
        returned: u32,
    ) -> Option<Grant> {
        let args = [
            rate.interval_us(),
            i64::from(rate.burst),
            i64::from(cost),
            i64::from(want),
            i64::from(returned),
        ];
        let reply = shared
            .run_script(&self.script, &RateLimitKey(identity), &args)
            .await?;
        let [granted, remaining, reset_us, retry_us] = reply[..] else {
            return None;
        };
        Some(Grant {
            granted: u32::try_from(granted).unwrap_or(0),
            remaining,
            reset_us,
            retry_us,
        })
    }

    /// The lease of `identity`, made empty on first use.
    fn slot(&self, identity: &str) -> Arc<Slot> {
        let mut slots = lock(&self.leases);
        if let Some(slot) = slots.get(identity) {
            return Arc::clone(slot);
        }
        let now = Instant::now();
        if slots.len() >= LOCAL_CAPACITY {
            // Leases in use or still to be spent stay; the others can go (their tokens are
            // lost to this replica, never spent twice).
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || lock(&slot.lease).spend_until > now
            });
        }
        let slot = Arc::new(Slot {
            lease: Mutex::new(Lease::empty(now)),
            refilled: Notify::new(),
        });
        slots.insert(identity.to_owned(), Arc::clone(&slot));
        slot
    }

    fn check_locally(&self, identity: &str, rate: Rate, cost: u32) -> Decision {
        let now = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let mut tats = lock(&self.local);
        let (decision, new_tat) = gcra(tats.get(identity).copied(), now, rate, cost);
        if let Some(tat) = tats.get_mut(identity) {
            *tat = new_tat;
        } else {
            if tats.len() >= LOCAL_CAPACITY {
                // A TAT in the past is the same as none: those entries can go.
                tats.retain(|_, tat| *tat > now);
            }
            tats.insert(identity.to_owned(), new_tat);
        }
        decision
    }
}

/// A mutex held only for a few instructions: a panic while it was held leaves nothing
/// half done worth refusing requests over.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_minute: 60,
        burst: 3,
    };

    #[test]
    fn a_full_allowance_admits_the_burst_then_one_per_interval() {
        let second = 1_000_000;
        let mut tat = None;
        let mut admitted = Vec::new();
        for now in [0, 0, 0, 0, second / 2, second, second, 5 * second] {
            let (decision, new_tat) = gcra(tat, now, RATE, 1);
            tat = Some(new_tat);
            admitted.push((decision.allowed, decision.remaining));
        }
        assert_eq!(
            admitted,
            [
                (true, 2),
                (true, 1),
                (true, 0),
                (false, 0),
                (false, 0),
                (true, 0),
                (false, 0),
                (true, 2)
            ]
        );
        let (refused, _) = gcra(Some(3 * second), 0, RATE, 1);
        assert_eq!(refused.retry_after_secs, 1);
        assert_eq!(refused.reset_secs, 3);
        assert_eq!(refused.limit, 3);
    }

    #[test]
    fn a_request_costs_its_items_and_one_above_the_burst_waits_for_a_full_allowance() {
        let second = 1_000_000;
        // 2 of the 3 tokens: admitted, 1 left; 2 more: refused until a token refills.
        let (two, tat) = gcra(None, 0, RATE, 2);
        assert!(two.allowed);
        assert_eq!(two.remaining, 1);
        let (refused, _) = gcra(Some(tat), 0, RATE, 2);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        // 10 items with a burst of 3: only with the allowance full, then 10 s of debt at one
        // token a second.
        let (partial, _) = gcra(Some(second), 0, RATE, 10);
        assert!(!partial.allowed, "not with the allowance short");
        let (ten, tat) = gcra(None, 0, RATE, 10);
        assert!(ten.allowed);
        assert_eq!(ten.remaining, 0);
        assert_eq!(tat, 10 * second);
        // The next token comes once the debt is paid down to the burst: 10 + 1 tokens in
        // 8 s is the burst (3) plus 8 s at one a second, as for any credential.
        let (early, _) = gcra(Some(tat), 7 * second, RATE, 1);
        assert!(!early.allowed, "the debt is not paid down yet");
        assert_eq!(early.retry_after_secs, 1);
        let (after, _) = gcra(Some(tat), 8 * second, RATE, 1);
        assert!(after.allowed, "paid down: admitted again");
    }

    #[test]
    fn a_lease_block_is_at_most_half_the_burst_shared_by_the_replicas() {
        let leasing = Leasing {
            mode: Mode::Lease,
            max_tokens: 100,
            ttl: Duration::from_secs(1),
        };
        let rate = |burst| Rate {
            per_minute: 600,
            burst,
        };
        assert_eq!(leasing.block(rate(1_000_000), 3), 100);
        assert_eq!(leasing.block(rate(60), 1), 30);
        assert_eq!(leasing.block(rate(60), 5), 6);
        assert_eq!(
            leasing.block(rate(3), 2),
            1,
            "small bursts: a call per request"
        );
        let exact = Leasing {
            mode: Mode::Exact,
            ..leasing
        };
        assert_eq!(exact.block(rate(1_000_000), 1), 1);
    }

    #[test]
    fn a_lease_is_spent_until_it_runs_out_or_its_time_is_up() {
        let now = Instant::now();
        let mut lease = Lease {
            tokens: 3,
            spend_until: now + Duration::from_secs(1),
            shared_remaining: 10,
            reset_at: now + Duration::from_secs(2),
            refilling: false,
            refused_until: now,
        };
        let decision = lease.spend(2, RATE, now).expect("held");
        assert!(decision.allowed);
        assert_eq!(
            decision.remaining, 3,
            "the shared 10 + 1 held, within the burst"
        );
        assert_eq!(decision.reset_secs, 2);
        assert!(lease.spend(2, RATE, now).is_none(), "1 held, 2 asked");
        assert!(
            lease.spend(1, RATE, now + Duration::from_secs(1)).is_none(),
            "time is up"
        );
        assert_eq!(lease.tokens, 1, "returned with the next call");
    }

    #[test]
    fn a_half_spent_lease_is_topped_up_once_and_an_empty_one_taken_anew() {
        let now = Instant::now();
        let grant = |granted| Grant {
            granted,
            remaining: 0,
            reset_us: 0,
            retry_us: 0,
        };
        let mut lease = Lease::empty(now);
        let Next::Take {
            returned: 0,
            want: 10,
        } = lease.next(1, RATE, 10, now)
        else {
            panic!("an empty lease is taken: a block");
        };
        lease.add(grant(10), 1, Duration::from_secs(1));
        lease.refilling = false;
        assert_eq!(lease.tokens, 9);
        for _ in 0..4 {
            assert!(matches!(lease.next(1, RATE, 10, now), Next::Spent(_)));
        }
        let Next::SpentThenTopUp(decision, 6) = lease.next(1, RATE, 10, now) else {
            panic!("4 left of 10: topped up to 10");
        };
        assert!(decision.allowed);
        assert!(
            matches!(lease.next(1, RATE, 10, now), Next::Spent(_)),
            "one top-up at a time"
        );
        assert!(
            matches!(lease.next(5, RATE, 10, now), Next::Wait),
            "3 left, 5 asked, a top-up on its way"
        );
        lease.add(grant(6), 0, Duration::from_secs(1));
        lease.refilling = false;
        assert_eq!(lease.tokens, 9, "never more than a block");
        let later = now + Duration::from_secs(2);
        let Next::Take {
            returned: 9,
            want: 10,
        } = lease.next(1, RATE, 10, later)
        else {
            panic!("tokens past their time go back");
        };
    }

    #[test]
    fn a_refill_dropped_midway_lets_the_next_one_start() {
        let now = Instant::now();
        let slot = Slot {
            lease: Mutex::new(Lease::empty(now)),
            refilled: Notify::new(),
        };
        let next = || lock(&slot.lease).next(1, RATE, 10, now);
        assert!(matches!(next(), Next::Take { .. }));
        assert!(matches!(next(), Next::Wait));
        // A request dropped while its call is on its way drops its refill with it.
        drop(Refill(&slot));
        assert!(matches!(next(), Next::Take { .. }));
    }

    #[test]
    fn a_spent_allowance_refuses_without_a_call_until_it_may_succeed() {
        let now = Instant::now();
        let mut lease = Lease::empty(now);
        assert!(matches!(lease.next(1, RATE, 10, now), Next::Take { .. }));
        lease.refilling = false;
        lease.refuse(Grant {
            granted: 0,
            remaining: 0,
            reset_us: 3_000_000,
            retry_us: 1_000_000,
        });
        let Next::Refused(decision) = lease.next(1, RATE, 10, Instant::now()) else {
            panic!("refused here");
        };
        assert!(!decision.allowed);
        assert_eq!(decision.retry_after_secs, 1);
        let later = Instant::now() + Duration::from_millis(1100);
        assert!(matches!(lease.next(1, RATE, 10, later), Next::Take { .. }));
    }

    #[test]
    fn each_replica_takes_its_share_when_alone() {
        assert_eq!(
            Rate {
                per_minute: 600,
                burst: 10
            }
            .share(2),
            Rate {
                per_minute: 300,
                burst: 5
            }
        );
        assert_eq!(
            RATE.share(10),
            Rate {
                per_minute: 6,
                burst: 1
            }
        );
    }
}
