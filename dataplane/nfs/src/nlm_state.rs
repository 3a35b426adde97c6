//! The NLM state of the server (what the NLM service `nlmd` and the status monitor
//! service `statd` work on): one lock manager per share, the queued blocking requests,
//! the SHARE reservations, the grace period after start and the status monitor's store.
//! Every share's lock manager sends its lease recalls to one breaker (NFSv4
//! delegations), so a conflict from any protocol recalls them, and reports the files
//! whose byte-range locks were released to one [`FileUnlocked`] (NFSv4 CB_NOTIFY_LOCK,
//! `proc4::lockwait`), whichever protocol released them.
//! Lock state is in memory only (see `nlmd` for the grace period and reclaims).

use crate::config::NlmConfig;
use crate::nsmd::NsmStore;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::{
    ByteRange, ClientId, Hooks, LeaseBreaker, LockManager, OpenId, Owner, Protocol, UnlockListener,
    WaiterId,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Told of the files of a share whose byte-range locks were released (called outside
/// the lock manager's mutex; must not block).
pub(crate) trait FileUnlocked: Send + Sync {
    fn unlocked(&self, share: ShareId, ino: Ino);
}

/// A share's lock manager's [`UnlockListener`]: names the share to a [`FileUnlocked`].
struct ShareUnlocks {
    share: ShareId,
    to: Arc<dyn FileUnlocked>,
}

impl UnlockListener for ShareUnlocks {
    fn unlocked(&self, ino: Ino) {
        self.to.unlocked(self.share, ino);
    }
}

/// A queued blocking request, as LOCK retransmissions and CANCEL name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub(crate) share: ShareId,
    pub(crate) ino: Ino,
    pub(crate) owner: Owner,
    pub(crate) range: ByteRange,
    pub(crate) exclusive: bool,
}

/// The NLM state of the server: lock managers per share, queued requests, SHARE
/// reservations, the grace period and the status monitor.
pub(crate) struct Nlm {
    cfg: NlmConfig,
    grace_until: Instant,
    pub(crate) managers: Mutex<HashMap<ShareId, LockManager>>,
    pub(crate) blocked: Mutex<HashMap<BlockKey, WaiterId>>,
    pub(crate) shares: Mutex<HashMap<(ShareId, Ino, Owner), OpenId>>,
    pub(crate) nsm: Arc<NsmStore>,
    /// Told of every lease recall of every share (NFSv4 delegations: `proc4::deleg`).
    breaker: Option<Arc<dyn LeaseBreaker>>,
    /// Told of every release of locks of every share (`proc4::lockwait`).
    unlocks: Option<Arc<dyn FileUnlocked>>,
}

impl Nlm {
    pub(crate) fn new(
        cfg: NlmConfig,
        breaker: Option<Arc<dyn LeaseBreaker>>,
        unlocks: Option<Arc<dyn FileUnlocked>>,
    ) -> Nlm {
        let nsm = cfg
            .nsm
            .clone()
            .unwrap_or_else(|| Arc::new(NsmStore::in_memory()));
        Nlm {
            grace_until: Instant::now() + cfg.grace,
            cfg,
            managers: Mutex::new(HashMap::new()),
            blocked: Mutex::new(HashMap::new()),
            shares: Mutex::new(HashMap::new()),
            nsm,
            breaker,
            unlocks,
        }
    }

    pub(crate) fn client_portmapper_port(&self) -> u16 {
        self.cfg.client_portmapper_port
    }

    /// Whether the grace period after start is still on (only reclaims are served).
    pub(crate) fn in_grace(&self) -> bool {
        Instant::now() < self.grace_until
    }

    /// When the grace period after start ends (NFSv4's ends then too, see
    /// `proc4::grace`).
    pub(crate) fn grace_until(&self) -> Instant {
        self.grace_until
    }

    /// The lock manager of a share (created on first use).
    pub(crate) fn manager(&self, share: ShareId) -> LockManager {
        let new = || {
            LockManager::with_hooks(Hooks {
                breaker: self.breaker.clone(),
                unlocks: self
                    .unlocks
                    .clone()
                    .map(|to| Arc::new(ShareUnlocks { share, to }) as Arc<dyn UnlockListener>),
            })
        };
        self.managers
            .lock()
            .entry(share)
            .or_insert_with(new)
            .clone()
    }

    /// Releases everything of the named NLM clients (FREE_ALL, SM_NOTIFY from a
    /// rebooted client): locks, queued requests and SHARE reservations; they are no
    /// longer monitored. Returns how many locks went.
    pub(crate) fn release_clients(&self, names: &[ClientId]) -> usize {
        let hit = |c: &ClientId| names.contains(c);
        self.shares.lock().retain(|(_, _, o), _| !hit(&o.client));
        self.blocked.lock().retain(|k, _| !hit(&k.owner.client));
        let managers: Vec<LockManager> = self.managers.lock().values().cloned().collect();
        let mut n = 0;
        for lm in managers {
            for c in names {
                n += lm.release_client(Protocol::Nlm, c).locks;
            }
        }
        self.nsm.unmonitor(|h| hit(&client_id(&h.name)));
        n
    }
}

/// The NLM client named `name` (a `caller_name` or a monitored host's name).
pub(crate) fn client_id(name: &[u8]) -> ClientId {
    ClientId::Name(Arc::from(String::from_utf8_lossy(name).as_ref()))
}
