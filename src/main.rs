//! `lethe`: reads configuration, starts telemetry, and runs the service or an
//! operator command. No logic here.

use clap::Parser;
use lethe::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = lethe::config::load(&cli.config_dir)?;
    lethe::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = lethe::startup::Application::build(settings).await?;
            app.run_until_stopped(lethe::shutdown::wait_for_signal_then_force()).await
        }
        other => lethe::cli::run_admin(settings, other).await,
    }
}
