//! The command-line grammar of `dfsctl` (clap derive types only; no behaviour).
//!
//! Command families: `status`, `version`, `completion`, `store` (metadata and block
//! stores, block GC), `blockstore` (refcount audit), `share`, `trash`, `config`
//! (declarative desired state) and `context` (saved server/token pairs). Global
//! connection and output flags are accepted before or after the subcommand.

use crate::parse::{parse_chunking, parse_duration_secs, parse_octal_mode, parse_size};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dittofs_proto::defaults::SHARE_DEFAULTS;
use dittofs_proto::v1::Chunking;
use std::path::PathBuf;

/// Exit codes, shown at the end of `dfsctl --help` (kept in sync with `error::exit`).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other error: INTERNAL, UNKNOWN, UNIMPLEMENTED, ...; a job that ended FAILED
  2  usage error, or INVALID_ARGUMENT from the server
  3  NOT_FOUND (store, share, job, trash item or context)
  4  conflict: ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED
  5  UNAUTHENTICATED or PERMISSION_DENIED (check --token / the context)
  6  server unreachable: connect failure, UNAVAILABLE, DEADLINE_EXCEEDED
  8  `blockstore audit-refcounts` found refcount drift (delta != 0 or dangling refs)
  130 interrupted while following a job (the job keeps running on the server)";

const LONG_ABOUT: &str = "\
dfsctl manages a running DittoFS server (`dfs`) through its gRPC control API: \
metadata and block stores, shares, the recycle bin, block garbage collection, \
refcount audits and the declarative configuration.

Connection settings come from flags, then environment variables (DFSCTL_SERVER, \
DFSCTL_TOKEN, DFSCTL_TOKEN_FILE, DFSCTL_CONTEXT), then the selected context of \
~/.config/dfsctl/config (see `dfsctl context --help`), then defaults \
(http://127.0.0.1:9000). The token is sent as `authorization: Bearer <token>`.

Secrets: a flag's value (--token, --secret-access-key) is visible to every user of the \
host in `ps`; give secrets as files (--token-file, --secret-access-key-file; mode 0600) \
or environment variables (DFSCTL_TOKEN, DFSCTL_S3_SECRET_ACCESS_KEY) instead. A file's \
trailing newline is ignored and an empty file is an error; giving one secret two ways \
(e.g. --token and --token-file, or DFSCTL_TOKEN and --token-file) is a usage error.

Local token: when no token is given at all, dfsctl reads the token `dfs` wrote in its \
data directory (/var/lib/dittofs/control-token, else \
$XDG_DATA_HOME/dittofs/control-token or ~/.local/share/dittofs/control-token), but \
sends it only to that server: the control address its running `dfs` recorded beside it \
(control-endpoint) must be the one --server reaches (same port, a loopback address). \
Any other server gets no token and refuses the call (exit 5).

Errors are printed as `dfsctl: <message>` on stderr.";

/// `dfsctl`: command-line client of the DittoFS control API.
#[derive(Debug, Parser)]
#[command(
    name = "dfsctl",
    version,
    about = "Command-line client of the DittoFS control API",
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

const GLOBAL: &str = "Global options";

/// Flags accepted by every command.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Control API address of dfs, `host:port` or `http://host:port`
    /// [default: http://127.0.0.1:9000, or the context's server]
    #[arg(help_heading = GLOBAL,long, global = true, env = "DFSCTL_SERVER", hide_env_values = true, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Bearer token for the control API. Visible to every user in `ps`: prefer
    /// --token-file or DFSCTL_TOKEN
    #[arg(
        help_heading = GLOBAL,
        long,
        global = true,
        env = "DFSCTL_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// Read the bearer token from this file (mode 0600; trailing newline ignored;
    /// excludes --token)
    #[arg(help_heading = GLOBAL,long, global = true, env = "DFSCTL_TOKEN_FILE", hide_env_values = true, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Use this context of the dfsctl config file instead of its current one
    #[arg(help_heading = GLOBAL,long, global = true, env = "DFSCTL_CONTEXT", hide_env_values = true, value_name = "NAME")]
    pub(crate) context: Option<String>,
    /// Output format [default: text; `config get` defaults to yaml]
    #[arg(help_heading = GLOBAL,short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub(crate) output: Option<OutputFormat>,
    /// Deadline of each call in seconds (0 = none); following a job has no overall deadline
    #[arg(help_heading = GLOBAL,long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Tables and key/value lines for people (sizes human-readable)
    Text,
    /// A JSON document (exact numbers)
    Json,
    /// A YAML document (exact numbers)
    Yaml,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the server's version, applied generation, shares, stores, adapters and clients
    Status,
    /// Print the dfsctl version and, when reachable, the server's
    Version,
    /// Print a shell completion script (works without a server)
    #[command(long_about = "Print a shell completion script on stdout.\n\n\
                      Examples:\n  dfsctl completion bash > /etc/bash_completion.d/dfsctl\n  \
                      dfsctl completion zsh > \"${fpath[1]}/_dfsctl\"\n  \
                      dfsctl completion fish > ~/.config/fish/completions/dfsctl.fish")]
    Completion {
        /// Shell to generate the script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Manage metadata and block stores; block garbage collection
    #[command(subcommand)]
    Store(StoreCommand),
    /// Block store maintenance: refcount audit
    #[command(subcommand)]
    Blockstore(BlockstoreCommand),
    /// Create, edit, list, show and remove shares (exports)
    #[command(subcommand)]
    Share(ShareCommand),
    /// The per-share recycle bin: list, restore, status, empty
    #[command(subcommand, long_about = TRASH_LONG_ABOUT)]
    Trash(TrashCommand),
    /// Users: create, list, get, edit, remove, set a password
    #[command(subcommand, long_about = USER_LONG_ABOUT)]
    User(UserCommand),
    /// Groups: create, list, remove, add and remove members
    #[command(subcommand)]
    Group(GroupCommand),
    /// The declarative desired state: get it, or apply one from a file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Saved connection contexts (server + token) in the dfsctl config file
    #[command(subcommand, long_about = CONTEXT_LONG_ABOUT)]
    Context(ContextCommand),
}

const TRASH_LONG_ABOUT: &str = "\
The per-share recycle bin. When a share has trash enabled, deleted files are moved to \
`#recycle/` inside the share instead of being removed; they can be listed and restored \
until the retention period or the size cap purges them.

Examples:
  dfsctl trash list /docs
  dfsctl trash restore /docs '#recycle/report.txt'
  dfsctl trash restore /docs '#recycle/report.txt' --to /archive/report.txt --overwrite
  dfsctl trash status /docs
  dfsctl trash empty /docs --force";

const CONTEXT_LONG_ABOUT: &str = "\
Saved connection contexts. The config file is $DFSCTL_CONFIG, or \
$XDG_CONFIG_HOME/dfsctl/config, or ~/.config/dfsctl/config (YAML, created with mode 0600):

  current_context: prod
  contexts:
    prod:
      server: http://10.0.0.5:9000
      token_file: /etc/dittofs/control-token

A context saved with --token keeps the token in that file (dfsctl warns when others can \
read it); one saved with --token-file keeps only the path, read at each use. Flags and \
environment variables override the context's values.";

// ----------------------------------------------------------------- store

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Metadata stores (file system trees)
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Block stores (file contents), local and remote tiers; block GC
    #[command(subcommand)]
    Block(BlockCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum MetadataCommand {
    /// Add a metadata store
    #[command(long_about = "Add a metadata store.\n\n\
        Examples:\n  dfsctl store metadata add --name default --type sled\n  \
        dfsctl store metadata add --name meta --type sled --config '{\"path\":\"/var/lib/dfs/metadata\"}'\n  \
        dfsctl store metadata add --name scratch --type memory")]
    Add(MetadataAddArgs),
    /// List metadata stores
    List,
    /// Remove a metadata store (refused while a share uses it)
    Remove {
        /// Store name
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct MetadataAddArgs {
    /// Store name
    #[arg(long)]
    pub(crate) name: String,
    /// Store type: `sled` (embedded, persistent) or `memory` (lost on restart)
    #[arg(long = "type", value_name = "TYPE", default_value = "sled",
          value_parser = ["memory", "sled"])]
    pub(crate) store_type: String,
    /// Directory of a persistent store [default: <data_dir>/metadata/<name>]
    #[arg(long, value_name = "DIR")]
    pub(crate) path: Option<String>,
    /// Store settings as a JSON object; keys: path
    #[arg(long, value_name = "JSON")]
    pub(crate) config: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlockCommand {
    /// Local block stores (tier 1, a directory)
    #[command(subcommand)]
    Local(LocalCommand),
    /// Remote block stores (tier 2, S3)
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Add a block store of either kind
    Add(BlockAddArgs),
    /// List block stores (both kinds unless --kind is given)
    List {
        /// Only this kind
        #[arg(long, value_enum)]
        kind: Option<BlockKind>,
    },
    /// Remove a block store (refused while a share uses it)
    Remove {
        /// Store name
        name: String,
        /// Kind of the store [default: whichever kind has that name]
        #[arg(long, value_enum)]
        kind: Option<BlockKind>,
    },
    /// Run block garbage collection for the local store of a share and follow it
    #[command(long_about = GC_LONG_ABOUT)]
    Gc(GcArgs),
    /// Show the last persisted GC run of a share's local block store
    GcStatus {
        /// Share name, e.g. /export
        share: String,
    },
}

const GC_LONG_ABOUT: &str = "\
Run block garbage collection on the local block store of SHARE (it covers every share \
using that store): mark the chunks referenced by any share, then delete unreferenced \
chunk files older than the grace period. dfsctl follows the job until it ends, showing \
progress on stderr when it is a terminal, then prints the run summary.

Examples:
  dfsctl store block gc /export --dry-run
  dfsctl store block gc /export --grace 30m
  dfsctl store block gc /export -o json > gc-run.json
  dfsctl store block gc-status /export";

#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Add a local block store
    #[command(
        long_about = "Add a local block store (a directory of chunk files).\n\n\
        Examples:\n  dfsctl store block local add --name fast --type fs --path /srv/dfs/blocks\n  \
        dfsctl store block local add --name fast --type fs --config '{\"path\":\"/srv/dfs/blocks\"}'"
    )]
    Add(LocalAddArgs),
    /// List local block stores
    List,
    /// Remove a local block store
    Remove {
        /// Store name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// Add a remote (S3) block store
    #[command(long_about = "Add a remote block store (S3 or S3-compatible).\n\n\
        The secret key is given one way: --secret-access-key-file FILE (recommended), \
        DFSCTL_S3_SECRET_ACCESS_KEY, --secret-access-key or `secret_access_key` in \
        --config (both visible to every user in `ps`). Neither: the server takes the key \
        from its own configuration or environment (AWS_SECRET_ACCESS_KEY).\n\n\
        Examples:\n  dfsctl store block remote add --name archive --type s3 \\\n    \
        --config '{\"region\":\"us-east-1\",\"bucket\":\"b\",\"endpoint\":\"http://127.0.0.1:8333\",\"prefix\":\"dfs\",\"force_path_style\":true}'\n  \
        dfsctl store block remote add --name archive --bucket b --region eu-west-1 --prefix dfs \\\n    \
        --access-key-id AKIA... --secret-access-key-file /etc/dittofs/s3-secret")]
    Add(Box<RemoteAddArgs>),
    /// List remote block stores
    List,
    /// Remove a remote block store
    Remove {
        /// Store name
        name: String,
    },
    /// Show the remote tiers (pending uploads, uploads, dedup, cold reads) and the local
    /// tiers (size, cap, eviction)
    #[command(long_about = "Show the remote tiers and the local tiers.\n\n\
        For each remote block store: chunks waiting for upload, chunks and bytes uploaded, \
        dedup hits (chunks the remote already had, chunks known to be there, whole files), \
        upload retries and the last upload error, cold reads. For each local block store: \
        bytes used, the cap, and what the evictor freed. Counters start at zero when dfs \
        starts.\n\n\
        Examples:\n  dfsctl store block remote status\n  \
        dfsctl store block remote status archive --scan -o json")]
    Status {
        /// Only this remote block store [default: all]
        name: Option<String>,
        /// Also list the remote: number and bytes of chunk objects (slow on big buckets)
        #[arg(long)]
        scan: bool,
    },
}

/// Kind of a block store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BlockKind {
    /// Tier 1: a directory on local disk
    Local,
    /// Tier 2: S3 or S3-compatible object storage
    Remote,
}

#[derive(Debug, Args)]
pub(crate) struct BlockCommonArgs {
    /// Store name
    #[arg(long)]
    pub(crate) name: String,
    /// Store settings as a JSON object (local keys: path; remote keys: region, bucket,
    /// endpoint, prefix, force_path_style, access_key_id, secret_access_key). Visible in
    /// `ps`: give the secret key with --secret-access-key-file instead
    #[arg(long, value_name = "JSON")]
    pub(crate) config: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LocalFlags {
    /// Directory of the store [default: <data_dir>/blocks/<name>]
    #[arg(long, value_name = "DIR")]
    pub(crate) path: Option<String>,
    /// Soft cap of the local tier (chunks + journal), e.g. 50GiB; above it, chunks already
    /// on the remote are evicted (when all shares on the store use one remote) [default: 0 = none]
    #[arg(long, value_name = "SIZE", value_parser = crate::parse::parse_size)]
    pub(crate) max_size: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct S3Flags {
    /// S3 bucket
    #[arg(long)]
    pub(crate) bucket: Option<String>,
    /// S3 region, e.g. us-east-1
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Endpoint of an S3-compatible server, e.g. http://127.0.0.1:8333
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// Key prefix inside the bucket
    #[arg(long)]
    pub(crate) prefix: Option<String>,
    /// Use path-style bucket addressing (most S3-compatible servers need it)
    #[arg(long)]
    pub(crate) force_path_style: bool,
    /// Create the bucket if it does not exist
    #[arg(long)]
    pub(crate) create_bucket: bool,
    /// Access key id
    #[arg(long, value_name = "ID")]
    pub(crate) access_key_id: Option<String>,
    /// Secret access key. Visible to every user in `ps`: prefer --secret-access-key-file
    /// or DFSCTL_S3_SECRET_ACCESS_KEY
    #[arg(long, value_name = "KEY")]
    pub(crate) secret_access_key: Option<String>,
    /// Read the secret access key from this file (mode 0600; trailing newline ignored).
    /// The environment variable DFSCTL_S3_SECRET_ACCESS_KEY is the third way; give one
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_access_key_file: Option<PathBuf>,
}

/// The environment variable holding the S3 secret key for `store block remote add`
/// (not `AWS_SECRET_ACCESS_KEY`, which dfsctl never sends on its own).
pub(crate) const S3_SECRET_ENV: &str = "DFSCTL_S3_SECRET_ACCESS_KEY";

#[derive(Debug, Args)]
pub(crate) struct LocalAddArgs {
    #[command(flatten)]
    pub(crate) common: BlockCommonArgs,
    /// Store type: `fs` (a directory of chunk files)
    #[arg(long = "type", value_name = "TYPE", default_value = "fs", value_parser = ["fs"])]
    pub(crate) store_type: String,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteAddArgs {
    #[command(flatten)]
    pub(crate) common: BlockCommonArgs,
    /// Store type: `s3` (S3 or S3-compatible)
    #[arg(long = "type", value_name = "TYPE", default_value = "s3", value_parser = ["s3"])]
    pub(crate) store_type: String,
    #[command(flatten)]
    pub(crate) s3: S3Flags,
}

#[derive(Debug, Args)]
pub(crate) struct BlockAddArgs {
    /// Kind of store to add
    #[arg(long, value_enum)]
    pub(crate) kind: BlockKind,
    #[command(flatten)]
    pub(crate) common: BlockCommonArgs,
    /// Store type: `fs` for local stores, `s3` for remote ones [default: by kind]
    #[arg(long = "type", value_name = "TYPE", value_parser = ["fs", "s3"])]
    pub(crate) store_type: Option<String>,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
    #[command(flatten)]
    pub(crate) s3: S3Flags,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Share whose local block store is collected, e.g. /export
    pub(crate) share: String,
    /// Report what would be deleted without deleting anything
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Keep unreferenced chunks younger than this (1h, 30m, 3600s) [default: the
    /// server's, 1h]. `0` = no grace period; only safe when nothing is writing to the store
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_secs)]
    pub(crate) grace: Option<u64>,
}

// ----------------------------------------------------------------- blockstore

#[derive(Debug, Subcommand)]
pub(crate) enum BlockstoreCommand {
    /// Audit a share's chunks: refcounts against its files (INV-02), and that every
    /// referenced chunk exists on a tier
    #[command(
        long_about = "Audit the chunk refcounts of SHARE against the references \
        held by its files (invariant INV-02) and check that every chunk its files reference \
        is held by the local tier or the share's remote tier (looked up and its length \
        compared; with --verify read whole and hashed), following the job until it ends, \
        or show the last persisted audit with --last. Missing chunks are listed with the \
        files that reference them.\n\n\
        Exits with code 8 when drift is found (delta != 0, dangling entries or missing \
        chunks), so cron jobs and alerting can rely on the exit status.\n\n\
        Examples:\n  dfsctl blockstore audit-refcounts /export\n  \
        dfsctl blockstore audit-refcounts /export --verify\n  \
        dfsctl blockstore audit-refcounts /export --last -o json"
    )]
    AuditRefcounts {
        /// Share name, e.g. /export
        share: String,
        /// Show the last persisted audit instead of running one
        #[arg(long, conflicts_with = "verify")]
        last: bool,
        /// Read every referenced chunk whole and check its hash (reads all the share's
        /// data, from the remote tier for evicted chunks)
        #[arg(long)]
        verify: bool,
    },
}

// ----------------------------------------------------------------- share

/// Root squashing mode of a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum Squash {
    /// Every uid/gid is passed through, root included
    None,
    /// Root (uid 0) is mapped to the anonymous uid/gid
    RootToAnonymous,
    /// Every user is mapped to the anonymous uid/gid
    AllToAnonymous,
}

impl Squash {
    /// The API's spelling.
    pub(crate) fn as_api(self) -> &'static str {
        match self {
            Squash::None => "none",
            Squash::RootToAnonymous => "root_to_anonymous",
            Squash::AllToAnonymous => "all_to_anonymous",
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ShareCommand {
    /// Create a share
    #[command(long_about = SHARE_CREATE_LONG_ABOUT)]
    Create(ShareCreateArgs),
    /// Change settings of a share (only the given flags change)
    #[command(long_about = SHARE_EDIT_LONG_ABOUT)]
    Edit(ShareEditArgs),
    /// List shares
    List,
    /// Show one share
    Show {
        /// Share name, e.g. /export
        name: String,
    },
    /// Remove a share (its data stays in its stores)
    Remove {
        /// Share name, e.g. /export
        name: String,
    },
    /// Who may read or change a share: grants to users and groups, the default level
    #[command(subcommand, long_about = PERMISSION_LONG_ABOUT)]
    Permission(PermissionCommand),
}

const SHARE_CREATE_LONG_ABOUT: &str = "\
Create a share (an export) backed by a metadata store and a local block store, \
optionally tiered to a remote block store.

Defaults when a flag is absent: --squash root_to_anonymous, --anon-uid 65534, \
--anon-gid 65534, --allowed-clients '*', any source port (no --secure), --root-mode \
0777, chunking decided by the server (1M/4M/16M), recycle bin disabled.

Examples:
  dfsctl share create --name /docs --metadata default --local default
  dfsctl share create --name /media --metadata default --local fast --remote archive \\
      --allowed-clients 10.0.0.0/8,192.168.1.10 --root-mode 0755 --chunking 1M/4M/16M
  dfsctl share create --name /home --metadata default --local default --squash none --secure \\
      --enable-trash --trash-retention-days 30 --trash-max-size 10G \\
      --trash-exclude '*.tmp' --trash-exclude '~$*'";

const SHARE_EDIT_LONG_ABOUT: &str = "\
Change settings of a share; only the given flags change. Giving no change is a usage \
error.

`--enable-trash false` permanently deletes everything in the share's recycle bin, so it \
also needs --force.

Examples:
  dfsctl share edit /docs --read-only true
  dfsctl share edit /docs --enable-trash true --trash-retention-days 14
  dfsctl share edit /docs --allowed-clients 10.0.0.0/8 --squash all_to_anonymous
  dfsctl share edit /docs --secure true        # privileged source ports (< 1024) only
  dfsctl share edit /docs --remote archive
  dfsctl share edit /docs --remote ''          # detach the remote tier
  dfsctl share edit /docs --enable-trash false --force";

#[derive(Debug, Args)]
pub(crate) struct ShareCreateArgs {
    /// Export path, e.g. /docs
    #[arg(long)]
    pub(crate) name: String,
    /// Metadata store holding the share's tree
    #[arg(long, value_name = "STORE")]
    pub(crate) metadata: String,
    /// Local block store holding the share's chunks
    #[arg(long, value_name = "STORE")]
    pub(crate) local: String,
    /// Remote block store (tier 2) [default: none, local tier only]
    #[arg(long, value_name = "STORE")]
    pub(crate) remote: Option<String>,
    /// When COMMIT/fsync return: `local` once data is durable on the local tier (uploads
    /// follow), `remote` once it is also confirmed on the remote (needs --remote)
    #[arg(long, value_name = "WHERE", default_value = SHARE_DEFAULTS.durability, value_parser = ["local", "remote"])]
    pub(crate) durability: String,
    /// Export read-only
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Identity squashing
    #[arg(long, value_enum, default_value_t = Squash::RootToAnonymous)]
    pub(crate) squash: Squash,
    /// Uid that squashed users are mapped to
    #[arg(long, value_name = "UID", default_value_t = SHARE_DEFAULTS.anon_id)]
    pub(crate) anon_uid: u32,
    /// Gid that squashed users are mapped to
    #[arg(long, value_name = "GID", default_value_t = SHARE_DEFAULTS.anon_id)]
    pub(crate) anon_gid: u32,
    /// Clients allowed to mount: `*`, an IP or a CIDR; repeatable and comma-separated
    #[arg(
        long,
        value_name = "CLIENT",
        value_delimiter = ',',
        default_values_t = SHARE_DEFAULTS.allowed_clients()
    )]
    pub(crate) allowed_clients: Vec<String>,
    /// Serve only clients on privileged source ports (< 1024), as exports(5) `secure`;
    /// recommended with --squash none
    #[arg(long)]
    pub(crate) secure: bool,
    // The default is SHARE_DEFAULTS.root_mode written in octal for --help (a test in
    // cmd/share.rs checks that they agree).
    /// Mode of the share root, in octal
    #[arg(long, value_name = "MODE", value_parser = parse_octal_mode, default_value = "0777")]
    pub(crate) root_mode: u32,
    /// FastCDC chunk sizes MIN/AVG/MAX with K/M/G suffixes, e.g. 1M/4M/16M
    /// [default: server's, 1M/4M/16M]
    #[arg(long, value_name = "MIN/AVG/MAX", value_parser = parse_chunking)]
    pub(crate) chunking: Option<Chunking>,
    /// Enable the recycle bin: deleted files go to `#recycle/` in the share
    #[arg(long)]
    pub(crate) enable_trash: bool,
    /// Purge recycled items older than this many days [default: 0 = keep forever]
    #[arg(long, value_name = "DAYS", requires = "enable_trash")]
    pub(crate) trash_retention_days: Option<u32>,
    /// Cap the recycle bin at this size (10G, 512M or bytes), oldest evicted first
    /// [default: 0 = unbounded]
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "enable_trash")]
    pub(crate) trash_max_size: Option<u64>,
    /// Deletions matching this glob (name or share-relative path) bypass the bin; repeatable
    #[arg(long, value_name = "GLOB", requires = "enable_trash")]
    pub(crate) trash_exclude: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShareEditArgs {
    /// Share name, e.g. /docs
    pub(crate) name: String,
    /// Export read-only or read-write
    #[arg(long, value_name = "true|false")]
    pub(crate) read_only: Option<bool>,
    /// Enable or disable the recycle bin (false empties it permanently; needs --force)
    #[arg(long, value_name = "true|false")]
    pub(crate) enable_trash: Option<bool>,
    /// Purge recycled items older than this many days (0 = keep forever)
    #[arg(long, value_name = "DAYS")]
    pub(crate) trash_retention_days: Option<u32>,
    /// Cap the recycle bin at this size (10G, 512M or bytes; 0 = unbounded)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) trash_max_size: Option<u64>,
    /// Replace the recycle bin's exclude globs with these; repeatable
    #[arg(long, value_name = "GLOB", conflicts_with = "clear_trash_exclude")]
    pub(crate) trash_exclude: Vec<String>,
    /// Remove all exclude globs of the recycle bin
    #[arg(long)]
    pub(crate) clear_trash_exclude: bool,
    /// Identity squashing
    #[arg(long, value_enum)]
    pub(crate) squash: Option<Squash>,
    /// Uid that squashed users are mapped to
    #[arg(long, value_name = "UID")]
    pub(crate) anon_uid: Option<u32>,
    /// Gid that squashed users are mapped to
    #[arg(long, value_name = "GID")]
    pub(crate) anon_gid: Option<u32>,
    /// Replace the allowed clients with these (`*`, IP, CIDR); repeatable and comma-separated
    #[arg(long, value_name = "CLIENT", value_delimiter = ',')]
    pub(crate) allowed_clients: Vec<String>,
    /// Require privileged source ports (< 1024) or not
    #[arg(long, value_name = "true|false")]
    pub(crate) secure: Option<bool>,
    /// Attach this remote block store; an empty string detaches the remote tier
    #[arg(long, value_name = "STORE")]
    pub(crate) remote: Option<String>,
    /// FastCDC chunk sizes MIN/AVG/MAX for new writes, e.g. 1M/4M/16M
    #[arg(long, value_name = "MIN/AVG/MAX", value_parser = parse_chunking)]
    pub(crate) chunking: Option<Chunking>,
    /// Confirm a destructive change (--enable-trash false)
    #[arg(long)]
    pub(crate) force: bool,
}

// ----------------------------------------------------------------- trash

#[derive(Debug, Subcommand)]
pub(crate) enum TrashCommand {
    /// List the items in a share's recycle bin
    List {
        /// Share name, e.g. /docs
        share: String,
        /// At most this many items [default: the server's, 10000]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Restore an item to where it was deleted from (or --to elsewhere)
    Restore {
        /// Share name, e.g. /docs
        share: String,
        /// Item path as listed, e.g. '#recycle/report.txt' (the prefix may be omitted)
        path: String,
        /// Restore to this share-relative path instead of the original one
        #[arg(long, value_name = "DEST")]
        to: Option<String>,
        /// Replace an existing file at the destination (it is itself recycled)
        #[arg(long)]
        overwrite: bool,
    },
    /// Show a share's recycle bin settings and usage
    Status {
        /// Share name, e.g. /docs
        share: String,
    },
    /// Permanently delete everything in a share's recycle bin (needs --force)
    Empty {
        /// Share name, e.g. /docs
        share: String,
        /// Confirm: emptying the recycle bin is permanent
        #[arg(long)]
        force: bool,
    },
}

// ----------------------------------------------------------------- config

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the applied desired state (YAML unless -o json)
    #[command(
        long_about = "Print the applied desired state: metadata stores, block \
        stores, shares and adapters. The document is the format `config apply` reads \
        (YAML unless -o json), so `dfsctl config get > state.yaml`, editing, and \
        `dfsctl config apply -f state.yaml` is the declarative workflow."
    )]
    Get,
    /// Replace the desired state with the one in a file, and print the changes
    #[command(long_about = CONFIG_APPLY_LONG_ABOUT)]
    Apply {
        /// YAML or JSON desired-state file (as printed by `config get`); `-` = stdin
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        /// Validate and show the changes without applying them
        #[arg(long)]
        dry_run: bool,
    },
}

const CONFIG_APPLY_LONG_ABOUT: &str = "\
Replace the whole desired state with the one in FILE (YAML or JSON, the format printed \
by `config get`) and print the changes. Shares not named in the file are stopped; their \
data stays in their stores. Applying the same state again changes nothing.

Generation: the file's `generation` is used when present and non-zero (the server \
refuses one older than the applied generation with ABORTED, exit 4); when it is absent \
or 0, dfsctl uses the server's current generation + 1. A file saved by `config get` and \
applied unchanged is therefore a no-op.

File format (snake_case keys; omitted share fields take the `share create` defaults):
  generation: 7
  metadata_stores:
    - {name: default, type: sled}
  block_stores:
    - {name: default, kind: local, type: fs, path: /srv/dfs/blocks}
    - name: archive
      kind: remote
      type: s3
      s3: {bucket: b, region: us-east-1, endpoint: '', prefix: dfs, force_path_style: false,
           access_key_id: '', secret_access_key: ''}
  shares:
    - name: /docs
      metadata: default
      local: default
      remote: archive            # optional
      read_only: false
      squash: root_to_anonymous
      anon_uid: 65534
      anon_gid: 65534
      allowed_clients: ['*']
      root_mode: '0755'           # octal string, or a number (493)
      chunking: {min: 1M, avg: 4M, max: 16M}   # optional; bytes or K/M/G sizes
      trash: {enabled: true, retention_days: 30, max_size_bytes: 10G, exclude: ['*.tmp']}
  adapters:                       # optional; absent = keep the running adapters
    nfs: {enabled: true, bind: 0.0.0.0, port: 12049, portmapper_enabled: false,
          portmapper_port: 10111}

Examples:
  dfsctl config get > state.yaml
  dfsctl config apply -f state.yaml --dry-run
  dfsctl config apply -f state.yaml";

// ----------------------------------------------------------------- context

#[derive(Debug, Subcommand)]
pub(crate) enum ContextCommand {
    /// Create or update a context from --server and --token / --token-file
    #[command(long_about = "Create or update a context. The values come from the \
        --server, --token and --token-file flags given on this command line (environment \
        variables are not saved). The first context saved becomes the current one.\n\n\
        Examples:\n  dfsctl context set local --server 127.0.0.1:9000 --token-file ~/.local/share/dittofs/control-token\n  \
        dfsctl context set prod --server http://10.0.0.5:9000 --token-file /etc/dittofs/prod-token")]
    Set {
        /// Context name
        name: String,
    },
    /// Make a context the current one
    Use {
        /// Context name
        name: String,
    },
    /// List contexts (tokens are not shown)
    List,
    /// Show the effective connection settings and where each comes from
    Show,
    /// Remove a context
    Remove {
        /// Context name
        name: String,
    },
}

// ----------------------------------------------------------------- users, groups, grants

const USER_LONG_ABOUT: &str = "\
Users of the server's identity store. NFS (AUTH_SYS) callers are matched to a user by \
uid after squashing; the user's share grants and groups decide what it may do on each \
share (see `dfsctl share permission --help`). A disabled user is refused on every share.

Passwords are sent to the server once and kept there only as hashes (an NT hash for \
SMB/NTLM and an argon2id hash); no command ever prints one. Give a password with \
--password-stdin (first line of standard input), --password-file FILE, or at the \
interactive prompt (asked twice, not echoed) when standard input is a terminal. \
--password VALUE also works but is visible to every user of the host in `ps`.

Examples:
  dfsctl user create alice --uid 1001 --groups staff          # prompts for the password
  printf '%s\\n' \"$PW\" | dfsctl user create bob --uid 1002 --password-stdin
  dfsctl user list -o yaml
  dfsctl user edit bob --enabled false
  dfsctl user password alice --password-file /run/secrets/alice
  dfsctl user remove bob";

/// How a password is given (at most one form).
#[derive(Debug, Clone, Args)]
pub(crate) struct PasswordArgs {
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Read the password from this file (trailing newline ignored)
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// The password itself. Visible to every user in `ps`: prefer --password-stdin or
    /// --password-file
    #[arg(long, value_name = "PASSWORD")]
    pub(crate) password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user (needs a password)
    Create(UserCreateArgs),
    /// List users (never shows passwords or hashes)
    List,
    /// Show one user
    Get {
        /// User name
        name: String,
    },
    /// Change a user's ids, groups or enabled flag (only the given flags change)
    #[command(long_about = "Change a user; only the given flags change.\n\n\
        Examples:\n  dfsctl user edit alice --uid 1005 --gid 100\n  \
        dfsctl user edit alice --groups staff,backup   # replaces the supplementary groups\n  \
        dfsctl user edit alice --groups ''             # no supplementary groups\n  \
        dfsctl user edit alice --enabled false         # refused on every share")]
    Edit(UserEditArgs),
    /// Remove a user and its share grants
    Remove {
        /// User name
        name: String,
    },
    /// Set a user's password
    Password {
        /// User name
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct UserCreateArgs {
    /// User name: 1-32 characters of A-Z a-z 0-9 _ . -, not starting with - or .
    pub(crate) name: String,
    /// User id (what NFS clients send) [default: the lowest free uid from 1000]
    #[arg(long)]
    pub(crate) uid: Option<u32>,
    /// Primary group id [default: the uid]
    #[arg(long)]
    pub(crate) gid: Option<u32>,
    /// Supplementary groups (names of existing groups), comma-separated
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) groups: Vec<String>,
    /// Create the user disabled (refused until `user edit --enabled true`)
    #[arg(long)]
    pub(crate) disabled: bool,
    #[command(flatten)]
    pub(crate) password: PasswordArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UserEditArgs {
    /// User name
    pub(crate) name: String,
    #[arg(long)]
    pub(crate) uid: Option<u32>,
    #[arg(long)]
    pub(crate) gid: Option<u32>,
    /// Replace the supplementary groups (comma-separated names; '' for none)
    #[arg(long, value_name = "NAMES")]
    pub(crate) groups: Option<String>,
    /// Enable or disable the user
    #[arg(long, value_name = "BOOL")]
    pub(crate) enabled: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group
    #[command(
        long_about = "Create a group. Grants to a group apply to the users that \
        have it as a supplementary group, and to those whose primary gid is its gid.\n\n\
        Examples:\n  dfsctl group create staff --gid 100\n  \
        dfsctl group add-member staff alice bob"
    )]
    Create {
        /// Group name (same rules as user names)
        name: String,
        /// Group id [default: the lowest free gid from 1000]
        #[arg(long)]
        gid: Option<u32>,
    },
    /// List groups and their members
    List,
    /// Remove a group and its share grants (refused while it has members)
    Remove {
        /// Group name
        name: String,
    },
    /// Add users to a group (as a supplementary group)
    AddMember {
        /// Group name
        group: String,
        /// User names
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove users from a group
    RemoveMember {
        /// Group name
        group: String,
        /// User names
        #[arg(required = true)]
        users: Vec<String>,
    },
}

const PERMISSION_LONG_ABOUT: &str = "\
Share permissions: what users and groups may do on a share, on top of the POSIX modes \
of its files (never instead of them).

Levels: none (nothing: names and contents refused), read (every change refused), \
read-write, admin (as read-write for file operations). A caller's level is its own \
grant, else the highest grant of its groups, else the share's default level. A share \
that was never given a default uses read-write, so shares without grants behave as \
before. NFS callers whose uid (after squashing) is no user get the default level.

Examples:
  dfsctl share permission grant /export --user alice --level read-write
  dfsctl share permission grant /export --group staff --level read
  dfsctl share permission default /export --level none
  dfsctl share permission list /export -o json
  dfsctl share permission revoke /export --user alice";

/// An access level of a share permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Level {
    /// No access to names and contents
    None,
    /// Read only
    Read,
    /// Read and change
    ReadWrite,
    /// As read-write for file operations
    Admin,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "read",
            Level::ReadWrite => "read-write",
            Level::Admin => "admin",
        }
    }
}

/// Exactly one of a user and a group.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct Grantee {
    /// A user name
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// A group name
    #[arg(long)]
    pub(crate) group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PermissionCommand {
    /// Grant a level to a user or a group (replaces its previous grant)
    Grant {
        /// Share name, e.g. /export
        share: String,
        #[command(flatten)]
        who: Grantee,
        /// The level granted
        #[arg(long, value_enum)]
        level: Level,
    },
    /// Remove a user's or group's grant (it falls back to groups / the default)
    Revoke {
        /// Share name, e.g. /export
        share: String,
        #[command(flatten)]
        who: Grantee,
    },
    /// List a share's grants and default level
    List {
        /// Share name, e.g. /export
        share: String,
    },
    /// Set the level of callers without a grant of their own or of a group
    Default {
        /// Share name, e.g. /export
        share: String,
        /// The level of callers without a grant
        #[arg(long, value_enum)]
        level: Level,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn share_create_defaults() {
        let cli = Cli::try_parse_from([
            "dfsctl",
            "share",
            "create",
            "--name",
            "/x",
            "--metadata",
            "m",
            "--local",
            "l",
        ])
        .unwrap();
        let Command::Share(ShareCommand::Create(a)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(a.squash, Squash::RootToAnonymous);
        assert_eq!((a.anon_uid, a.anon_gid), (65534, 65534));
        assert_eq!(a.allowed_clients, vec!["*".to_string()]);
        assert_eq!(a.root_mode, 0o777);
        assert!(a.chunking.is_none());
        assert!(!a.enable_trash);
    }

    #[test]
    fn share_create_lists_and_values() {
        let cli = Cli::try_parse_from([
            "dfsctl",
            "share",
            "create",
            "--name",
            "/x",
            "--metadata",
            "m",
            "--local",
            "l",
            "--allowed-clients",
            "10.0.0.0/8,192.168.1.1",
            "--allowed-clients",
            "127.0.0.1",
            "--root-mode",
            "0755",
            "--chunking",
            "1M/4M/16M",
            "--squash",
            "all_to_anonymous",
            "--enable-trash",
            "--trash-max-size",
            "10G",
            "--trash-exclude",
            "*.tmp",
            "--trash-exclude",
            "~*",
        ])
        .unwrap();
        let Command::Share(ShareCommand::Create(a)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(
            a.allowed_clients,
            ["10.0.0.0/8", "192.168.1.1", "127.0.0.1"]
        );
        assert_eq!(a.root_mode, 0o755);
        assert_eq!(a.chunking.map(|c| c.avg), Some(4 << 20));
        assert_eq!(a.squash, Squash::AllToAnonymous);
        assert_eq!(a.trash_max_size, Some(10 << 30));
        assert_eq!(a.trash_exclude, ["*.tmp", "~*"]);
    }

    #[test]
    fn trash_options_need_enable_trash() {
        let r = Cli::try_parse_from([
            "dfsctl",
            "share",
            "create",
            "--name",
            "/x",
            "--metadata",
            "m",
            "--local",
            "l",
            "--trash-retention-days",
            "3",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = Cli::try_parse_from([
            "dfsctl",
            "share",
            "list",
            "-o",
            "json",
            "--server",
            "h:1",
            "--timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        assert_eq!(cli.global.server.as_deref(), Some("h:1"));
        assert_eq!(cli.global.timeout, 5);
    }

    #[test]
    fn edit_takes_explicit_booleans_and_empty_remote() {
        let cli = Cli::try_parse_from([
            "dfsctl",
            "share",
            "edit",
            "/x",
            "--read-only",
            "true",
            "--enable-trash",
            "false",
            "--remote",
            "",
        ])
        .unwrap();
        let Command::Share(ShareCommand::Edit(a)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(a.read_only, Some(true));
        assert_eq!(a.enable_trash, Some(false));
        assert_eq!(a.remote.as_deref(), Some(""));
        assert!(
            Cli::try_parse_from(["dfsctl", "share", "edit", "/x", "--read-only", "maybe"]).is_err()
        );
    }
}
