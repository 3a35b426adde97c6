//! Recalls of NFSv4 read and write delegations (RFC 8881 sections 10.4.1, 10.4.3,
//! 20.2 CB_RECALL): the break every conflicting NFSv4 operation makes first
//! ([`break_for`], with the `BreakCause` that says which delegations it conflicts
//! with), and the task that takes the lock managers' recall events ([`run_recalls`]):
//! CB_RECALL on the holder's back channel, once per delegation (the core may ask again
//! when a second cause breaks more of a write delegation), then revocation if the
//! delegation is still held one lease period after the recall.
//!
//! Invariant: a recall always ends, returned or revoked, within one lease period of the
//! conflicting access (the CB_RECALL itself is bounded by `backchannel::CB_TIMEOUT`).

use super::Compound;
use super::courtesy::Courtesy;
use super::deleg::Deleg;
use super::lm::{lock_status, owner};
use crate::backchannel::{CB_TIMEOUT, CbError};
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::Stateid4;
use crate::shared::Shared;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::state::{BreakCause, LeaseEvent, Protocol};
use std::sync::Arc;

/// Breaks the delegations of other clients on `ino` that `cause` conflicts with:
/// NFS4ERR_DELAY while they are being recalled (the client retries).
pub(super) fn break_for(
    c: &Compound<'_>,
    share: ShareId,
    ino: Ino,
    cause: BreakCause,
) -> Result<(), Nfs4Status> {
    let client = super::cb40::breaker(c);
    c.shared
        .nlm
        .manager(share)
        .break_leases(ino, &owner(client, b""), cause)
        .map_err(|e| lock_status(&e))
}

/// Takes the lock managers' recall events: CB_RECALL to the holder, revocation one
/// lease period later if the delegation is still held. Runs until the server drops.
pub(crate) async fn run_recalls(shared: Arc<Shared>) {
    let Some(mut rx) = shared.deleg.take_events() else {
        return;
    };
    while let Some(ev) = rx.recv().await {
        let LeaseEvent::Recall { lease, holder, .. } = ev else {
            continue;
        };
        if holder.protocol != Protocol::Nfs4 {
            continue;
        }
        let Some((sid, d)) = shared.deleg.recalling(lease) else {
            continue;
        };
        shared.metrics.delegations_recalled.inc();
        let shared = shared.clone();
        tokio::spawn(async move { recall(shared, sid, d).await });
    }
}

/// Recalls one delegation and revokes it if not returned within the lease; a courtesy
/// client's is not recalled: the client is released.
async fn recall(shared: Arc<Shared>, sid: Stateid4, d: Deleg) {
    if super::courtesy::release_client(&shared, d.client).await != Courtesy::Active {
        return;
    }
    let lease = shared.deleg.lease();
    let deadline = tokio::time::Instant::now() + lease;
    let sent = match shared.deleg.back_for(d.client) {
        Some(b) => {
            let timeout = lease.min(CB_TIMEOUT);
            tokio::time::timeout(timeout, b.recall(&sid, &d.fh))
                .await
                .unwrap_or(Err(CbError::Timeout(timeout)))
        }
        None => Err(CbError::NoBackChannel),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "CB_RECALL failed; the delegation is revoked unless returned within the lease");
    }
    tokio::time::sleep_until(deadline).await;
    shared.deleg.revoke((&shared.nlm, &shared.metrics), &sid);
}
