//! Logging (text or JSON, level from config or `DITTOFS_LOGGING_LEVEL`) and optional
//! OpenTelemetry trace export over OTLP/gRPC. A setup that fails is a
//! [`TelemetryError`] with the library's error as its source.

use crate::config::Config;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("logging filter: {0}")]
    Filter(#[source] tracing_subscriber::filter::ParseError),
    #[error("OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("logging init: {0}")]
    Init(#[source] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace pipeline alive; flushes spans on drop.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("dfs: trace export shutdown: {e}");
        }
    }
}

pub fn init(cfg: &Config) -> Result<TelemetryGuard, TelemetryError> {
    let level = cfg.logging.level.to_ascii_lowercase();
    // Our crates at the configured level; noisy dependencies one notch quieter.
    let filter = EnvFilter::try_new(format!("warn,dittofs={level},dfs={level},dittofs_server={level},dittofs_nfs={level},dittofs_vfs={level},dittofs_blockstore={level},dittofs_metadata={level}"))
        .map_err(TelemetryError::Filter)?;
    let fmt_layer = if cfg.logging.format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut provider = None;
    let otel_layer = if cfg.telemetry.otlp_endpoint.is_empty() {
        None
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(cfg.telemetry.otlp_endpoint.clone())
            .build()
            .map_err(|source| TelemetryError::Exporter {
                endpoint: cfg.telemetry.otlp_endpoint.clone(),
                source,
            })?;
        let name = if cfg.telemetry.service_name.is_empty() {
            "dittofs".to_owned()
        } else {
            cfg.telemetry.service_name.clone()
        };
        let p = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(name)
                    .build(),
            )
            .build();
        let tracer = p.tracer("dittofs");
        provider = Some(p);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(TelemetryError::Init)?;
    Ok(TelemetryGuard { provider })
}
