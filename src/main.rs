//! The `meridian` binary: parses the command line and hands over to the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc: GraphQL execution allocates many small, short-lived
/// values per field, and under glibc that was a third of the profile (benches/compare).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = meridian::cli::Cli::parse();
    if let Err(err) =
        meridian::telemetry::init(cli.config.log_format, cli.config.otlp_endpoint.as_deref())
    {
        eprintln!("error: MERIDIAN_OTLP_ENDPOINT: {err:#}");
        return std::process::ExitCode::FAILURE;
    }
    let code = match meridian::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "meridian failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // The exporter's last batch goes out on its own thread; wait for it off the runtime.
    let _ = tokio::task::spawn_blocking(meridian::telemetry::flush).await;
    code
}
