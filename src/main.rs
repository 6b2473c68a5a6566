//! `pulso-flow`: the command line.
//!
//! Exit codes: 0 all ok; 1 some node failed; 2 bad usage or invalid pipeline file; 3 a table was
//! not loaded because another run holds its lock (`--no-wait`); 130 interrupted (SIGINT), 143
//! terminated (SIGTERM); either way the running loads rolled back.

mod backfill_cmd;
mod backfill_progress;
mod cli;
mod memory;
mod progress;
mod reconcile_cmd;
mod runs;
mod summary;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    memory::bound_allocator_retention();
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cli::dispatch(args))
}
