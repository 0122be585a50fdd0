//! Logging through `tracing-subscriber`: pretty for a terminal, JSON for collectors. A leaf:
//! every module may log, and [`Chain`] prints an error with its causes.

use std::error::Error;
use std::fmt;
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

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub format: LogFormat,
    pub level: String,
}

impl TelemetrySettings {
    pub fn validate(&self) -> Result<(), crate::validation::InvalidSetting> {
        EnvFilter::try_new(&self.level).map(drop).map_err(|_| {
            crate::validation::InvalidSetting::new(
                "telemetry.level",
                "is not a tracing filter such as `info`",
            )
        })
    }
}

/// An error and every cause below it, `outer: inner: innermost`, for a log line. Errors name
/// their own step and leave the cause to `source()`, so this prints each message once.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the games")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_prints_every_cause_once() {
        let error = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(Chain(&error).to_string(), "reading the games: disk on fire");
    }
}
