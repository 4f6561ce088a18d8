//! The `messaging` binary: parse settings, set up logging, build, run until SIGTERM.

use clap::Parser;
use tributary_messaging::{Application, Settings, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    telemetry::init(settings.log_format);
    let application = Application::build(&settings).await?;
    application.run_until_stopped(shutdown_signal()).await
}
