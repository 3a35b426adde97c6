//! The operator's one error enum. Every reconcile failure is one of these; `reason()` is
//! the stable CamelCase reason that lands in status conditions and Events, and
//! `retry_after()` the backoff the controller applies.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A referenced object (store, share, secret) does not exist (yet).
    #[error("{0}")]
    MissingRef(String),
    /// The spec is valid for the apiserver but cannot be served (e.g. an unsupported type).
    #[error("{0}")]
    Invalid(String),
    /// A data-plane pod could not be reached or refused the call.
    #[error("data plane {addr}: {msg}")]
    DataPlane { addr: String, msg: String },
    /// A data-plane pod answered and refused the request (invalid or unsupported config).
    #[error("data plane {addr} refused: {msg}")]
    Rejected { addr: String, msg: String },
    /// Serializing an object failed (a bug).
    #[error("serialization: {0}")]
    Serde(#[from] serde_json::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The CamelCase reason used in conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::MissingRef(_) => "ReferenceNotFound",
            Error::Invalid(_) => "InvalidSpec",
            Error::DataPlane { .. } => "DataPlaneUnavailable",
            Error::Rejected { .. } => "RejectedByDataPlane",
            Error::Serde(_) => "InternalError",
        }
    }

    /// How long to wait before the next attempt. A missing reference or an invalid spec is
    /// re-checked slowly (a watch on the referenced kinds usually triggers sooner).
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::MissingRef(_) | Error::Invalid(_) => Duration::from_secs(60),
            Error::DataPlane { .. } => Duration::from_secs(10),
            Error::Rejected { .. } => Duration::from_secs(60),
            Error::Kube(_) | Error::Serde(_) => Duration::from_secs(15),
        }
    }
}
