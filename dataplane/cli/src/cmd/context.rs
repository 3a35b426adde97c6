//! `dfsctl context set|use|list|show|remove`: saved connection contexts (the file and
//! the precedence rules are in `crate::context`).

use super::Ctx;
use crate::cli::ContextCommand;
use crate::context::{Context, Source};
use crate::error::CliError;
use crate::output::{Table, emit, kv};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct ContextView {
    name: String,
    current: bool,
    server: Option<String>,
    /// "token", "token_file" or "none" (tokens are never printed).
    auth: String,
    token_file: Option<String>,
}

#[derive(Debug, Serialize)]
struct EffectiveView {
    config_file: Option<String>,
    context: Option<String>,
    server: String,
    server_source: Source,
    token_source: Source,
    token_file: Option<String>,
}

fn auth_of(c: &Context) -> &'static str {
    if c.token.is_some() {
        "token"
    } else if c.token_file.is_some() {
        "token_file"
    } else {
        "none"
    }
}

pub(super) fn run(ctx: &mut Ctx, cmd: ContextCommand) -> Result<(), CliError> {
    match cmd {
        ContextCommand::Set { name } => set(ctx, name),
        ContextCommand::Use { name } => {
            let path = ctx.config_path()?;
            let mut file = ctx.load_config()?;
            if !file.contexts.contains_key(&name) {
                return Err(not_found(&name));
            }
            file.current_context = Some(name.clone());
            file.save(&path)?;
            emit(
                ctx.format(),
                &serde_json::json!({ "current_context": name }),
                |_| format!("switched to context {name:?}\n"),
            )
        }
        ContextCommand::List => {
            let file = ctx.load_config()?;
            let views: Vec<ContextView> = file
                .contexts
                .iter()
                .map(|(n, c)| ContextView {
                    name: n.clone(),
                    current: file.current_context.as_deref() == Some(n.as_str()),
                    server: c.server.clone(),
                    auth: auth_of(c).into(),
                    token_file: c.token_file.as_ref().map(|p| p.display().to_string()),
                })
                .collect();
            emit(ctx.format(), &views, |v| {
                if v.is_empty() {
                    return "no contexts (create one with `dfsctl context set NAME --server URL`)\n"
                        .into();
                }
                let mut t = Table::new(&["CURRENT", "NAME", "SERVER", "AUTH"]);
                for c in v {
                    let auth = match &c.token_file {
                        Some(p) => format!("token_file {p}"),
                        None => c.auth.clone(),
                    };
                    t.row(vec![
                        if c.current { "*".into() } else { String::new() },
                        c.name.clone(),
                        c.server.clone().unwrap_or_else(|| "-".into()),
                        auth,
                    ]);
                }
                t.render()
            })
        }
        ContextCommand::Show => {
            let r = ctx.resolve()?;
            let view = EffectiveView {
                config_file: crate::context::config_path().map(|p| p.display().to_string()),
                context: r.context.clone(),
                server: r.server.clone(),
                server_source: r.server_source.clone(),
                token_source: r.token_source.clone(),
                token_file: r.token_path.as_ref().map(|p| p.display().to_string()),
            };
            emit(ctx.format(), &view, |v| {
                let source = |s: &Source| {
                    match s {
                        Source::Flag => "flag or environment",
                        Source::Context => "context",
                        Source::Default => "default",
                        Source::ServerTokenFile => "dfs token file",
                        Source::None => "none",
                    }
                    .to_string()
                };
                let token = match (&v.token_source, &v.token_file) {
                    (Source::None, _) => "none".to_string(),
                    (s, Some(p)) => format!("from {} ({p})", source(s)),
                    (s, None) => format!("from {}", source(s)),
                };
                kv(&[
                    (
                        "config_file",
                        v.config_file.clone().unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "context",
                        v.context.clone().unwrap_or_else(|| "(none)".into()),
                    ),
                    (
                        "server",
                        format!("{} ({})", v.server, source(&v.server_source)),
                    ),
                    ("token", token),
                ])
            })
        }
        ContextCommand::Remove { name } => {
            let path = ctx.config_path()?;
            let mut file = ctx.load_config()?;
            if file.contexts.remove(&name).is_none() {
                return Err(not_found(&name));
            }
            if file.current_context.as_deref() == Some(name.as_str()) {
                file.current_context = None;
            }
            file.save(&path)?;
            emit(
                ctx.format(),
                &serde_json::json!({ "removed": name }),
                |_| format!("context {name:?} removed\n"),
            )
        }
    }
}

fn not_found(name: &str) -> CliError {
    CliError::NotFound(format!(
        "context {name:?} does not exist (see `dfsctl context list`)"
    ))
}

/// Creates or updates a context from the connection flags typed on this command line.
fn set(ctx: &mut Ctx, name: String) -> Result<(), CliError> {
    if name.trim().is_empty() {
        return Err(CliError::Usage("the context name is empty".into()));
    }
    let path = ctx.config_path()?;
    let mut file = ctx.load_config()?;
    let typed = ctx.sources;
    let server = if typed.server {
        let s = ctx.global.server.clone().unwrap_or_default();
        // Validate now rather than at the next use.
        Some(crate::context::normalize_server(&s)?)
    } else {
        None
    };
    let token = typed.token.then(|| ctx.global.token.clone()).flatten();
    let token_file = typed
        .token_file
        .then(|| ctx.global.token_file.clone())
        .flatten()
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    if token.is_some() && token_file.is_some() {
        return Err(CliError::Usage(
            "give either --token or --token-file, not both".into(),
        ));
    }
    let existed = file.contexts.contains_key(&name);
    if !existed && server.is_none() {
        return Err(CliError::Usage(format!(
            "new context {name:?} needs --server URL"
        )));
    }
    if existed && server.is_none() && token.is_none() && token_file.is_none() {
        return Err(CliError::Usage(
            "nothing to change: give --server, --token or --token-file".into(),
        ));
    }
    let entry = file.contexts.entry(name.clone()).or_default();
    if let Some(s) = server {
        entry.server = Some(s);
    }
    if let Some(t) = token {
        entry.token = Some(t);
        entry.token_file = None;
    }
    if let Some(p) = token_file {
        entry.token_file = Some(p);
        entry.token = None;
    }
    let became_current = file.current_context.is_none();
    if became_current {
        file.current_context = Some(name.clone());
    }
    let view = ContextView {
        current: file.current_context.as_deref() == Some(name.as_str()),
        server: entry.server.clone(),
        auth: auth_of(entry).into(),
        token_file: entry.token_file.as_ref().map(|p| p.display().to_string()),
        name: name.clone(),
    };
    file.save(&path)?;
    emit(ctx.format(), &view, |v| {
        let verb = if existed { "updated" } else { "created" };
        let now = if became_current {
            " (now the current context)"
        } else {
            ""
        };
        format!("context {:?} {verb}{now}\n", v.name)
    })
}
