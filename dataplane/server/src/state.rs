//! The desired state (stores, shares, adapters) and its persistence in the data directory.
//!
//! Files under `<data_dir>`:
//!
//! | path | content |
//! |---|---|
//! | `control/state.json` | the applied [`DesiredState`] (generation included), written atomically (temp + fsync + rename + dir fsync) after every successful apply |
//! | `share-ids.json` | share name -> share id, never reused, so handles stay valid across restarts and re-creation |
//! | `control-token` | generated bearer token of the control API (mode 0600) |
//! | `control-endpoint` | the control listener's bound address while `dfs` runs (see `control::auth`) |
//!
//! Once `control/state.json` exists it is the source of stores and shares at start; the
//! config file's `metadata_stores`/`block_stores`/`shares` only seed a fresh data directory.
//!
//! A file that cannot be read, parsed or written is a [`StateError`] naming the file,
//! with the I/O or JSON error as its source.

use crate::config::{BlockStores, Config, MetadataStoreCfg, NfsSection, ShareCfg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file of the data directory that could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not the JSON document expected (never silently replaced).
    #[error("{}: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: corrupt share id map: {source}", path.display())]
    CorruptShareIds {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded as JSON.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    #[error("{}: no parent directory", .0.display())]
    NoParent(PathBuf),
}

/// For `map_err`: an I/O error on `path`.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesiredState {
    pub generation: u64,
    pub metadata_stores: Vec<MetadataStoreCfg>,
    pub block_stores: BlockStores,
    pub shares: Vec<ShareCfg>,
    /// NFS adapter settings applied through the API (take effect at the next start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsSection>,
}

impl DesiredState {
    /// The stores and shares of a configuration file (generation 0: nothing applied yet).
    pub fn from_config(cfg: &Config) -> DesiredState {
        DesiredState {
            generation: 0,
            metadata_stores: cfg.metadata_stores.clone(),
            block_stores: cfg.block_stores.clone(),
            shares: cfg.shares.clone(),
            nfs: None,
        }
    }

    pub fn share(&self, name: &str) -> Option<&ShareCfg> {
        self.shares.iter().find(|s| s.name == name)
    }

    /// Shares using a store of the given kind ("metadata", "local", "remote").
    pub fn users_of(&self, kind: &str, store: &str) -> Vec<String> {
        self.shares
            .iter()
            .filter(|s| match kind {
                "metadata" => s.metadata == store,
                "local" => s.local == store,
                _ => s.remote.as_deref() == Some(store),
            })
            .map(|s| s.name.clone())
            .collect()
    }
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control").join("state.json")
}

/// The persisted state, if any. A corrupt file is an error (never silently replaced).
pub fn load(data_dir: &Path) -> Result<Option<DesiredState>, StateError> {
    load_json(&state_path(data_dir))
}

pub fn save(data_dir: &Path, state: &DesiredState) -> Result<(), StateError> {
    save_json(&state_path(data_dir), state, 0o600)
}

/// Reads a JSON document; `None` when the file does not exist, an error naming the file
/// when it cannot be read or parsed.
pub fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StateError::Corrupt {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes a JSON document atomically (see [`write_atomic`]).
pub fn save_json<T: Serialize>(path: &Path, v: &T, mode: u32) -> Result<(), StateError> {
    let bytes = serde_json::to_vec_pretty(v).map_err(StateError::Encode)?;
    write_atomic(path, &bytes, mode)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| io_err(path)(e);
    let dir = path
        .parent()
        .ok_or_else(|| StateError::NoParent(path.to_owned()))?;
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// Persistent name -> id map so a share keeps its id (and its handles) across restarts.
/// Assigns ids to new names (never reusing one) and persists them before returning.
pub fn share_ids(data_dir: &Path, names: &[String]) -> Result<BTreeMap<String, u32>, StateError> {
    let path = data_dir.join("share-ids.json");
    let mut map: BTreeMap<String, u32> = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| StateError::CorruptShareIds {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let mut changed = false;
    for n in names {
        if !map.contains_key(n) {
            let next = map.values().max().copied().unwrap_or(0) + 1;
            map.insert(n.clone(), next);
            changed = true;
        }
    }
    if changed {
        let bytes = serde_json::to_vec_pretty(&map).map_err(StateError::Encode)?;
        write_atomic(&path, &bytes, 0o644)?;
    }
    Ok(map)
}

/// This server's stable identity (`<data_dir>/server-id`, 128 random bits in hex), made
/// at first start: it claims the local block stores the server opens (a second server,
/// with another data directory, is refused by them).
pub fn server_id(data_dir: &Path) -> Result<String, StateError> {
    let path = data_dir.join("server-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let id = format!("{:032x}", rand::random::<u128>());
    write_atomic(&path, id.as_bytes(), 0o644)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_ids_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut s = DesiredState::from_config(&Config::default());
        s.generation = 7;
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(s));
        let a = share_ids(dir.path(), &["/a".into(), "/b".into()]).unwrap();
        let b = share_ids(dir.path(), &["/c".into(), "/a".into()]).unwrap();
        assert_eq!(a["/a"], b["/a"]);
        assert_eq!(b["/c"], 3);
        std::fs::write(state_path(dir.path()), b"{garbage").unwrap();
        let corrupt = load(dir.path()).unwrap_err();
        assert!(matches!(corrupt, StateError::Corrupt { .. }), "{corrupt:?}");
        assert!(corrupt.to_string().contains("state.json"), "{corrupt}");
        let id = server_id(dir.path()).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(server_id(dir.path()).unwrap(), id, "stable");
        assert_ne!(server_id(tempfile::tempdir().unwrap().path()).unwrap(), id);
    }
}
