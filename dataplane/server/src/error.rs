//! The control layer's error enum and its one mapping to gRPC status codes (the
//! contract in `proto/dittofs/control/v1/control.proto`). Messages name the object and say
//! what to do, because they end up in front of a person (`dfsctl`, Kubernetes Events).

use dittofs_vfs::FsError;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// Malformed or inconsistent input.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    /// The request conflicts with the current state (store in use, share's store changed).
    #[error("{0}")]
    Precondition(String),
    /// ApplyConfig with a generation older than the applied one.
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Unimplemented(String),
    /// An external dependency (the remote store) did not answer; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A store or the file system failed.
    #[error("{0}")]
    Internal(String),
}

pub type ControlResult<T> = Result<T, ControlError>;

impl ControlError {
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            ControlError::Invalid(_) => tonic::Code::InvalidArgument,
            ControlError::NotFound(_) => tonic::Code::NotFound,
            ControlError::Exists(_) => tonic::Code::AlreadyExists,
            ControlError::Precondition(_) => tonic::Code::FailedPrecondition,
            ControlError::Stale(_) => tonic::Code::Aborted,
            ControlError::Unimplemented(_) => tonic::Code::Unimplemented,
            ControlError::Unavailable(_) => tonic::Code::Unavailable,
            ControlError::Internal(_) => tonic::Code::Internal,
        }
    }

    /// Maps a file-system error of an administrative operation (trash restore, audit) on
    /// `what` (a path or share name, for the message).
    pub fn from_fs(what: &str, e: FsError) -> ControlError {
        match e {
            FsError::NoEnt => ControlError::NotFound(format!("{what}: no such file or directory")),
            FsError::Exist => ControlError::Exists(format!("{what}: already exists")),
            FsError::Inval(m) => ControlError::Invalid(format!("{what}: {m}")),
            FsError::InvalidArgument(m) => ControlError::Invalid(format!("{what}: {m}")),
            FsError::NameTooLong | FsError::BadHandle => {
                ControlError::Invalid(format!("{what}: {e}"))
            }
            FsError::NotEmpty
            | FsError::NotDir
            | FsError::IsDir
            | FsError::RoFs
            | FsError::Perm
            | FsError::Access
            | FsError::Busy => ControlError::Precondition(format!("{what}: {e}")),
            other => ControlError::Internal(format!("{what}: {other}")),
        }
    }
}

impl From<ControlError> for tonic::Status {
    fn from(e: ControlError) -> tonic::Status {
        tonic::Status::new(e.grpc_code(), e.to_string())
    }
}
