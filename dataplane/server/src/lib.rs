//! The DittoFS data-plane server as a library: configuration, the runtime (composition
//! root of stores and shares), the HTTP health/metrics listener and telemetry. The `dfs`
//! binary (`main.rs`) is a thin CLI over it.

pub mod config;
pub mod http;
pub mod runtime;
pub mod telemetry;
