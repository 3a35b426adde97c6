//! `dfsctl`: command-line client of the DittoFS control API (gRPC, `dittofs.control.v1`).
//!
//! `main` parses the command line, runs the command on a current-thread Tokio runtime
//! and turns the outcome into the process exit code. Errors are printed as
//! `dfsctl: <message>` on stderr.
//!
//! Exit codes (also in `dfsctl --help`):
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | other error: INTERNAL, UNKNOWN, UNIMPLEMENTED, ...; a job that ended FAILED (with the job's error) |
//! | 2    | usage error (clap, or dfsctl's own checks), or INVALID_ARGUMENT from the server |
//! | 3    | NOT_FOUND (or an unknown context) |
//! | 4    | conflict: ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED |
//! | 5    | UNAUTHENTICATED or PERMISSION_DENIED |
//! | 6    | server unreachable: connect failure, UNAVAILABLE, DEADLINE_EXCEEDED |
//! | 8    | `blockstore audit-refcounts` found drift (delta != 0 or dangling entries) |
//! | 130  | interrupted while following a job (the job keeps running on the server) |
//!
//! Modules: `cli` (grammar), `error` (`CliError` and the exit codes), `context` (config
//! file, settings precedence), `client` (connection, auth, status to error), `output`
//! (rendering), `spec` (desired-state document), `parse` (value syntaxes), `secret`
//! (secrets given as values or files), `cmd` (the commands).

mod cli;
mod client;
mod cmd;
mod context;
mod error;
mod output;
mod parse;
mod secret;
mod spec;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = match cli::Cli::command().try_get_matches() {
        Ok(m) => m,
        // Prints help/version (exit 0) or the usage error (exit 2).
        Err(e) => e.exit(),
    };
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let sources = cmd::CliSources::from_matches(&matches);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dfsctl: cannot start the async runtime: {e}");
            return ExitCode::from(error::exit::OTHER);
        }
    };
    match runtime.block_on(cmd::run(cli, sources)) {
        Ok(()) => ExitCode::from(error::exit::OK),
        Err(e) => {
            eprintln!("dfsctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
