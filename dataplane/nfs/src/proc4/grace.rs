//! NFSv4 state across restarts (RFC 8881 sections 8.4.2, 8.4.3, 18.51; RFC 7530
//! section 9.6): which clients held state before a restart, the grace period after
//! start, and who may reclaim during it.
//!
//! - A client record is kept in the metadata store of every share where the client
//!   opened a file (`Fs::put_client_record`, id `nfs4/` ++ the client's owner: 4.1's
//!   `co_ownerid`, 4.0's SETCLIENTID `id`; AUTH_SYS has no principal to add). It is
//!   written durably before the client's first OPEN on that share is answered (so a
//!   SIGKILL never loses the record of a client that got state), and deleted when the
//!   client is destroyed, expires or comes back with a new verifier (a client restart:
//!   its old state is gone), see [`Grace::forget`].
//! - At start ([`Grace::load`], before the first call is served) the records of every
//!   share are read. Without any there is nothing to reclaim: NFSv4 has no grace period.
//!   With some, the grace period ends when NLM's does (`nfs.locks.grace_seconds` after
//!   start: one grace period for every protocol) or as soon as every recorded client has
//!   sent RECLAIM_COMPLETE (4.1/4.2), whichever comes first.
//! - During the grace period a non-reclaim OPEN, LOCK or LOCKT is NFS4ERR_GRACE; a
//!   reclaim (OPEN CLAIM_PREVIOUS, LOCK with `reclaim`) is served for a client with a
//!   record on that share that has not sent RECLAIM_COMPLETE; a client without a record
//!   there gets NFS4ERR_RECLAIM_BAD (RFC 8881 section 8.4.3: the server must not let a
//!   client reclaim state it never had). Outside the grace period, and after the
//!   client's RECLAIM_COMPLETE, a reclaim is NFS4ERR_NO_GRACE.
//! - When the grace period is over, the records of clients that neither reclaimed nor
//!   opened on that share since the start are deleted ([`Grace::sweep`], on the first
//!   COMPOUND after the end): they can never reclaim again.
//!
//! Invariants: a record exists for every (client, share) this instance gave an open
//! (`current`); record writes and the sweep's deletes are serialized (`writes`), so a
//! sweep never deletes a record an OPEN has just written; no lock is held across an
//! await except `writes`.

use crate::nfs4::Nfs4Status;
use dittofs_types::ShareId;
use dittofs_vfs::{Fs, FsError, ShareRegistry};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Prefix of NFSv4 ids among a share's client records.
const ID_PREFIX: &[u8] = b"nfs4/";
/// The value of a record: its format version.
const RECORD_V1: &[u8] = &[1];

fn record_id(owner: &[u8]) -> Vec<u8> {
    [ID_PREFIX, owner].concat()
}

#[derive(Debug, Default)]
struct Inner {
    /// The end of the grace period (None: there is none, or it ended early).
    until: Option<Instant>,
    /// Records found at start: client owner -> shares.
    previous: HashMap<Vec<u8>, HashSet<ShareId>>,
    /// Records this instance wrote or kept (by a reclaim).
    current: HashSet<(Vec<u8>, ShareId)>,
    /// Recorded clients that sent RECLAIM_COMPLETE.
    complete: HashSet<Vec<u8>>,
    /// Whether the records of clients that did not come back were deleted.
    swept: bool,
}

impl Inner {
    fn in_grace(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }
}

/// Client records and the grace period (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Grace {
    inner: Mutex<Inner>,
    writes: tokio::sync::Mutex<()>,
}

impl Grace {
    pub(crate) fn new() -> Grace {
        Grace::default()
    }

    /// Reads the client records of every share of `registry`; with any, the grace
    /// period lasts until `until`. Shares whose records cannot be read are logged and
    /// skipped (their clients' reclaims will be refused).
    pub(crate) async fn load(&self, registry: &ShareRegistry, until: Instant) {
        let mut previous: HashMap<Vec<u8>, HashSet<ShareId>> = HashMap::new();
        for fs in registry.list() {
            match fs.client_records(ID_PREFIX).await {
                Ok(recs) => {
                    for (id, _) in recs {
                        let owner = id[ID_PREFIX.len()..].to_vec();
                        previous.entry(owner).or_default().insert(fs.share_id());
                    }
                }
                Err(e) => tracing::warn!(
                    share = fs.name(),
                    error = %e,
                    "cannot read the NFSv4 client records: those clients cannot reclaim"
                ),
            }
        }
        let mut g = self.inner.lock();
        if !previous.is_empty() {
            tracing::info!(
                clients = previous.len(),
                "NFSv4 clients held state before the restart: grace period for reclaims"
            );
            g.until = Some(until);
        }
        g.previous = previous;
    }

    /// Whether the grace period is on.
    pub(crate) fn in_grace(&self) -> bool {
        self.inner.lock().in_grace(Instant::now())
    }

    /// A non-reclaim OPEN, LOCK or LOCKT: NFS4ERR_GRACE during the grace period.
    pub(crate) fn check_new(&self) -> Result<(), Nfs4Status> {
        match self.in_grace() {
            true => Err(Nfs4Status::Grace),
            false => Ok(()),
        }
    }

    /// Whether the client `owner` may reclaim state on `share` now.
    pub(crate) fn check_reclaim(&self, owner: &[u8], share: ShareId) -> Result<(), Nfs4Status> {
        let g = self.inner.lock();
        if !g.in_grace(Instant::now()) || g.complete.contains(owner) {
            return Err(Nfs4Status::NoGrace);
        }
        match g.previous.get(owner).is_some_and(|s| s.contains(&share)) {
            true => Ok(()),
            false => Err(Nfs4Status::ReclaimBad),
        }
    }

    /// A reclaim of `owner` on `share` succeeded: its record stays.
    pub(crate) fn reclaimed(&self, owner: &[u8], share: ShareId) {
        self.inner.lock().current.insert((owner.to_vec(), share));
    }

    /// RECLAIM_COMPLETE of `owner`: the grace period ends once every recorded client
    /// has sent it.
    pub(crate) fn reclaim_complete(&self, owner: &[u8]) {
        let mut g = self.inner.lock();
        if !g.previous.contains_key(owner) {
            return;
        }
        g.complete.insert(owner.to_vec());
        if g.previous.keys().all(|o| g.complete.contains(o)) && g.until.is_some() {
            tracing::info!("every NFSv4 client reclaimed: grace period over");
            g.until = None;
        }
    }

    /// Makes sure the record of `owner` on `fs`'s share is durable (before an OPEN
    /// there is answered).
    pub(crate) async fn record(&self, fs: &Fs, owner: &[u8]) -> Result<(), FsError> {
        let key = (owner.to_vec(), fs.share_id());
        if self.inner.lock().current.contains(&key) {
            return Ok(());
        }
        let _w = self.writes.lock().await;
        fs.put_client_record(&record_id(owner), RECORD_V1).await?;
        self.inner.lock().current.insert(key);
        Ok(())
    }

    /// Deletes the records of clients that are gone (destroyed, expired, restarted).
    pub(crate) async fn forget(&self, registry: &ShareRegistry, owners: &[Vec<u8>]) {
        if owners.is_empty() {
            return;
        }
        let gone: Vec<(Vec<u8>, ShareId)> = {
            let mut g = self.inner.lock();
            let mut gone = Vec::new();
            g.current.retain(|k| {
                let hit = owners.contains(&k.0);
                if hit {
                    gone.push(k.clone());
                }
                !hit
            });
            gone
        };
        let _w = self.writes.lock().await;
        delete(registry, &gone).await;
    }

    fn sweep_due(&self) -> bool {
        let g = self.inner.lock();
        !g.swept && !g.in_grace(Instant::now())
    }

    /// Once the grace period is over: deletes the records of clients that did not come
    /// back (neither reclaimed nor opened on that share since the start).
    pub(crate) async fn sweep(&self, registry: &ShareRegistry) {
        if !self.sweep_due() {
            return;
        }
        let _w = self.writes.lock().await;
        let stale: Vec<(Vec<u8>, ShareId)> = {
            let mut g = self.inner.lock();
            if g.swept {
                return;
            }
            g.swept = true;
            g.until = None;
            let previous = std::mem::take(&mut g.previous);
            previous
                .into_iter()
                .flat_map(|(o, shares)| shares.into_iter().map(move |s| (o.clone(), s)))
                .filter(|k| !g.current.contains(k))
                .collect()
        };
        delete(registry, &stale).await;
    }
}

/// Deletes the records `(owner, share)` (a share no longer served is skipped).
async fn delete(registry: &ShareRegistry, recs: &[(Vec<u8>, ShareId)]) {
    for (owner, share) in recs {
        let Some(fs) = registry.by_id(*share) else {
            continue;
        };
        if let Err(e) = fs.delete_client_record(&record_id(owner)).await {
            tracing::warn!(share = fs.name(), error = %e, "cannot delete an NFSv4 client record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn grace_with(owners: &[(&[u8], u32)]) -> Grace {
        let g = Grace::new();
        {
            let mut i = g.inner.lock();
            for (o, s) in owners {
                i.previous
                    .entry(o.to_vec())
                    .or_default()
                    .insert(ShareId(*s));
            }
            i.until = Some(Instant::now() + Duration::from_secs(60));
        }
        g
    }

    #[test]
    fn reclaims_only_for_recorded_clients_in_grace() {
        let g = grace_with(&[(b"a", 1), (b"b", 1)]);
        assert!(g.in_grace());
        assert_eq!(g.check_new(), Err(Nfs4Status::Grace));
        assert_eq!(g.check_reclaim(b"a", ShareId(1)), Ok(()));
        // no record on that share, or none at all
        assert_eq!(
            g.check_reclaim(b"a", ShareId(2)),
            Err(Nfs4Status::ReclaimBad)
        );
        assert_eq!(
            g.check_reclaim(b"x", ShareId(1)),
            Err(Nfs4Status::ReclaimBad)
        );
        // after its RECLAIM_COMPLETE a client reclaims no more; the grace goes on for b
        g.reclaim_complete(b"a");
        assert_eq!(g.check_reclaim(b"a", ShareId(1)), Err(Nfs4Status::NoGrace));
        assert!(g.in_grace());
        // an unknown client's RECLAIM_COMPLETE changes nothing; b's ends the grace
        g.reclaim_complete(b"x");
        assert!(g.in_grace());
        g.reclaim_complete(b"b");
        assert!(!g.in_grace());
        assert_eq!(g.check_new(), Ok(()));
        assert_eq!(g.check_reclaim(b"b", ShareId(1)), Err(Nfs4Status::NoGrace));
    }

    #[test]
    fn no_records_no_grace() {
        let g = Grace::new();
        assert!(!g.in_grace());
        assert_eq!(g.check_new(), Ok(()));
        assert_eq!(g.check_reclaim(b"a", ShareId(1)), Err(Nfs4Status::NoGrace));
    }

    #[test]
    fn the_grace_period_ends_at_its_time() {
        let g = grace_with(&[(b"a", 1)]);
        g.inner.lock().until = Some(Instant::now());
        assert!(!g.in_grace());
        assert_eq!(g.check_reclaim(b"a", ShareId(1)), Err(Nfs4Status::NoGrace));
    }
}
