//! `dittofs-operator`: reconciles MetadataStore, BlockStore, Share and GCJob resources
//! (`dittofs.io/v1alpha1`) into data-plane StatefulSets configured over gRPC, NFS
//! PersistentVolumes and GC/audit Jobs. Serves Prometheus metrics and health probes.
//!
//! Exit codes: 0 after SIGTERM/SIGINT (in-flight reconciles finish), 1 on a startup error
//! (no cluster credentials, bad flags, metrics port taken), 2 on usage errors (clap).

use clap::Parser;
use dittofs_operator::context::{Ctx, Options};
use dittofs_operator::controller;
use dittofs_operator::dataplane::PodAddresses;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "dittofs-operator",
    version,
    about = "The DittoFS Kubernetes operator",
    long_about = "Reconciles dittofs.io/v1alpha1 resources: MetadataStore -> data-plane StatefulSet + Service \
configured over the gRPC control API; Share -> NFS PersistentVolume (+ pre-bound claim); \
BlockStore -> validation and status; GCJob -> Job or CronJob running dfsctl.\n\n\
Cluster credentials: in-cluster ServiceAccount, else $KUBECONFIG / ~/.kube/config."
)]
struct Cli {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "DITTOFS_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// Data-plane image (dfs + dfsctl) for MetadataStores that name none.
    #[arg(long, env = "DITTOFS_DATAPLANE_IMAGE", default_value = concat!("ghcr.io/dittofs/dittofs:", env!("CARGO_PKG_VERSION")))]
    default_image: String,
    /// Address of the /metrics, /healthz and /readyz endpoint; "off" disables it.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_bind: String,
    /// Deadline in seconds of every call to a data-plane pod (connect + call).
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    call_timeout: u64,
    /// Dial a fixed address for a MetadataStore's pods instead of their pod IPs:
    /// NAMESPACE/NAME=HOST:PORT, repeatable. For tests and development with a data plane
    /// outside the cluster; when given, groups without an entry are never dialled.
    #[arg(long, value_name = "NS/NAME=HOST:PORT")]
    pod_address: Vec<String>,
    /// trace, debug, info, warn or error (RUST_LOG, when set, wins).
    #[arg(long, default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error"])]
    log_level: String,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() {
    let cli = Cli::parse();
    dittofs_operator::init_crypto();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,dittofs_operator={0},dittofs-operator={0}",
            cli.log_level
        ))
    });
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("operator")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dittofs-operator: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(run(cli));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    let pod_addresses = if cli.pod_address.is_empty() {
        PodAddresses::PodIp
    } else {
        match PodAddresses::fixed(&cli.pod_address) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("dittofs-operator: {e}");
                return 2;
            }
        }
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "dittofs-operator: no usable cluster credentials (in-cluster or KUBECONFIG): {e}"
            );
            return 1;
        }
    };
    let opts = Options {
        default_image: cli.default_image.clone(),
        call_timeout: Duration::from_secs(cli.call_timeout),
        pod_addresses,
    };
    let ctx = Arc::new(Ctx::new(client, opts));
    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));

    let metrics = if cli.metrics_bind == "off" {
        None
    } else {
        let addr: SocketAddr = match cli.metrics_bind.parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!(
                    "dittofs-operator: --metrics-bind {:?}: {e}",
                    cli.metrics_bind
                );
                return 2;
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("dittofs-operator: cannot listen on {addr}: {e}");
                return 1;
            }
        };
        tracing::info!(
            "metrics and probes on http://{}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        let app = metrics_router(ctx.clone(), ready.clone());
        let stop = shutdown.clone();
        // Task "metrics-http": cancelled with `shutdown`.
        Some(tokio::spawn(tracing::Instrument::instrument(
            async move {
                let r = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = r {
                    tracing::error!("metrics endpoint failed: {e}");
                }
            },
            tracing::info_span!("metrics-http"),
        )))
    };

    let sig = shutdown.clone();
    // Task "signals": ends the process's work on SIGTERM/SIGINT (aborted at exit).
    let signals = tokio::spawn(tracing::Instrument::instrument(
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight reconciles");
            sig.cancel();
        },
        tracing::info_span!("signals"),
    ));
    tracing::info!(namespace = cli.namespace.as_deref().unwrap_or("(all)"), image = %cli.default_image, "dittofs-operator {} starting", env!("CARGO_PKG_VERSION"));
    ready.store(true, Ordering::SeqCst);
    controller::run(ctx, cli.namespace, shutdown.clone()).await;
    shutdown.cancel();
    signals.abort();
    if let Some(m) = metrics {
        let _ = m.await;
    }
    0
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn metrics_router(ctx: Arc<Ctx>, ready: Arc<AtomicBool>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let ctx = ctx.clone();
                async move {
                    let mut body = String::new();
                    match prometheus_client::encoding::text::encode(
                        &mut body,
                        &ctx.metrics.registry,
                    ) {
                        Ok(()) => (
                            StatusCode::OK,
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            body,
                        ),
                        Err(e) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            [("content-type", "text/plain")],
                            e.to_string(),
                        ),
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::SeqCst) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        )
}
