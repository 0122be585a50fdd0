//! What a load test saw: latency histograms (HDR, microseconds) by phase and request kind,
//! answers by status, errors by kind, a per-second timeline, and the SLO verdict.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::mix::Kind;

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    RampUp,
    Sustain,
    RampDown,
}

impl Phase {
    pub const ALL: [Self; 3] = [Self::RampUp, Self::Sustain, Self::RampDown];

    pub fn label(self) -> &'static str {
        match self {
            Self::RampUp => "ramp-up",
            Self::Sustain => "sustain",
            Self::RampDown => "ramp-down",
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No connection could be made.
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The connection failed mid-request.
    Io,
}

impl Outcome {
    pub fn succeeded(self) -> bool {
        matches!(self, Self::Status(status) if (200..300).contains(&status))
    }

    /// The error kind of a failure: `http_503`, `connect`, `timeout`, `io`.
    fn error_kind(self) -> Option<String> {
        match self {
            _ if self.succeeded() => None,
            Self::Status(status) => Some(format!("http_{status}")),
            Self::Connect => Some("connect".to_owned()),
            Self::Timeout => Some("timeout".to_owned()),
            Self::Io => Some("io".to_owned()),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant figures; larger values are clamped.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds; this is a bug")
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Second {
    #[serde(rename = "second")]
    pub at: u64,
    pub requests: u64,
    pub failed: u64,
    /// Mean and largest latency of the requests that ended in this second, in ms.
    pub mean_ms: f64,
    pub max_ms: f64,
    /// The median and 99th percentile of the requests that succeeded in this second, in ms
    /// (0 when none did): what a fault costs the answers that still come.
    pub ok_p50_ms: f64,
    pub ok_p99_ms: f64,
}

/// What is counted of one second while the run goes.
#[derive(Debug)]
struct SecondTally {
    requests: u64,
    failed: u64,
    total_us: u64,
    max_us: u64,
    /// Latency of the requests that succeeded, at 2 significant figures (1 % apart): one
    /// of these per second of the run.
    succeeded: Histogram<u32>,
}

impl SecondTally {
    fn new() -> Self {
        Self {
            requests: 0,
            failed: 0,
            total_us: 0,
            max_us: 0,
            succeeded: Histogram::new_with_bounds(1, 60_000_000, 2)
                .expect("valid bounds; this is a bug"),
        }
    }

    fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.total_us += other.total_us;
        self.max_us = self.max_us.max(other.max_us);
        let _ = self.succeeded.add(&other.succeeded);
    }

    /// A quantile of the requests that succeeded, in ms; 0 when none did.
    fn ok_quantile(&self, quantile: f64) -> f64 {
        if self.succeeded.is_empty() {
            0.0
        } else {
            self.succeeded.value_at_quantile(quantile) as f64 / 1000.0
        }
    }

    fn second(&self, at: u64) -> Second {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Second {
            at,
            requests: self.requests,
            failed: self.failed,
            mean_ms: if self.requests == 0 {
                0.0
            } else {
                self.total_us as f64 / self.requests as f64 / 1000.0
            },
            max_ms: ms(self.max_us),
            ok_p50_ms: self.ok_quantile(0.5),
            ok_p99_ms: self.ok_quantile(0.99),
        }
    }
}

/// What one connection saw; merged into the run's at the end.
#[derive(Debug)]
pub struct Tally {
    latency: BTreeMap<(Phase, Kind), Histogram<u64>>,
    outcomes: BTreeMap<(Phase, Kind), BTreeMap<String, u64>>,
    timeline: Vec<SecondTally>,
    unsent: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            timeline: Vec::new(),
            unsent: 0,
        }
    }

    /// Counts requests that were due but never sent before the run's time was over.
    pub fn unsent(&mut self, requests: u64) {
        self.unsent += requests;
    }

    /// Counts one request that ended `at` after the start, `latency` after it was due.
    pub fn record(
        &mut self,
        phase: Phase,
        kind: Kind,
        outcome: Outcome,
        latency: Duration,
        at: Duration,
    ) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency
            .entry((phase, kind))
            .or_insert_with(histogram)
            .saturating_record(micros);
        let label = match outcome {
            Outcome::Status(status) => status.to_string(),
            other => other.error_kind().unwrap_or_default(),
        };
        *self
            .outcomes
            .entry((phase, kind))
            .or_default()
            .entry(label)
            .or_default() += 1;
        let second = usize::try_from(at.as_secs()).unwrap_or(usize::MAX);
        if self.timeline.len() <= second {
            self.timeline.resize_with(second + 1, SecondTally::new);
        }
        let slot = &mut self.timeline[second];
        slot.requests += 1;
        slot.total_us += micros;
        slot.max_us = slot.max_us.max(micros);
        if outcome.succeeded() {
            slot.succeeded.saturating_record(micros);
        } else {
            slot.failed += 1;
        }
    }

    pub fn merge(&mut self, other: Self) {
        self.unsent += other.unsent;
        for (key, histogram) in other.latency {
            match self.latency.get_mut(&key) {
                Some(mine) => {
                    let _ = mine.add(&histogram);
                }
                None => {
                    self.latency.insert(key, histogram);
                }
            }
        }
        for (key, counts) in other.outcomes {
            let mine = self.outcomes.entry(key).or_default();
            for (label, count) in counts {
                *mine.entry(label).or_default() += count;
            }
        }
        if self.timeline.len() < other.timeline.len() {
            self.timeline
                .resize_with(other.timeline.len(), SecondTally::new);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.merge(theirs);
        }
    }
}

/// Latency percentiles in ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Self {
            p50: ms(0.5),
            p90: ms(0.9),
            p95: ms(0.95),
            p99: ms(0.99),
            p999: ms(0.999),
            max: histogram.max() as f64 / 1000.0,
        }
    }
}

/// The counts and latency of a part of the run (a phase, a kind, or all of it).
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub latency_ms: Latency,
    /// Answers by HTTP status.
    pub status: BTreeMap<String, u64>,
    /// Failures by kind: `http_503`, `connect`, `timeout`, `io`.
    pub errors: BTreeMap<String, u64>,
}

impl Part {
    fn of<'a>(tally: &'a Tally, wanted: impl Fn(Phase, Kind) -> bool + 'a) -> Option<Self> {
        let mut histogram = histogram();
        let mut status = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for ((phase, kind), one) in &tally.latency {
            if wanted(*phase, *kind) {
                let _ = histogram.add(one);
            }
        }
        for ((phase, kind), counts) in &tally.outcomes {
            if !wanted(*phase, *kind) {
                continue;
            }
            for (label, count) in counts {
                if label.parse::<u16>().is_ok() {
                    *status.entry(label.clone()).or_insert(0) += count;
                }
                let failed = match label.parse::<u16>() {
                    Ok(code) => Outcome::Status(code).error_kind(),
                    Err(_) => Some(label.clone()),
                };
                if let Some(kind) = failed {
                    *errors.entry(kind).or_insert(0) += count;
                }
            }
        }
        let requests = histogram.len();
        if requests == 0 {
            return None;
        }
        let failed: u64 = errors.values().sum();
        Some(Self {
            requests,
            succeeded: requests - failed,
            failed,
            latency_ms: Latency::of(&histogram),
            status,
            errors,
        })
    }
}

/// One service-level objective and whether the run held it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub target: String,
    pub actual: String,
    pub held: bool,
}

/// The objectives a run is judged by (the design's table by default).
#[derive(Debug, Clone, Copy)]
pub struct Slo {
    pub p95_ms: f64,
    pub error_rate: f64,
    /// How far below the target rate the achieved rate may fall (open loop only).
    pub rps_tolerance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub checks: Vec<Check>,
    pub held: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    /// `open` (constant arrival rate) or `closed` (users).
    pub mode: &'static str,
    pub target_rps: Option<f64>,
    pub connections: usize,
    pub duration_s: f64,
    /// Answers per second over the sustain phase.
    pub achieved_rps: f64,
    /// Open loop: requests due that were never sent, because every connection was still
    /// busy when the run's time was over (more than the connections or the machine could
    /// send); not counted in `requests`.
    pub unsent: u64,
    /// The whole run: requests, succeeded, failed, latency, status, errors.
    #[serde(flatten)]
    pub total: Part,
    pub phases: BTreeMap<&'static str, Part>,
    pub kinds: BTreeMap<&'static str, Part>,
    pub timeline: Vec<Second>,
    pub slo: Verdict,
}

/// How a run was made, for its report.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub url: String,
    pub target_rps: Option<f64>,
    pub connections: usize,
    pub sustain: Duration,
    pub elapsed: Duration,
}

impl Report {
    pub fn new(facts: &RunFacts, tally: &Tally, slo: &Slo) -> Option<Self> {
        let all = Part::of(tally, |_, _| true)?;
        let phases: BTreeMap<_, _> = Phase::ALL
            .iter()
            .filter_map(|phase| Some((phase.label(), Part::of(tally, move |p, _| p == *phase)?)))
            .collect();
        let kinds: BTreeMap<_, _> = Kind::ALL
            .iter()
            .filter_map(|kind| Some((kind.label(), Part::of(tally, move |_, k| k == *kind)?)))
            .collect();
        let sustain_requests = phases.get("sustain").map_or(0, |p| p.requests);
        let achieved_rps = sustain_requests as f64 / facts.sustain.as_secs_f64().max(1e-9);
        let timeline = tally
            .timeline
            .iter()
            .zip(0..)
            .map(|(second, at)| second.second(at))
            .collect();
        let judged = phases.get("sustain").unwrap_or(&all);
        let mut checks = vec![
            Check {
                name: "p95_latency",
                target: format!("< {} ms", slo.p95_ms),
                actual: format!("{:.2} ms", judged.latency_ms.p95),
                held: judged.latency_ms.p95 < slo.p95_ms,
            },
            Check {
                name: "error_rate",
                target: format!("< {:.2} %", slo.error_rate * 100.0),
                actual: format!("{:.3} %", all.failed as f64 / all.requests as f64 * 100.0),
                held: (all.failed as f64) < slo.error_rate * all.requests as f64 || all.failed == 0,
            },
        ];
        if let Some(target) = facts.target_rps {
            checks.push(Check {
                name: "throughput",
                target: format!(
                    "≥ {:.0} req/s ({target} − {:.0} %)",
                    target * (1.0 - slo.rps_tolerance),
                    slo.rps_tolerance * 100.0
                ),
                actual: format!("{achieved_rps:.0} req/s"),
                held: achieved_rps >= target * (1.0 - slo.rps_tolerance),
            });
        }
        let held = checks.iter().all(|c| c.held);
        Some(Self {
            url: facts.url.clone(),
            mode: if facts.target_rps.is_some() {
                "open"
            } else {
                "closed"
            },
            target_rps: facts.target_rps,
            connections: facts.connections,
            duration_s: facts.elapsed.as_secs_f64(),
            achieved_rps,
            unsent: tally.unsent,
            total: all,
            phases,
            kinds,
            timeline,
            slo: Verdict { checks, held },
        })
    }

    /// The report as Markdown: totals, one row per phase and per kind, the SLO verdict.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let target = self.target_rps.map_or_else(
            || "closed loop".to_owned(),
            |rps| format!("{rps} req/s open loop"),
        );
        let _ = writeln!(
            out,
            "## bullpen loadtest: {} ({target}, {} connections, {:.1} s)\n",
            self.url, self.connections, self.duration_s
        );
        let _ = writeln!(
            out,
            "{} requests, {} succeeded, {} failed; {:.0} req/s achieved over the sustain phase\n",
            self.total.requests, self.total.succeeded, self.total.failed, self.achieved_rps
        );
        if self.unsent > 0 {
            let _ = writeln!(
                out,
                "{} requests due were never sent: every connection was still busy when the \
                 run's time was over (more --connections, or a lower --rate)\n",
                self.unsent
            );
        }
        let _ = writeln!(
            out,
            "| part | requests | failed | p50 ms | p90 ms | p95 ms | p99 ms | p99.9 ms | max ms |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        let row = |out: &mut String, name: &str, part: &Part| {
            let l = part.latency_ms;
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                part.requests, part.failed, l.p50, l.p90, l.p95, l.p99, l.p999, l.max
            );
        };
        for phase in Phase::ALL {
            if let Some(part) = self.phases.get(phase.label()) {
                row(&mut out, phase.label(), part);
            }
        }
        for (name, part) in &self.kinds {
            row(&mut out, &format!("kind: {name}"), part);
        }
        if !self.total.errors.is_empty() {
            let errors: Vec<String> = self
                .total
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            let _ = writeln!(out, "\nerrors: {}", errors.join(", "));
        }
        let _ = writeln!(out, "\n| SLO | target | actual | held |\n|---|---|---|---|");
        for check in &self.slo.checks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                check.name,
                check.target,
                check.actual,
                if check.held { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(
            out,
            "\nverdict: {}",
            if self.slo.held {
                "SLO held"
            } else {
                "SLO missed"
            }
        );
        out
    }
}
