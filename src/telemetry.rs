//! Logging through `tracing-subscriber`: pretty for a terminal, JSON for collectors.

use std::io::Write;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
/// Tests pass a sink as `writer`; calling it twice leaves the first subscriber in place.
pub fn init_telemetry<W>(format: LogFormat, level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(error) = installed {
        // Only a second initialisation fails, and then the first subscriber keeps working.
        let _ = writeln!(std::io::stderr(), "telemetry already initialised: {error}");
    }
}
