use clap::Parser;

use bullpen::cli::{self, Cli};
use bullpen::settings::Settings;
use bullpen::telemetry::{LogOutput, init_telemetry};

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config_dir)?;
    // The guard, dropped when `main` returns, writes the last lines still queued.
    let (log, _flush) = LogOutput::stderr();
    init_telemetry(settings.telemetry.format, &settings.telemetry.level, log);
    cli::run(cli, &settings)
}
