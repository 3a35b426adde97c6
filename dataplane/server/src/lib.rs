//! The DittoFS data-plane server as a library: configuration, the runtime registry
//! (composition root of stores and shares), the identity store (users, groups, share
//! grants), the gRPC control API, GC and audit jobs, the
//! HTTP health/metrics listener and telemetry. The `dfs` binary (`main.rs`) is a thin CLI
//! over it.

pub mod chunk_audit;
pub mod config;
pub mod control;
pub mod error;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod maintenance;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod reclaim;
pub mod runtime;
pub mod secrets;
pub mod state;
pub mod telemetry;
