//! One owner per remote location (bucket + endpoint + prefix).
//!
//! Only the server that wrote a location's chunks knows which are live, so a second
//! server group on the same location would, at its first GC, delete every chunk the first
//! one references. The location carries an ownership record (`{prefix}dittofs-owner.json`,
//! the [`Owner`] of the server that first used it):
//! - at start, [`claim_remote`] writes it if absent (and reads it back: of two servers
//!   claiming at once, the one whose record stayed owns it) and refuses a location owned
//!   by another server; a remote that does not answer does not stop the start (local
//!   data must be served), the claim is then unverified;
//! - before every GC sweep, [`RemoteTier::begin_gc`] verifies it again and refuses, loudly,
//!   to sweep a location it cannot prove its own.

use super::gc::GcError;
use super::{RemoteTier, with_deadline};
use crate::claim::Owner;
use crate::error::{BlockError, Result};
use bytes::Bytes;
use dittofs_remote::RemoteStore;
use std::time::Duration;

/// The outcome of a claim that did not find another owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteClaim {
    /// The location's record names this server.
    Owned,
    /// The location had no record; this server's is written now.
    Claimed,
    /// The remote did not answer: nothing is known (the GC will verify).
    Unverified(String),
}

/// Claims the location of `remote` for `owner` (see the module documentation).
/// [`BlockError::InUse`] when another server owns it or its record is unreadable.
pub async fn claim_remote(
    remote: &dyn RemoteStore,
    owner: &Owner,
    deadline: Duration,
) -> Result<RemoteClaim> {
    let what = || format!("ownership record of {}", remote.identity());
    let read = || with_deadline(deadline, what, remote.get_owner_record());
    let found = match read().await {
        Ok(found) => found,
        Err(e) => return Ok(RemoteClaim::Unverified(e.to_string())),
    };
    if let Some(bytes) = found {
        check(remote, owner, &bytes)?;
        return Ok(RemoteClaim::Owned);
    }
    let ours = serde_json::to_vec_pretty(owner)
        .map_err(|e| BlockError::Invalid(format!("owner record: {e}")))?;
    let put = with_deadline(deadline, what, remote.put_owner_record(Bytes::from(ours)));
    if let Err(e) = put.await {
        return Ok(RemoteClaim::Unverified(e.to_string()));
    }
    match read().await {
        Ok(Some(bytes)) => check(remote, owner, &bytes).map(|()| RemoteClaim::Claimed),
        Ok(None) => Ok(RemoteClaim::Unverified(
            "the ownership record just written is not there".into(),
        )),
        Err(e) => Ok(RemoteClaim::Unverified(e.to_string())),
    }
}

/// `Ok` if `record` names `owner`.
fn check(remote: &dyn RemoteStore, owner: &Owner, record: &[u8]) -> Result<()> {
    let found: Owner = serde_json::from_slice(record).map_err(|e| {
        BlockError::InUse(format!(
            "remote {}: unreadable ownership record dittofs-owner.json ({e}); fix or delete \
             it to let this server claim the location",
            remote.identity()
        ))
    })?;
    if found.server_id == owner.server_id {
        return Ok(());
    }
    Err(BlockError::InUse(format!(
        "remote {} belongs to another server (id {}, data directory {}): one server group per \
         bucket + endpoint + prefix, whose GC alone knows which chunks are live. Give this one \
         its own prefix, or, to hand the location over, stop that server for good and delete \
         the object dittofs-owner.json under the prefix",
        remote.identity(),
        found.server_id,
        found.data_dir
    )))
}

impl RemoteTier {
    /// The server this tier's location must belong to (checked before every GC sweep).
    pub fn set_owner(&self, owner: Owner) {
        *self.inner.owner.lock() = Some(owner);
    }

    /// Before a GC sweep: the location is provably this server's (see the module doc).
    pub(crate) async fn verify_owner(&self) -> std::result::Result<(), GcError> {
        let Some(owner) = self.inner.owner.lock().clone() else {
            return Ok(());
        };
        let deadline = self.inner.cfg.read_deadline;
        let remote = self.inner.name.clone();
        let refused = match claim_remote(self.inner.remote.as_ref(), &owner, deadline).await {
            Ok(RemoteClaim::Owned | RemoteClaim::Claimed) => return Ok(()),
            Ok(RemoteClaim::Unverified(why)) => GcError::Unverified { remote, why },
            Err(source) => GcError::NotOwner { remote, source },
        };
        tracing::error!("{refused}");
        Err(refused)
    }
}
