//! NFSv4.0 owner sequence IDs and their replay (RFC 7530 sections 9.1.7 "Sequencing of
//! Lock Requests", 9.1.8, 9.1.9, 16.16 OPEN, 16.18 OPEN_CONFIRM, 16.10 LOCK, 16.12
//! LOCKU, 16.2 CLOSE, 16.19 OPEN_DOWNGRADE). NFSv4.1/4.2 ignore these seqids: their
//! session slots order and replay requests instead.
//!
//! Every open-owner and lock-owner of a client ([`OwnerKey`]) has one [`OwnerSeq`]: the
//! last sequence ID it used and the result of that request ([`Replay`]). For a request
//! of OPEN, OPEN_CONFIRM, OPEN_DOWNGRADE, CLOSE, LOCK or LOCKU with sequence ID `s`
//! ([`Owners::begin`]):
//! - `s == last + 1` (mod 2^32: 0xffffffff is followed by 0) runs; its result becomes
//!   the owner's replay and `s` its last, unless the status is one that RFC 7530
//!   section 9.1.7 lists as leaving the sequence unchanged ([`advances`]);
//! - `s == last` for the same operation is a replay: the remembered result, with no
//!   second effect;
//! - any other is NFS4ERR_BAD_SEQID, as is a second request while one runs (the client
//!   keeps one outstanding request per owner; the same sequence ID is NFS4ERR_DELAY).
//!
//! A new open-owner (or one whose record went, or was never confirmed) may start at any
//! sequence ID; its OPEN asks for confirmation (OPEN4_RESULT_CONFIRM) and the owner's
//! stateids serve only OPEN_CONFIRM (with `s + 1`) until it is confirmed: CLOSE,
//! OPEN_DOWNGRADE and LOCK on them are NFS4ERR_BAD_STATEID (READ and WRITE are not
//! held back). An unconfirmed owner's next OPEN starts its sequence afresh (and
//! upgrades the same open stateid); an open never confirmed goes with its client. A lock-owner's sequence starts at the `lock_seqid`
//! of its first LOCK (open_to_lock_owner4), which is sequenced on the open-owner.
//!
//! Bounds: [`MAX_OWNERS_PER_CLIENT`] records per client (the least recently used one
//! goes to make room: that owner only loses its replay and starts afresh) and
//! [`MAX_OWNERS`] in all (NFS4ERR_RESOURCE past it); records go with their client. The
//! stateid a CLOSE removed is remembered per owner (one), so a retransmitted CLOSE finds
//! its owner and gets its reply.

//!
//! The table itself (owners, their records and bounds) is `owners`.

use super::owners::SeqCheck;
pub(crate) use super::owners::{
    OP_CLOSE, OP_LOCK, OP_LOCKU, OP_OPEN, OP_OPEN_CONFIRM, OP_OPEN_DOWNGRADE, OwnerKey, Replay,
};
use super::state::{Nfs4State, StateKind};
use super::{Compound, Fail, OpResult};
use crate::nfs4::Nfs4Status;
use crate::nfs4::types::Stateid4;
use dittofs_types::Ino;

/// A sequenced request of the NFSv4.0 COMPOUND `c`: the owner its stateid `other`
/// belongs to (`lock`: a lock-owner, else an open-owner; another kind is
/// NFS4ERR_BAD_STATEID). The stateid's own seqid does not matter here (a replay carries
/// the old one); `closing`: the stateid a CLOSE removed still names its owner.
pub(crate) fn owner_of(
    c: &Compound<'_>,
    sid: &Stateid4,
    lock: bool,
    closing: bool,
) -> Result<OwnerKey, Nfs4Status> {
    let sid = c.stateid(sid)?;
    let any = Stateid4 {
        seqid: 0,
        other: sid.other,
    };
    let key = match c.shared.nfs4.state(&any) {
        Ok(e) => OwnerKey {
            client: e.client,
            lock: matches!(e.kind, StateKind::Lock { .. }),
            owner: e.owner,
        },
        Err(Nfs4Status::BadStateid) if closing => c
            .shared
            .nfs4
            .owners(|o| o.closed_owner(&sid.other))
            .ok_or(Nfs4Status::BadStateid)?,
        Err(e) => return Err(e),
    };
    if key.lock != lock {
        return Err(Nfs4Status::BadStateid);
    }
    Ok(key)
}

/// What [`sequence`] says: run (and end with [`SeqGuard::finish`]) or answer the replay.
pub(crate) enum Sequenced<'a> {
    Run(SeqGuard<'a>),
    Replay(Replay),
}

/// Checks the sequence ID of operation `opnum` of owner `key` (see the module
/// documentation).
pub(crate) fn sequence(
    st: &Nfs4State,
    key: OwnerKey,
    seqid: u32,
    opnum: u32,
) -> Result<Sequenced<'_>, Nfs4Status> {
    Ok(match st.owners(|o| o.begin(&key, seqid, opnum))? {
        SeqCheck::Replay(r) => Sequenced::Replay(r),
        SeqCheck::Run { confirmed } => Sequenced::Run(SeqGuard {
            st,
            key,
            seqid,
            opnum,
            confirmed,
            done: false,
        }),
    })
}

/// A sequenced request that runs. Dropped unfinished (its COMPOUND was abandoned), it
/// leaves the owner's sequence as it was.
pub(crate) struct SeqGuard<'a> {
    st: &'a Nfs4State,
    pub(crate) key: OwnerKey,
    seqid: u32,
    opnum: u32,
    pub(crate) confirmed: bool,
    done: bool,
}

impl SeqGuard<'_> {
    /// Ends the request with its result (`ino`: the file an OPEN opened).
    pub(crate) fn finish(mut self, r: &OpResult, ino: Option<Ino>) {
        let (status, body) = match r {
            Ok(b) => (Nfs4Status::Ok, b.clone()),
            Err(f) => (f.status, f.body.clone()),
        };
        self.end(Replay {
            opnum: self.opnum,
            status,
            body,
            ino,
        });
    }

    fn end(&mut self, r: Replay) {
        self.done = true;
        self.st.owners(|o| o.finish(&self.key, self.seqid, r));
    }
}

impl Drop for SeqGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.end(Replay {
                opnum: self.opnum,
                status: Nfs4Status::Resource,
                body: Vec::new(),
                ino: None,
            });
        }
    }
}

/// The result a replay answers.
pub(crate) fn replayed(r: Replay) -> OpResult {
    match r.status {
        Nfs4Status::Ok => Ok(r.body),
        status => Err(Fail {
            status,
            body: r.body,
        }),
    }
}
