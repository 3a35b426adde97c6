//! `dfsctl`'s one error type and the process exit codes it maps to.
//!
//! Every module of the client returns [`CliError`]; `main` prints its `Display` after
//! `dfsctl: ` and exits with [`CliError::exit_code`]. A gRPC status keeps its code, and
//! [`exit_code_for`] gives the exit code the help text documents for it.

use tonic::Code;

/// Process exit codes (documented in `dfsctl --help`, see `cli::EXIT_CODES_HELP`).
pub(crate) mod exit {
    pub(crate) const OK: u8 = 0;
    /// Other or internal error, a FAILED job.
    pub(crate) const OTHER: u8 = 1;
    /// Usage error or INVALID_ARGUMENT.
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const NOT_FOUND: u8 = 3;
    /// ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED.
    pub(crate) const CONFLICT: u8 = 4;
    /// UNAUTHENTICATED, PERMISSION_DENIED.
    pub(crate) const AUTH: u8 = 5;
    /// Connect failure, UNAVAILABLE, DEADLINE_EXCEEDED.
    pub(crate) const UNREACHABLE: u8 = 6;
    /// The refcount audit found drift.
    pub(crate) const DRIFT: u8 = 8;
    /// Interrupted (Ctrl-C) while following a job.
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// Every failure `dfsctl` reports; `Display` is the message after `dfsctl: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad command-line input or local configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A local object (a context) does not exist (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// The server answered with an error status (exit code by status code).
    #[error("{message}")]
    Status { code: Code, message: String },
    /// The server could not be reached (exit 6).
    #[error("{0}")]
    Unreachable(String),
    /// The audit found refcount drift (exit 8).
    #[error("{0}")]
    Drift(String),
    /// Interrupted while following a job (exit 130).
    #[error("{0}")]
    Interrupted(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Failed(String),
    /// A secret given twice, or an unreadable or empty secret file (exit 2).
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Secret(_) => exit::USAGE,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Status { code, .. } => exit_code_for(*code),
            CliError::Unreachable(_) => exit::UNREACHABLE,
            CliError::Drift(_) => exit::DRIFT,
            CliError::Interrupted(_) => exit::INTERRUPTED,
            CliError::Failed(_) => exit::OTHER,
        }
    }
}

/// The exit code for a gRPC status code.
pub(crate) fn exit_code_for(code: Code) -> u8 {
    match code {
        Code::Ok => exit::OK,
        Code::InvalidArgument => exit::USAGE,
        Code::NotFound => exit::NOT_FOUND,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => exit::CONFLICT,
        Code::Unauthenticated | Code::PermissionDenied => exit::AUTH,
        Code::Unavailable | Code::DeadlineExceeded => exit::UNREACHABLE,
        _ => exit::OTHER,
    }
}
