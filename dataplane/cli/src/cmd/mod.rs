//! Command implementations, one module per command family, and the shared per-run
//! context ([`Ctx`]): output format, connection settings and a lazily opened connection
//! (validation of the arguments always happens before connecting, so usage errors never
//! touch the server).

mod config;
mod context;
mod jobs;
mod share;
mod status;
mod store;
mod trash;
mod users;

use crate::cli::{Cli, Command, GlobalArgs, OutputFormat};
use crate::client::Conn;
use crate::context::{ConfigFile, ConnFlags, Resolved, config_path, fallback_token_paths, resolve};
use crate::error::CliError;
use crate::secret::SecretInput;
use std::path::PathBuf;
use std::time::Duration;

/// Which connection flags were typed on the command line (not taken from the
/// environment): `context set` saves only those.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CliSources {
    pub(crate) server: bool,
    pub(crate) token: bool,
    pub(crate) token_file: bool,
}

impl CliSources {
    pub(crate) fn from_matches(m: &clap::ArgMatches) -> Self {
        let typed = |id: &str| {
            matches!(
                m.value_source(id),
                Some(clap::parser::ValueSource::CommandLine)
            )
        };
        CliSources {
            server: typed("server"),
            token: typed("token"),
            token_file: typed("token_file"),
        }
    }
}

/// State shared by the commands of one run.
pub(crate) struct Ctx {
    global: GlobalArgs,
    sources: CliSources,
    conn: Option<Conn>,
}

impl Ctx {
    fn new(global: GlobalArgs, sources: CliSources) -> Self {
        Ctx {
            global,
            sources,
            conn: None,
        }
    }

    /// The output format (`text` unless -o was given).
    pub(crate) fn format(&self) -> OutputFormat {
        self.global.output.unwrap_or(OutputFormat::Text)
    }

    /// The -o value if one was given.
    pub(crate) fn explicit_format(&self) -> Option<OutputFormat> {
        self.global.output
    }

    fn timeout(&self) -> Option<Duration> {
        (self.global.timeout > 0).then(|| Duration::from_secs(self.global.timeout))
    }

    fn conn_flags(&self) -> ConnFlags {
        let origin =
            |typed: bool, flag: &str, env: &str| if typed { flag } else { env }.to_string();
        let mut token = Vec::new();
        if let Some(value) = self.global.token.clone() {
            let origin = origin(self.sources.token, "--token", "DFSCTL_TOKEN");
            token.push(SecretInput::Value { origin, value });
        }
        if let Some(path) = self.global.token_file.clone() {
            let origin = origin(self.sources.token_file, "--token-file", "DFSCTL_TOKEN_FILE");
            token.push(SecretInput::File { origin, path });
        }
        ConnFlags {
            server: self.global.server.clone().filter(|s| !s.trim().is_empty()),
            token,
            context: self.global.context.clone().filter(|s| !s.is_empty()),
        }
    }

    /// The config file path (error when it cannot be determined).
    pub(crate) fn config_path(&self) -> Result<PathBuf, CliError> {
        config_path().ok_or_else(|| {
            CliError::Usage(
                "cannot locate the dfsctl config file: set HOME or DFSCTL_CONFIG".into(),
            )
        })
    }

    /// Loads the config file (empty when there is no HOME to find it in); warns on
    /// stderr when it holds tokens that others can read.
    pub(crate) fn load_config(&self) -> Result<ConfigFile, CliError> {
        let Some(p) = config_path() else {
            return Ok(ConfigFile::default());
        };
        let file = ConfigFile::load(&p)?;
        if let Some(w) = file.exposure_warning(&p) {
            eprintln!("dfsctl: {w}");
        }
        Ok(file)
    }

    /// The effective connection settings.
    pub(crate) fn resolve(&self) -> Result<Resolved, CliError> {
        let file = self.load_config()?;
        resolve(&self.conn_flags(), &file, &fallback_token_paths())
    }

    /// The connection, opened on first use.
    pub(crate) async fn conn(&mut self) -> Result<&Conn, CliError> {
        if self.conn.is_none() {
            let settings = self.resolve()?;
            self.conn = Some(Conn::connect(settings, self.timeout()).await?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| CliError::Failed("no connection".into()))
    }
}

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli, sources: CliSources) -> Result<(), CliError> {
    let mut ctx = Ctx::new(cli.global, sources);
    match cli.command {
        Command::Status => status::status(&mut ctx).await,
        Command::Version => status::version(&mut ctx).await,
        Command::Completion { shell } => status::completion(shell),
        Command::Store(c) => store::run(&mut ctx, c).await,
        Command::Blockstore(c) => jobs::blockstore(&mut ctx, c).await,
        Command::Share(c) => share::run(&mut ctx, c).await,
        Command::Trash(c) => trash::run(&mut ctx, c).await,
        Command::User(c) => users::user(&mut ctx, c).await,
        Command::Group(c) => users::group(&mut ctx, c).await,
        Command::Config(c) => config::run(&mut ctx, c).await,
        Command::Context(c) => context::run(&mut ctx, c),
    }
}
