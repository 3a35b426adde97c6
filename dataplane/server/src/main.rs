//! `dfs`: the DittoFS data-plane server.
//!
//! `dfs start` with no configuration serves one share, `/export`, from an embedded
//! metadata store and a local block store under the data directory (printed at start),
//! over NFSv3 + MOUNT on port 12049, and the control API (`dfsctl`) on 127.0.0.1:9000.
//!
//! Shutdown (SIGTERM, SIGINT): not ready, no new connections; NFS connections get half of
//! `shutdown_timeout_seconds` to finish their calls (clients not reading their replies
//! are dropped at once), then the stores are flushed and closed. The process exits when
//! the whole bound is spent even if that is not done (a crash, as far as the stores are
//! concerned: the write journal is replayed at the next start), so an orchestrator's
//! grace period above the bound never has to kill it.

use clap::{Parser, Subcommand};
use dittofs_server::config::{self, Config};
use dittofs_server::control::auth::TokenError;
use dittofs_server::error::ControlError;
use dittofs_server::state::{self, DesiredState, StateError};
use dittofs_server::{control, http, metrics, reclaim, runtime, telemetry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "dfs",
    version,
    about = "DittoFS file server: NFSv3 over pluggable metadata and content-addressed block stores"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the server (embedded defaults when no config is given).
    Start {
        /// YAML configuration file (see `dfs init`). Keys can also be set with DITTOFS_* variables.
        #[arg(long, short, env = "DITTOFS_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir` of the config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write a commented sample configuration.
    Init {
        /// Where to write it ("-" for standard output).
        #[arg(long, short, default_value = "dittofs.yaml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the version.
    Version,
}

/// Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage.
fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Version => {
            println!("dfs {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Cmd::Init { output, force } => init(&output, force),
        Cmd::Start { config, data_dir } => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("dfs-worker")
            .build()
        {
            Ok(rt) => {
                let code = rt.block_on(start(config, data_dir));
                // Calls abandoned at the shutdown bound may still run in the blocking
                // pool: the exit does not wait for them.
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
                code
            }
            Err(e) => {
                eprintln!("dfs: cannot start the async runtime: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

fn init(output: &Path, force: bool) -> i32 {
    if output == Path::new("-") {
        print!("{}", config::SAMPLE);
        return 0;
    }
    if output.exists() && !force {
        eprintln!("dfs: {} exists; use --force to overwrite", output.display());
        return 2;
    }
    match std::fs::write(output, config::SAMPLE) {
        Ok(()) => {
            println!("wrote {}", output.display());
            0
        }
        Err(e) => {
            eprintln!("dfs: cannot write {}: {e}", output.display());
            1
        }
    }
}

/// Why `dfs` could not start serving (printed as `dfs: <message>`; exit code 2 when the
/// configuration is at fault, else 1: see [`ServeError::exit_code`]).
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot create data directory {}: {source}", dir.display())]
    CreateDataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {} is not writable: {source}", dir.display())]
    DataDirNotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {}: {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {} is in use by another dfs process (lock {})", dir.display(), lock.display())]
    DataDirInUse { dir: PathBuf, lock: PathBuf },
    #[error("{what} port {addr} is already in use (another server running? set a different port)")]
    PortInUse {
        what: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for {what} on {addr}: {source}")]
    Listen {
        what: String,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The initial stores and shares could not be opened.
    #[error(transparent)]
    Apply(#[from] ControlError),
    /// The lock status monitor's state (`<data_dir>/nsm`) could not be read or written.
    #[error("NSM state: {0}")]
    Nsm(#[source] dittofs_nfs::nsmd::NsmError),
    /// `control/identity.json` could not be read or is not valid.
    #[error("identity store: {0}")]
    Identity(#[source] dittofs_server::identity::IdentityError),
}

impl ServeError {
    /// 2 for bad configuration (a bad or unreadable control token or token file, stores
    /// that cannot be opened as configured), 1 for failures of the host or the data.
    fn exit_code(&self) -> i32 {
        match self {
            ServeError::Token(e) if e.is_config() => 2,
            ServeError::Apply(ControlError::Invalid(_)) => 2,
            _ => 1,
        }
    }
}

/// Checks that the data directory exists (creating it) and is writable.
fn prepare_data_dir(dir: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(dir).map_err(|source| ServeError::CreateDataDir {
        dir: dir.to_owned(),
        source,
    })?;
    let probe = dir.join(".write-probe");
    match std::fs::write(&probe, b"ok") {
        Ok(()) => {}
        // A full disk still serves reads and the deletes that free it (new data is
        // refused until then).
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
            let _ = std::fs::remove_file(&probe);
            eprintln!(
                "warning: data directory {} is full: starting anyway; new data is refused until space is freed",
                dir.display()
            );
            return Ok(());
        }
        Err(source) => {
            return Err(ServeError::DataDirNotWritable {
                dir: dir.to_owned(),
                source,
            });
        }
    }
    std::fs::remove_file(&probe).map_err(|source| ServeError::DataDir {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(())
}

/// Takes an exclusive lock on the data directory so two servers never share one.
/// Raises the soft limit on open files to the hard limit (clients, chunk files and
/// journal segments all take descriptors) and returns the limit in force.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let n = lim.rlim_cur;
    tracing::info!(limit = n, "open file limit");
    n
}

fn lock_data_dir(dir: &Path) -> Result<std::fs::File, ServeError> {
    use std::os::fd::AsRawFd;
    let path = dir.join("dfs.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServeError::LockFile {
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock on a valid open descriptor has no memory-safety preconditions.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(ServeError::DataDirInUse {
            dir: dir.to_owned(),
            lock: path,
        });
    }
    Ok(f)
}

async fn bind(what: &str, addr: &str, port: u16) -> Result<tokio::net::TcpListener, ServeError> {
    let a = format!("{}:{port}", addr.trim_matches(|c| c == '[' || c == ']'));
    let a = if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        a
    };
    tokio::net::TcpListener::bind(&a).await.map_err(|source| {
        let (what, addr) = (what.to_owned(), a.clone());
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::PortInUse { what, addr, source }
        } else {
            ServeError::Listen { what, addr, source }
        }
    })
}

async fn start(config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> i32 {
    let env: Vec<(String, String)> = std::env::vars().collect();
    for var in config::unknown_env(&env) {
        eprintln!(
            "dfs: warning: environment variable {var} is not a configuration key (typo?); ignored"
        );
    }
    let mut cfg = match Config::load(config_path.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dfs: {e}");
            return 2;
        }
    };
    if let Some(d) = data_dir {
        cfg.data_dir = Some(d);
    }
    let _telemetry = match telemetry::init(&cfg) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("dfs: {e}");
            return 2;
        }
    };
    if let Some(p) = &config_path {
        warn_config_exposure(p);
    }
    match serve(cfg).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("dfs: {e}");
            e.exit_code()
        }
    }
}

async fn serve(mut cfg: Config) -> Result<(), ServeError> {
    let data_dir = cfg.data_dir();
    prepare_data_dir(&data_dir)?;
    let _lock = lock_data_dir(&data_dir)?;

    // Stores and shares: the state applied through the control API wins over the file.
    let persisted = state::load(&data_dir)?;
    let (initial, from_api) = match persisted {
        Some(st) => {
            let file_state = DesiredState::from_config(&cfg);
            if (
                &file_state.metadata_stores,
                &file_state.block_stores,
                &file_state.shares,
            ) != (&st.metadata_stores, &st.block_stores, &st.shares)
            {
                tracing::warn!(
                    state = %state::state_path(&data_dir).display(),
                    "stores and shares come from the state applied through the control API (generation {}); those of the config file are ignored",
                    st.generation
                );
            }
            if let Some(n) = &st.nfs {
                cfg.nfs = n.clone();
            }
            (st, true)
        }
        None => (DesiredState::from_config(&cfg), false),
    };

    let mut registry = prometheus_client::registry::Registry::with_prefix("dittofs");
    let nfs_metrics = Arc::new(dittofs_nfs::metrics::NfsMetrics::new(&mut registry));

    // Bind first: a busy port should fail fast, before stores are opened.
    let nfs_listener = if cfg.nfs.enabled {
        Some(bind("NFS", &cfg.nfs.bind, cfg.nfs.port).await?)
    } else {
        None
    };
    let pmap_listener = if cfg.nfs.enabled && cfg.nfs.portmapper.enabled {
        Some(bind("portmapper", &cfg.nfs.bind, cfg.nfs.portmapper.port).await?)
    } else {
        None
    };
    let http_listener = if cfg.http.enabled {
        Some(bind("HTTP", &cfg.http.bind, cfg.http.port).await?)
    } else {
        None
    };
    let control_listener = if cfg.control.enabled {
        Some(bind("control API", &cfg.control.bind, cfg.control.port).await?)
    } else {
        None
    };
    let token = if cfg.control.enabled {
        Some(control::auth::resolve_token(&cfg.control, &data_dir)?)
    } else {
        None
    };
    let control_addr = control_listener.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(l) = &control_listener {
        warn_control_exposure(&cfg.control, l, token.as_ref().map(|(_, src)| src));
    }

    let fd_limit = raise_fd_limit();
    let rt = runtime::Runtime::new(&data_dir);
    rt.identity().load().map_err(ServeError::Identity)?;
    rt.apply_initial(initial, from_api).await?;
    metrics::register(&mut registry, &rt);
    let stop = CancellationToken::new();
    let http_state = Arc::new(http::HttpState {
        registry,
        ready: false.into(),
    });
    let mut tasks = Vec::new();
    if let Some(l) = http_listener {
        let (st, stop2) = (http_state.clone(), stop.clone());
        tasks.push(tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = http::serve(l, st, stop2).await {
                    tracing::error!(error = %e, "HTTP listener failed");
                }
            },
            tracing::info_span!("task", name = "http"),
        )));
    }
    let flusher = rt.spawn_flusher(stop.clone());
    tasks.push(reclaim::spawn(rt.clone(), stop.clone()));
    tasks.push(rt.spawn_trash_reaper(std::time::Duration::from_secs(3600), stop.clone()));

    let mut nfs_task = None;
    let mut nfs_server = None;
    if let Some(l) = nfs_listener {
        let server = dittofs_nfs::server::NfsServer::new(
            rt.registry.clone(),
            rt.export_policies(),
            dittofs_nfs::server::NfsServerConfig {
                max_record_bytes: cfg.nfs.max_record_bytes as usize,
                max_inflight_per_connection: cfg.nfs.max_inflight_per_connection as usize,
                max_buffered_bytes_per_connection: cfg.nfs.max_buffered_bytes_per_connection,
                max_buffered_bytes: cfg.nfs.max_buffered_bytes,
                reply_timeout: std::time::Duration::from_secs(u64::from(
                    cfg.nfs.reply_timeout_seconds,
                )),
                shutdown_timeout: shutdown_bound(&cfg) / 2,
                max_connections: match cfg.nfs.max_connections {
                    0 => (fd_limit / 4).max(16) as usize,
                    n => n as usize,
                },
                port: cfg.nfs.port,
                v4: dittofs_nfs::server::Nfs4Config {
                    delegations: cfg.nfs.v4.delegations,
                    write_delegations: cfg.nfs.v4.write_delegations,
                    lease: std::time::Duration::from_secs(u64::from(cfg.nfs.v4.lease_seconds)),
                    courtesy: std::time::Duration::from_secs(u64::from(
                        cfg.nfs.v4.courtesy_seconds,
                    )),
                    id_domain: Some(cfg.nfs.v4.id_domain.clone()).filter(|d| !d.is_empty()),
                },
                locks: dittofs_nfs::server::NlmConfig {
                    grace: std::time::Duration::from_secs(u64::from(cfg.nfs.locks.grace_seconds)),
                    client_portmapper_port: cfg.nfs.locks.client_portmapper_port,
                    nsm: Some(Arc::new(
                        dittofs_nfs::nsmd::NsmStore::open(&data_dir.join("nsm"))
                            .map_err(ServeError::Nsm)?,
                    )),
                },
            },
            nfs_metrics.clone(),
        );
        rt.attach_nfs(server.clone());
        nfs_server = Some(server.clone());
        if let Some(pl) = pmap_listener {
            let port = cfg.nfs.port;
            let stop2 = stop.clone();
            tasks.push(tokio::spawn(tracing::Instrument::instrument(
                async move { dittofs_nfs::portmap::serve(pl, port, stop2).await },
                tracing::info_span!("task", name = "portmapper"),
            )));
        }
        let stop2 = stop.clone();
        nfs_task = Some(tokio::spawn(tracing::Instrument::instrument(
            async move { server.serve(l, stop2).await },
            tracing::info_span!("task", name = "nfs"),
        )));
    }
    if let (Some(l), Some((token, _))) = (control_listener, &token) {
        let svc = control::Control::new(
            rt.clone(),
            control::ServerInfo {
                nfs: cfg.nfs.clone(),
                nfs_running: nfs_server.is_some(),
            },
            nfs_server.clone(),
            stop.clone(),
        );
        let (token, stop2) = (token.clone(), stop.clone());
        tasks.push(tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = control::serve(l, svc, &token, stop2).await {
                    tracing::error!(error = %e, "control API listener failed");
                }
            },
            tracing::info_span!("task", name = "control"),
        )));
    }

    if let (Some(addr), Some(_)) = (control_addr, &token) {
        // Serving from here on: dfsctl may send this data directory's token to it.
        control::auth::record_endpoint(&data_dir, addr)?;
    }
    http_state.ready.store(true, Ordering::Release);
    let shares: Vec<String> = rt.shares().iter().map(|s| s.cfg.name.clone()).collect();
    tracing::info!(data_dir = %data_dir.display(), shares = ?shares, nfs_port = cfg.nfs.port, "DittoFS {} ready", env!("CARGO_PKG_VERSION"));
    println!("DittoFS {} serving {:?}", env!("CARGO_PKG_VERSION"), shares);
    println!("  data directory: {}", data_dir.display());
    if from_api {
        println!(
            "  stores and shares: {} (managed with dfsctl)",
            state::state_path(&data_dir).display()
        );
    }
    if cfg.nfs.enabled {
        println!("  NFSv3 + MOUNT on {}:{}", cfg.nfs.bind, cfg.nfs.port);
        println!(
            "  mount with: mount -t nfs -o nfsvers=3,tcp,port={p},mountport={p} <server>:{s} /mnt/test",
            p = cfg.nfs.port,
            s = shares.first().map(String::as_str).unwrap_or("/export")
        );
    }
    if cfg.http.enabled {
        println!(
            "  health/metrics on http://{}:{}/metrics",
            cfg.http.bind, cfg.http.port
        );
    }
    if let Some((_, src)) = &token {
        println!(
            "  control API (dfsctl) on {}:{}",
            cfg.control.bind, cfg.control.port
        );
        println!("  control token: {}", token_origin(src));
    }

    wait_for_signal().await;
    let bound = shutdown_bound(&cfg);
    tracing::info!(
        "shutting down within {bound:?}: no new connections, clients not reading are \
         dropped, in-flight calls finish"
    );
    http_state.ready.store(false, Ordering::Release);
    stop.cancel();
    let stopping = shut_down(nfs_task, flusher, tasks, &rt);
    match tokio::time::timeout(bound, stopping).await {
        Ok(()) => tracing::info!("stopped"),
        Err(_) => tracing::warn!(
            "shutdown not finished within {bound:?} (shutdown_timeout_seconds): exiting \
             anyway; the write journal is replayed at the next start"
        ),
    }
    if cfg.control.enabled {
        control::auth::forget_endpoint(&data_dir);
    }
    Ok(())
}

/// The whole shutdown's bound (`shutdown_timeout_seconds`).
fn shutdown_bound(cfg: &Config) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(cfg.shutdown_timeout_seconds))
}

/// After the stop: the NFS server drains (bounded by its own `shutdown_timeout`), the
/// background tasks end, the stores are flushed and closed.
async fn shut_down(
    nfs_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    flusher: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    rt: &runtime::Runtime,
) {
    if let Some(t) = nfs_task {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "NFS listener ended with an error"),
            Err(e) => tracing::warn!(error = %e, "NFS task failed"),
        }
    }
    let _ = flusher.await;
    for t in tasks {
        let _ = t.await;
    }
    rt.shutdown().await;
}

/// Where the control token is, for the banner: a path or the configuration, never the
/// token itself (stdout ends up in logs).
fn token_origin(src: &control::auth::TokenSource) -> String {
    use control::auth::TokenSource;
    match src {
        TokenSource::Generated(path) => format!(
            "generated in {} (mode 0600; dfsctl on this host reads it)",
            path.display()
        ),
        TokenSource::File(path) => format!("in {}", path.display()),
        TokenSource::Config => "from the configuration (control.token)".into(),
    }
}

/// One WARN line for a configuration file that holds secrets in clear and that its group
/// or others can read (the keys are named, never their values).
fn warn_config_exposure(path: &std::path::Path) {
    let Some(mode) = dittofs_server::secrets::exposed_mode(path) else {
        return;
    };
    let keys = std::fs::read_to_string(path)
        .map(|t| dittofs_server::secrets::secrets_in_config(&t))
        .unwrap_or_default();
    if !keys.is_empty() {
        tracing::warn!(
            "configuration file {p} holds secrets ({k}) and is readable by group or others (mode {mode:04o}); fix with: chmod 600 {p}, or move them to token_file / secret_access_key_file",
            p = path.display(),
            k = keys.join(", ")
        );
    }
}

/// One WARN line each for a control token file others can read and for a control API
/// reachable from the network without TLS (the bearer token travels in clear).
fn warn_control_exposure(
    cfg: &config::ControlSection,
    listener: &tokio::net::TcpListener,
    src: Option<&control::auth::TokenSource>,
) {
    if let Some(control::auth::TokenSource::File(path)) = src
        && let Some(mode) = dittofs_server::secrets::exposed_mode(path)
    {
        tracing::warn!(
            "control token file {p} is readable by group or others (mode {mode:04o}): anyone who can read it controls this server; fix with: chmod 600 {p}",
            p = path.display()
        );
    }
    if !dittofs_server::secrets::is_loopback_bind(&cfg.bind) {
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| format!("{}:{}", cfg.bind, cfg.port));
        tracing::warn!(
            "control API listens on {addr} without TLS (not supported yet): the bearer token and every call travel in clear text; keep this port on a trusted network, or set control.bind to 127.0.0.1"
        );
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
