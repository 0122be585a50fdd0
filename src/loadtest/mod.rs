//! `bullpen loadtest`: load against any server that speaks bullpen's API, measured the way
//! latency should be, and judged against service-level objectives.
//!
//! Open loop (`--rate`): requests are due at a constant arrival rate (ramping up and down
//! linearly), dealt to the connections in turn as wrk2 does; each request's latency counts
//! from when it was *due*, so a stalled server shows up in the latency instead of silently
//! slowing the load (no coordinated omission). Closed loop (`--users`): each user sends its
//! next request when the last one is answered; latency counts from sending.
//!
//! Every connection is one keep-alive HTTP/1.1 connection (hyper), reopened when the server
//! closes it; the connections of a thread share its tally, merged at the end, so measuring
//! takes no lock and 10,000 connections cost no more memory than 10.

mod mix;
mod plot;
mod report;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use mix::{Games, Kind, Mix, MixError, Planned, render};
pub use plot::{Mark, MarkError, PlotError, parse_marks, plot};
pub use report::{Check, Latency, Outcome, Part, Phase, Report, RunFacts, Slo, Tally};

/// How the load arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Requests per second at full rate, over `connections` connections.
    Open { rate: f64, connections: usize },
    /// Users, each with its own connection, sending back to back.
    Closed { users: usize },
}

/// A whole run: where, how much, for how long, what.
#[derive(Debug, Clone)]
pub struct LoadTest {
    /// `http://host:port` (a path prefix is not supported; HTTPS is left to a proxy).
    pub url: String,
    pub load: Load,
    pub ramp_up: Duration,
    pub duration: Duration,
    pub ramp_down: Duration,
    pub requests: Arc<Vec<Planned>>,
    pub token: Option<SecretString>,
    pub timeout: Duration,
    /// Threads, each with its own event loop and a share of the connections (as wrk's -t).
    pub threads: usize,
    pub slo: Slo,
    /// Draw a live progress line on standard error.
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    #[error("`{0}` is not a URL bullpen loadtest can use: give http://HOST:PORT")]
    Url(String),
    #[error("cannot resolve {0}")]
    Resolve(String, #[source] std::io::Error),
    #[error("there is nothing to send: no games to ask about")]
    NothingToSend,
    #[error("no request was made")]
    NoRequests,
    #[error("cannot start a load thread")]
    Thread(#[source] std::io::Error),
    #[error("a load thread stopped")]
    Panicked,
}

/// `http://host:port` → (socket address, `Host` header value).
async fn resolve(url: &str) -> Result<(SocketAddr, HeaderValue), LoadTestError> {
    let bad = || LoadTestError::Url(url.to_owned());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad());
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let address = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| LoadTestError::Resolve(with_port.clone(), e))?
        .next()
        .ok_or_else(bad)?;
    let host = HeaderValue::from_str(authority).map_err(|_| bad())?;
    Ok((address, host))
}

/// One keep-alive connection, reopened when the server closes it.
struct Connection {
    address: SocketAddr,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Outcome> {
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.address)
                .await
                .map_err(|_| Outcome::Connect)?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Outcome::Connect)?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(Outcome::Connect)
    }

    /// Sends one request and reads the whole answer.
    async fn send(&mut self, planned: &Planned) -> Outcome {
        let mut request = if planned.body.is_empty() {
            hyper::Request::get(planned.path.as_str()).header(HOST, self.host.clone())
        } else {
            hyper::Request::post(planned.path.as_str())
                .header(HOST, self.host.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        };
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let Ok(request) = request.body(Full::new(planned.body.clone())) else {
            return Outcome::Io;
        };
        let sender = match self.open().await {
            Ok(sender) => sender,
            Err(outcome) => return outcome,
        };
        if sender.ready().await.is_err() {
            // Closed between two requests (the server said `Connection: close`): reopen.
            self.sender = None;
            match self.open().await {
                Ok(_) => {}
                Err(outcome) => return outcome,
            }
        }
        let Some(sender) = self.sender.as_mut() else {
            return Outcome::Connect;
        };
        let answered = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.into_body().collect().await.ok().map(|_| status)
            }
            Err(_) => None,
        };
        if let Some(status) = answered {
            Outcome::Status(status)
        } else {
            self.sender = None;
            Outcome::Io
        }
    }
}

/// The phase a moment of the run belongs to; a request due at a phase's last instant (the
/// k-th is due when k are due) is that phase's.
fn phase_at(test: &LoadTest, at: Duration) -> Phase {
    if !test.ramp_up.is_zero() && at <= test.ramp_up {
        Phase::RampUp
    } else if at <= test.ramp_up + test.duration {
        Phase::Sustain
    } else {
        Phase::RampDown
    }
}

/// When each request of an open-loop run is due, from the start: the rate ramps linearly
/// from 0 to `rate` over `ramp_up`, holds for `duration`, and falls back to 0 over
/// `ramp_down`.
pub fn schedule(
    rate: f64,
    ramp_up: Duration,
    duration: Duration,
    ramp_down: Duration,
) -> Vec<Duration> {
    let (up, hold, down) = (
        ramp_up.as_secs_f64(),
        duration.as_secs_f64(),
        ramp_down.as_secs_f64(),
    );
    let end = up + hold + down;
    // Requests due by time t: the integral of the rate.
    let due_by = |t: f64| -> f64 {
        let t = t.clamp(0.0, end);
        let ramp_in = if up > 0.0 {
            rate * t.min(up).powi(2) / (2.0 * up)
        } else {
            0.0
        };
        let held = rate * (t - up).clamp(0.0, hold);
        let after = (t - up - hold).clamp(0.0, down);
        let ramp_out = if down > 0.0 {
            rate * (after - after * after / (2.0 * down))
        } else {
            0.0
        };
        ramp_in + held + ramp_out
    };
    let total = (due_by(end) + 1e-9).floor() as u64;
    let mut times = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    // The k-th request is due when k requests are due: found by bisection on due_by.
    for k in 1..=total {
        let wanted = k as f64;
        let (mut low, mut high) = (0.0, end);
        for _ in 0..50 {
            let middle = f64::midpoint(low, high);
            if due_by(middle) < wanted {
                low = middle;
            } else {
                high = middle;
            }
        }
        times.push(Duration::from_secs_f64(high));
    }
    times
}

/// Live counters for the progress line.
#[derive(Debug, Default)]
struct Live {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// What every connection of a run shares.
struct Run {
    test: LoadTest,
    address: SocketAddr,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    /// Open loop: when each request is due, from `started`.
    due: Option<Vec<Duration>>,
    connections: usize,
    started: Instant,
    live: Live,
}

impl Run {
    /// The connections `thread` of `threads` carries, on an event loop of its own.
    fn thread(self: Arc<Self>, thread: usize, threads: usize) -> std::io::Result<Tally> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // One tally per thread, shared by its connections (they never run at once): a
        // tally per connection would hold 10,000 sets of histograms for 10,000 connections.
        let tally = Rc::new(RefCell::new(Tally::new()));
        let connections = tokio::task::LocalSet::new();
        for index in (thread..self.connections).step_by(threads) {
            let (run, tally) = (Arc::clone(&self), Rc::clone(&tally));
            connections.spawn_local(async move { run.connection(index, &tally).await });
        }
        runtime.block_on(connections);
        Ok(Rc::try_unwrap(tally).map_or_else(|tally| tally.take(), RefCell::into_inner))
    }

    /// Connection `index`: its share of the due requests (open loop), or one user.
    async fn connection(&self, index: usize, tally: &RefCell<Tally>) {
        let connection = Connection {
            address: self.address,
            host: self.host.clone(),
            authorization: self.authorization.clone(),
            sender: None,
        };
        match &self.due {
            Some(due) => open_loop(self, connection, due, index, tally).await,
            None => closed_loop(self, connection, index, tally).await,
        }
    }
}

/// Runs the load test and reports what it saw.
pub async fn run(test: LoadTest) -> Result<Report, LoadTestError> {
    if test.requests.is_empty() {
        return Err(LoadTestError::NothingToSend);
    }
    let (address, host) = resolve(&test.url).await?;
    let authorization = test
        .token
        .as_ref()
        .and_then(|token| HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok());
    let total = test.ramp_up + test.duration + test.ramp_down;
    let (connections, target_rps) = match test.load {
        Load::Open { rate, connections } => (connections.max(1), Some(rate)),
        Load::Closed { users } => (users.max(1), None),
    };
    let due = match test.load {
        Load::Open { rate, .. } => {
            Some(schedule(rate, test.ramp_up, test.duration, test.ramp_down))
        }
        Load::Closed { .. } => None,
    };
    let threads = test.threads.clamp(1, connections);
    let progress = test.progress.then(|| progress_line(total));
    let run = Arc::new(Run {
        test,
        address,
        host,
        authorization,
        due,
        connections,
        started: Instant::now(),
        live: Live::default(),
    });
    // As wrk: a few threads, each with its own event loop and its share of the connections.
    let mut workers = Vec::with_capacity(threads);
    for thread in 0..threads {
        let run = Arc::clone(&run);
        let worker = std::thread::Builder::new()
            .name(format!("loadtest-{thread}"))
            .spawn(move || run.thread(thread, threads))
            .map_err(LoadTestError::Thread)?;
        workers.push(worker);
    }
    let ticker = progress.clone().map(|bar| {
        let run = Arc::clone(&run);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(250));
            loop {
                ticks.tick().await;
                bar.set_position(run.started.elapsed().as_secs().min(total.as_secs()));
                bar.set_message(format!(
                    "{} sent, {} failed",
                    run.live.sent.load(Ordering::Relaxed),
                    run.live.failed.load(Ordering::Relaxed)
                ));
            }
        })
    });
    let joined = tokio::task::spawn_blocking(move || {
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .map_err(|_| LoadTestError::Panicked)?
                    .map_err(LoadTestError::Thread)
            })
            .collect::<Result<Vec<Tally>, LoadTestError>>()
    })
    .await
    .map_err(|_| LoadTestError::Panicked);
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut tally = Tally::new();
    for one in joined?? {
        tally.merge(one);
    }
    let facts = RunFacts {
        url: run.test.url.clone(),
        target_rps,
        connections,
        sustain: run.test.duration,
        elapsed: run.started.elapsed(),
    };
    Report::new(&facts, &tally, &run.test.slo).ok_or(LoadTestError::NoRequests)
}

fn progress_line(total: Duration) -> ProgressBar {
    ProgressBar::new(total.as_secs().max(1)).with_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:30} {pos}/{len} s  {msg}")
            .expect("the template is valid; this is a bug"),
    )
}

/// Connection `index` takes every `connections`-th due request; latency counts from when
/// each was due. A request still unsent when the run's time is over is not sent but counted
/// as unsent: the rate was more than the connections (or this machine) could send.
async fn open_loop(
    run: &Run,
    mut connection: Connection,
    due: &[Duration],
    index: usize,
    tally: &RefCell<Tally>,
) {
    let (test, started) = (&run.test, run.started);
    let over = started + test.ramp_up + test.duration + test.ramp_down;
    let mine = due.iter().enumerate().skip(index).step_by(run.connections);
    let total = mine.len();
    for (sent, (n, at)) in mine.enumerate() {
        if Instant::now() >= over {
            tally.borrow_mut().unsent((total - sent) as u64);
            break;
        }
        let due_at = started + *at;
        tokio::time::sleep_until(due_at).await;
        let planned = &test.requests[n % test.requests.len()];
        let outcome = send_within(test, &mut connection, planned).await;
        let now = Instant::now();
        count(&run.live, outcome);
        tally.borrow_mut().record(
            phase_at(test, *at),
            planned.kind,
            outcome,
            now - due_at,
            now - started,
        );
    }
}

/// User `index` of `connections` sends back to back; users join over the ramp-up and leave
/// over the ramp-down, evenly spread.
async fn closed_loop(run: &Run, mut connection: Connection, index: usize, tally: &RefCell<Tally>) {
    let (test, started) = (&run.test, run.started);
    let share = |span: Duration| span.mul_f64(index as f64 / run.connections as f64);
    let joins = share(test.ramp_up);
    let leaves =
        test.ramp_up + test.duration + test.ramp_down.saturating_sub(share(test.ramp_down));
    tokio::time::sleep_until(started + joins).await;
    let mut n = index;
    while started.elapsed() < leaves {
        let planned = &test.requests[n % test.requests.len()];
        n += run.connections;
        let sent = Instant::now();
        let outcome = send_within(test, &mut connection, planned).await;
        let now = Instant::now();
        count(&run.live, outcome);
        tally.borrow_mut().record(
            phase_at(test, sent - started),
            planned.kind,
            outcome,
            now - sent,
            now - started,
        );
    }
}

async fn send_within(test: &LoadTest, connection: &mut Connection, planned: &Planned) -> Outcome {
    if let Ok(outcome) = tokio::time::timeout(test.timeout, connection.send(planned)).await {
        outcome
    } else {
        connection.sender = None;
        Outcome::Timeout
    }
}

fn count(live: &Live, outcome: Outcome) {
    live.sent.fetch_add(1, Ordering::Relaxed);
    if !outcome.succeeded() {
        live.failed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_ramps_holds_and_ramps_down() {
        let secs = Duration::from_secs;
        let due = schedule(100.0, secs(2), secs(10), secs(2));
        // 100 in the ramp-up (half of 2 s at 100/s), 1000 held, 100 in the ramp-down.
        assert_eq!(due.len(), 1200);
        let held: Vec<_> = due
            .iter()
            .filter(|t| (secs(2)..secs(12)).contains(*t))
            .collect();
        assert!((999..=1001).contains(&held.len()), "{}", held.len());
        // Evenly spaced at full rate: 10 ms apart.
        let gap = held[501].saturating_sub(*held[500]);
        assert!((gap.as_secs_f64() - 0.01).abs() < 1e-6, "{gap:?}");
        assert!(due.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            schedule(50.0, Duration::ZERO, secs(2), Duration::ZERO).len(),
            100
        );
    }
}
