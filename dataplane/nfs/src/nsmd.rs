//! The server's status monitor (NSM program 100024 v1, XNFS chapter 11): the persisted
//! state number, the list of monitored hosts and the SM_NOTIFY sent to them after a
//! restart. The NSM procedures clients call are served by `statd` on this store.
//!
//! Persistence (`<state_dir>`, normally `<data_dir>/nsm`):
//! - `state`: the state number in decimal. Every start adds 2 (1 on the first start, or
//!   to turn an even number odd): the number is odd while the server runs (XNFS: odd =
//!   up), and a client seeing a new number knows the server restarted.
//! - `monitor`: one line per monitored host: `<client ip> <server ip or -> <hex name>`.
//!   Hosts are added when their first lock is granted (the server's lockd monitors its
//!   clients, as Linux lockd does through its statd) and by SM_MON. At start the list is
//!   read, emptied, and each host gets SM_NOTIFY with the new state (through the portmapper
//!   of its address, a few tries); then they are forgotten.
//!
//! Lock state itself is in memory only: after the restart clients reclaim during the
//! grace period (see `nlmd`).

use crate::nsm1::{StatChge, VERSION};
use crate::rpc_client::call_via_portmap;
use crate::xdr::XdrEncode;
use parking_lot::Mutex;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Why the NSM state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum NsmError {
    #[error("cannot create the NSM directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} does not hold a state number: {text:?}")]
    BadState { path: PathBuf, text: String },
}

/// A monitored host: its name, the address it called from and the server address it
/// called (the name it knows the server by, sent back in SM_NOTIFY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitored {
    pub name: Vec<u8>,
    pub client: IpAddr,
    pub server: Option<IpAddr>,
}

/// The persisted NSM state of this server.
#[derive(Debug)]
pub struct NsmStore {
    dir: Option<PathBuf>,
    state: AtomicI32,
    monitored: Mutex<Vec<Monitored>>,
    /// Hosts monitored before this start: to be sent SM_NOTIFY once.
    previous: Mutex<Vec<Monitored>>,
}

impl NsmStore {
    /// No persistence: state 1, nobody to notify (tests, or no data directory).
    pub fn in_memory() -> NsmStore {
        NsmStore {
            dir: None,
            state: AtomicI32::new(1),
            monitored: Mutex::new(Vec::new()),
            previous: Mutex::new(Vec::new()),
        }
    }

    /// Loads `dir`, advances the state number to the next odd one, saves it, and moves
    /// the monitored hosts to the to-notify list (the saved list is emptied).
    pub fn open(dir: &Path) -> Result<NsmStore, NsmError> {
        std::fs::create_dir_all(dir).map_err(|source| NsmError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let old = read_state(&dir.join("state"))?;
        let new = if old % 2 == 1 { old + 2 } else { old + 1 };
        write_file(&dir.join("state"), &format!("{new}\n"))?;
        let previous = read_monitor(&dir.join("monitor"))?;
        write_file(&dir.join("monitor"), "")?;
        Ok(NsmStore {
            dir: Some(dir.to_path_buf()),
            state: AtomicI32::new(new),
            monitored: Mutex::new(Vec::new()),
            previous: Mutex::new(previous),
        })
    }

    /// The current state number (odd).
    pub fn state(&self) -> i32 {
        self.state.load(Ordering::Relaxed)
    }

    /// Hosts monitored now.
    pub fn monitored(&self) -> Vec<Monitored> {
        self.monitored.lock().clone()
    }

    /// Adds a host (no-op when known); saves the list when it changed.
    pub fn monitor(&self, host: Monitored) {
        let mut m = self.monitored.lock();
        if m.iter()
            .any(|h| h.name == host.name && h.client == host.client)
        {
            return;
        }
        m.push(host);
        self.save(&m);
    }

    /// Removes the hosts `pred` selects; saves the list when it changed.
    pub fn unmonitor(&self, pred: impl Fn(&Monitored) -> bool) {
        let mut m = self.monitored.lock();
        let before = m.len();
        m.retain(|h| !pred(h));
        if m.len() != before {
            self.save(&m);
        }
    }

    /// SM_SIMU_CRASH: the next state number, as after a restart.
    pub fn simulate_crash(&self) -> i32 {
        let new = self.state.fetch_add(2, Ordering::Relaxed) + 2;
        if let Some(dir) = &self.dir
            && let Err(e) = write_file(&dir.join("state"), &format!("{new}\n"))
        {
            tracing::warn!(error = %e, "NSM state not saved");
        }
        new
    }

    fn save(&self, hosts: &[Monitored]) {
        let Some(dir) = &self.dir else { return };
        let text: String = hosts.iter().map(monitor_line).collect();
        if let Err(e) = write_file(&dir.join("monitor"), &text) {
            tracing::warn!(error = %e, "NSM monitor list not saved");
        }
    }

    /// Sends SM_NOTIFY to every host monitored before this start (each through the
    /// portmapper at `pmap_port` of its address, up to 3 tries), then forgets them.
    pub async fn notify_previous(&self, pmap_port: u16) {
        let hosts = std::mem::take(&mut *self.previous.lock());
        for h in hosts {
            let msg = StatChge {
                mon_name: h
                    .server
                    .map(|a| a.to_string().into_bytes())
                    .unwrap_or_else(|| b"dittofs".to_vec()),
                state: self.state(),
            };
            notify_one(&h, &msg, pmap_port).await;
        }
    }
}

async fn notify_one(h: &Monitored, msg: &StatChge, pmap_port: u16) {
    let proc_id = (crate::nsm1::PROGRAM, VERSION, 6);
    for attempt in 1..=3u32 {
        match call_via_portmap(h.client, pmap_port, proc_id, &msg.to_xdr()).await {
            Ok(_) => {
                tracing::info!(client = %h.client, state = msg.state, "SM_NOTIFY sent");
                return;
            }
            Err(e) => {
                tracing::info!(client = %h.client, attempt, error = %e, "SM_NOTIFY failed");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
    }
}

fn monitor_line(h: &Monitored) -> String {
    let server = h.server.map_or_else(|| "-".to_string(), |a| a.to_string());
    let name: String = h.name.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} {server} {name}\n", h.client)
}

fn parse_monitor_line(line: &str) -> Option<Monitored> {
    let mut parts = line.split_whitespace();
    let client = parts.next()?.parse().ok()?;
    let server = match parts.next()? {
        "-" => None,
        s => Some(s.parse().ok()?),
    };
    let hex = parts.next().unwrap_or("");
    let name = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Monitored {
        name,
        client,
        server,
    })
}

fn read_state(path: &Path) -> Result<i32, NsmError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(NsmError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0 && *n < i32::MAX - 2)
        .ok_or_else(|| NsmError::BadState {
            path: path.to_path_buf(),
            text: text.chars().take(40).collect(),
        })
}

fn read_monitor(path: &Path) -> Result<Vec<Monitored>, NsmError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t.lines().filter_map(parse_monitor_line).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(NsmError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to `path` through a temporary file, synced and renamed.
fn write_file(path: &Path, text: &str) -> Result<(), NsmError> {
    let tmp = path.with_extension("tmp");
    let err = |source| NsmError::Write {
        path: path.to_path_buf(),
        source,
    };
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_odd_and_grows_across_opens_and_hosts_are_handed_over_once() {
        let tmp = std::env::temp_dir().join(format!("dittofs-nsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let a = NsmStore::open(&tmp).unwrap();
        assert_eq!(a.state(), 1);
        a.monitor(Monitored {
            name: b"client one".to_vec(),
            client: "127.0.0.2".parse().unwrap(),
            server: Some("127.0.0.1".parse().unwrap()),
        });
        drop(a);
        let b = NsmStore::open(&tmp).unwrap();
        assert_eq!(b.state(), 3);
        assert_eq!(b.previous.lock().len(), 1);
        assert_eq!(b.previous.lock()[0].name, b"client one");
        assert!(b.monitored().is_empty());
        drop(b);
        let c = NsmStore::open(&tmp).unwrap();
        assert_eq!(c.state(), 5);
        assert!(c.previous.lock().is_empty());
        std::fs::write(tmp.join("state"), "4").unwrap();
        assert_eq!(NsmStore::open(&tmp).unwrap().state(), 5);
        std::fs::write(tmp.join("state"), "junk").unwrap();
        assert!(matches!(
            NsmStore::open(&tmp),
            Err(NsmError::BadState { .. })
        ));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
