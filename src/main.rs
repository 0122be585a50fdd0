use clap::Parser;

use bullpen::cli::{self, Cli};
use bullpen::settings::Settings;
use bullpen::telemetry::init_telemetry;

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config_dir)?;
    init_telemetry(
        settings.telemetry.format,
        &settings.telemetry.level,
        std::io::stderr,
    );
    cli::run(cli, &settings)
}
