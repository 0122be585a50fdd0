//! Load reports for the balancers people run (`[lb]`): each replica says how much more it can
//! take, so a balancer sends less to one that is busy for a reason it cannot see.
//!
//! HAProxy's agent check (`lb.agent_port`): every connection is answered with one line and
//! closed, as HAProxy's `agent-check` reads it — `up NN%` (the weight, from the replica's
//! headroom, [`Load::weight_percent`]), `drain` from the first moment of a SIGTERM drain,
//! `down` while the replica is not ready (what `/ready` answers 503 for).
//!
//! ORCA load reports (`lb.orca`): the same figures on every answer, as Envoy and gRPC read
//! them (`monitoring::OrcaLoadReport`; the HTTP and gRPC layers attach them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::{self, Drain};
use crate::monitoring::{Metrics, Sampler};
use crate::predict::PredictService;
use crate::validation::InvalidSetting;

/// How often the scheduling delay is probed.
const PROBE: Duration = Duration::from_millis(10);

/// The kernel's clock ticks a second in /proc (`USER_HZ`: 100 on every Linux bullpen builds for).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbSettings {
    /// HAProxy agent check on this port (on `server.host`); 0: off.
    pub agent_port: u16,
    /// The p95 latency, in ms, at which a replica's latency leaves it no headroom.
    pub slo_p95_ms: f64,
    /// ORCA load reports on every answer: the `endpoint-load-metrics` header (HTTP) and
    /// `endpoint-load-metrics-bin` trailer (gRPC).
    pub orca: bool,
}

impl LbSettings {
    /// Whether anything reads the load reports.
    pub fn reports(&self) -> bool {
        self.agent_port != 0 || self.orca
    }
}

impl LbSettings {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(self.slo_p95_ms.is_finite() && self.slo_p95_ms > 0.0) {
            return Err(InvalidSetting::new(
                "lb.slo_p95_ms",
                "must be a number of milliseconds above 0",
            ));
        }
        Ok(())
    }
}

/// How busy a replica is, each part as a share of what it can take (0 idle, 1 full).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// CPU time used over the last second against the cores it may use (its cgroup's
    /// limit when it has one).
    pub cpu: f64,
    /// Inference calls waiting, on the fullest model version, against its queue's capacity.
    pub queue: f64,
    /// Requests in flight against `server.max_in_flight`.
    pub admission: f64,
    /// The last 10 s's p95 latency against `lb.slo_p95_ms`.
    pub latency: f64,
    /// The last second's p95 scheduling delay (how late a 10 ms timer fires: the time the
    /// process could not run, as when a noisy neighbour takes its CPU) against
    /// `lb.slo_p95_ms`: every request here waits that long too.
    pub delay: f64,
}

impl Load {
    /// The busiest part's share: what is left of the replica is 1 minus it.
    pub fn busiest(&self) -> f64 {
        [
            self.cpu,
            self.queue,
            self.admission,
            self.latency,
            self.delay,
        ]
        .into_iter()
        .filter(|share| share.is_finite())
        .fold(0.0, f64::max)
    }

    /// The weight to report, in percent: what the busiest part leaves, 1–100. Never 0 while
    /// up: taking a replica out is `drain`'s and `down`'s job.
    pub fn weight_percent(&self) -> u8 {
        let left = ((1.0 - self.busiest()) * 100.0).round().clamp(1.0, 100.0);
        // 1..=100 fits.
        left as u8
    }
}

/// What the agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Up(u8),
    Drain,
    Down,
}

impl Report {
    /// The line HAProxy reads.
    pub fn line(self) -> String {
        match self {
            Self::Up(weight) => format!("up {weight}%\n"),
            Self::Drain => "drain\n".to_owned(),
            Self::Down => "down\n".to_owned(),
        }
    }
}

/// The latest report, worked out once a second and read by every agent connection (a
/// drain is read at the connection itself, so it is never a second late).
#[derive(Debug, Clone)]
struct Latest(Arc<AtomicU8>);

/// `Latest`'s encoding: a weight of 1–100, or this for down.
const DOWN: u8 = 0;

impl Latest {
    fn report(&self, drain: &Drain) -> Report {
        if drain.is_draining() {
            return Report::Drain;
        }
        match self.0.load(Ordering::Acquire) {
            DOWN => Report::Down,
            weight => Report::Up(weight),
        }
    }
}

/// What the reports are made of.
#[derive(Debug)]
pub struct Sources {
    pub service: PredictService,
    pub drain: Drain,
    pub metrics: Metrics,
    pub sampler: Arc<Sampler>,
    pub max_in_flight: usize,
    pub queue_capacity: usize,
}

impl Sources {
    /// This second's load, given the process's CPU seconds a second ago (updated) and the
    /// p95 scheduling delay over the second.
    fn load(&self, cpu_seconds: &mut Option<f64>, delay_p95_ms: f64, slo_p95_ms: f64) -> Load {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let now = process_cpu_seconds();
        let cpu = match (*cpu_seconds, now) {
            (Some(before), Some(now)) => (now - before) / cores,
            _ => 0.0,
        };
        *cpu_seconds = now;
        Load {
            cpu,
            queue: self.metrics.inference_queue_depth_max() as f64
                / self.queue_capacity.max(1) as f64,
            admission: self.metrics.in_flight.get() as f64 / self.max_in_flight.max(1) as f64,
            latency: self
                .sampler
                .live(&self.metrics)
                .p95_ms
                .map_or(0.0, |p95| p95 / slo_p95_ms),
            delay: delay_p95_ms / slo_p95_ms,
        }
    }
}

/// The 95th percentile of `values` (reordered); zero when empty.
fn p95(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    let index = (values.len() * 95).div_ceil(100).saturating_sub(1);
    values.get(index).copied().unwrap_or_default()
}

/// CPU seconds this process has used (user and system), from /proc; `None` where there is
/// no /proc.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command's closing parenthesis: state, then fields 4.. of proc(5); utime and
    // stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// Starts the load reports: worked out every second (the weight exported as
/// `bullpen_lb_weight_percent`, the ORCA figures kept in `Metrics::load_figures`), and, with
/// `agent` (bound when `lb.agent_port` is set), the agent check answering each connection with
/// the latest. Both run on `tasks` until `stop`.
///
/// # Errors
/// When `agent` cannot be handed to the runtime (it must be non-blocking).
pub fn start(
    agent: Option<std::net::TcpListener>,
    settings: &LbSettings,
    sources: Sources,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let listener = agent.map(tokio::net::TcpListener::from_std).transpose()?;
    let latest = Latest(Arc::new(AtomicU8::new(100)));
    let drain = sources.drain.clone();
    {
        let (latest, stop, slo) = (latest.clone(), stop.clone(), settings.slo_p95_ms);
        tasks.spawn(async move {
            let mut cpu_seconds = process_cpu_seconds();
            let mut delays = Vec::with_capacity(128);
            let mut second = Instant::now();
            loop {
                let asked = Instant::now();
                if stop
                    .run_until_cancelled(tokio::time::sleep(PROBE))
                    .await
                    .is_none()
                {
                    break;
                }
                delays.push(asked.elapsed().saturating_sub(PROBE));
                if second.elapsed() < Duration::from_secs(1) {
                    continue;
                }
                let delay_p95_ms = p95(&mut delays).as_secs_f64() * 1000.0;
                delays.clear();
                second = Instant::now();
                let load = sources.load(&mut cpu_seconds, delay_p95_ms, slo);
                let metrics = &sources.metrics;
                metrics.load_figures.set(
                    load.cpu,
                    load.busiest(),
                    metrics.requests_per_second.get(),
                    metrics.inference_queue_depth_max() as f64,
                );
                let weight = if http::is_ready(&sources.service, &sources.drain).await {
                    load.weight_percent()
                } else {
                    DOWN
                };
                latest.0.store(weight, Ordering::Release);
                metrics.lb_weight_percent.set(i64::from(weight));
            }
        });
    }
    let Some(listener) = listener else {
        return Ok(());
    };
    let stop = stop.clone();
    tasks.spawn(async move {
        while let Some(accepted) = stop.run_until_cancelled(listener.accept()).await {
            let Ok((mut connection, _)) = accepted else {
                continue;
            };
            let line = latest.report(&drain).line();
            tokio::spawn(async move {
                // HAProxy reads the line and closes; a peer that went away is no matter.
                let _ = connection.write_all(line.as_bytes()).await;
                let _ = connection.shutdown().await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_is_what_the_busiest_part_leaves() {
        let idle = Load::default();
        assert_eq!(idle.weight_percent(), 100);
        let busy = Load {
            cpu: 0.3,
            queue: 0.1,
            admission: 0.05,
            latency: 0.6,
            delay: 0.1,
        };
        assert_eq!(busy.weight_percent(), 40);
        let overloaded = Load {
            cpu: 1.7,
            ..Load::default()
        };
        assert_eq!(overloaded.weight_percent(), 1);
        let unknown = Load {
            latency: f64::NAN,
            cpu: 0.25,
            ..Load::default()
        };
        assert_eq!(unknown.weight_percent(), 75);
        // A process stopped half the time: its timers fire up to the stop's length late.
        let starved = Load {
            delay: 45.0 / 20.0,
            ..Load::default()
        };
        assert_eq!(starved.weight_percent(), 1);
    }

    #[test]
    fn p95_is_the_value_95_percent_stay_under() {
        let mut values: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(p95(&mut values), Duration::from_millis(95));
        assert_eq!(
            p95(&mut [Duration::from_millis(7)]),
            Duration::from_millis(7)
        );
        assert_eq!(p95(&mut []), Duration::ZERO);
    }

    #[test]
    fn reports_are_the_lines_haproxy_reads() {
        assert_eq!(Report::Up(73).line(), "up 73%\n");
        assert_eq!(Report::Drain.line(), "drain\n");
        assert_eq!(Report::Down.line(), "down\n");
        let latest = Latest(Arc::new(AtomicU8::new(42)));
        let drain = Drain::default();
        assert_eq!(latest.report(&drain), Report::Up(42));
        latest.0.store(DOWN, Ordering::Release);
        assert_eq!(latest.report(&drain), Report::Down);
        drain.start();
        assert_eq!(latest.report(&drain), Report::Drain);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let used = process_cpu_seconds().expect("/proc on Linux");
        assert!(used >= 0.0 && used.is_finite(), "{used}");
    }
}
