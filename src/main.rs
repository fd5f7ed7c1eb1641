//! The `meridian` binary: parses the command line and hands over to the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc: GraphQL execution allocates many small, short-lived
/// values per field, and under glibc that was a third of the profile (benches/compare).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = meridian::cli::Cli::parse();
    meridian::telemetry::init(cli.config.log_format);
    match meridian::cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "meridian failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
