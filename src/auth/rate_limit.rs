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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// The same step in Redis, atomically, on Redis's clock (one clock for every replica).
/// KEYS[1]: the credential's TAT; ARGV: interval, burst and cost. Returns
/// `{admitted, remaining, reset_us, retry_us}`.
const GCRA_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - math.max(burst, cost) * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
";

/// Credentials tracked in process before the expired ones are swept.
const LOCAL_CAPACITY: usize = 100_000;

pub struct RateLimiter {
    shared: Option<Arc<SharedTier>>,
    script: redis::Script,
    replicas: u32,
    started: Instant,
    /// Per-credential TATs (µs since `started`) for when Redis is not there.
    local: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shared", &self.shared.is_some())
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(shared: Option<Arc<SharedTier>>, replicas: u32) -> Self {
        Self {
            shared,
            script: redis::Script::new(GCRA_SCRIPT),
            replicas,
            started: Instant::now(),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Admits or refuses a request of `identity` at `rate` that costs `cost` tokens (at
    /// least 1).
    pub async fn check(&self, identity: &str, rate: Rate, cost: u32) -> Decision {
        let cost = cost.max(1);
        if let Some(shared) = &self.shared {
            let args = [rate.interval_us(), i64::from(rate.burst), i64::from(cost)];
            let key = RateLimitKey(identity);
            if let Some(reply) = shared.run_script(&self.script, &key, &args).await
                && let [admitted, remaining, reset_us, retry_us] = reply[..]
            {
                return Decision::from_micros(admitted == 1, rate, remaining, reset_us, retry_us);
            }
        }
        self.check_locally(identity, rate.share(self.replicas), cost)
    }

    fn check_locally(&self, identity: &str, rate: Rate, cost: u32) -> Decision {
        let now = i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let mut tats = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
