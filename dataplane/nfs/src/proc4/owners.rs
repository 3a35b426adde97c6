//! The NFSv4.0 owner sequence table (RFC 7530 section 9.1.7): per open-/lock-owner the
//! last sequence ID and the result of that request, bounded per client and in all. The
//! rules it applies are described in `seqid`, which runs operations through it; this
//! module knows nothing of the server state, so `state` can hold the table without
//! importing `seqid`.

use crate::nfs4::Nfs4Status;
use dittofs_types::Ino;
use std::collections::HashMap;

/// The most owner records of one client.
pub(crate) const MAX_OWNERS_PER_CLIENT: usize = 1024;
/// The most owner records in all.
pub(crate) const MAX_OWNERS: usize = 1 << 16;

/// An open-owner (`lock` false) or lock-owner of a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OwnerKey {
    pub(crate) client: u64,
    pub(crate) lock: bool,
    pub(crate) owner: Vec<u8>,
}

/// The remembered result of an owner's last sequenced request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Replay {
    pub(crate) opnum: u32,
    pub(crate) status: Nfs4Status,
    pub(crate) body: Vec<u8>,
    /// The file an OPEN opened (the current file handle its replay sets).
    pub(crate) ino: Option<Ino>,
}

/// One owner's sequence state.
#[derive(Debug)]
struct OwnerSeq {
    last: Option<u32>,
    running: Option<u32>,
    confirmed: bool,
    reply: Option<Replay>,
    /// The stateid its last CLOSE removed.
    closed: Option<[u8; 12]>,
    used: u64,
}

/// What [`Owners::begin`] says of a sequenced request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    /// Run it; `confirmed` tells whether the owner is confirmed (OPEN asks for
    /// confirmation when it is not, OPEN_CONFIRM needs it not to be).
    Run { confirmed: bool },
    /// A retransmission of the last request: its result.
    Replay(Replay),
}

/// Whether a request that ended with `status` uses up its sequence ID (RFC 7530
/// section 9.1.7: all but these).
pub(crate) fn advances(status: Nfs4Status) -> bool {
    !matches!(
        status,
        Nfs4Status::StaleClientId
            | Nfs4Status::StaleStateid
            | Nfs4Status::BadStateid
            | Nfs4Status::BadSeqid
            | Nfs4Status::BadXdr
            | Nfs4Status::Resource
            | Nfs4Status::NoFileHandle
            | Nfs4Status::Moved
    )
}

/// The owner records of all clients.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    clients: HashMap<u64, HashMap<(bool, Vec<u8>), OwnerSeq>>,
    /// Closed stateid -> its owner.
    closed: HashMap<[u8; 12], OwnerKey>,
    total: usize,
    tick: u64,
}

/// Operation numbers of the sequenced operations.
pub(crate) const OP_CLOSE: u32 = 4;
pub(crate) const OP_LOCK: u32 = 12;
pub(crate) const OP_LOCKU: u32 = 14;
pub(crate) const OP_OPEN: u32 = 18;
pub(crate) const OP_OPEN_CONFIRM: u32 = 20;
pub(crate) const OP_OPEN_DOWNGRADE: u32 = 21;
const OPEN: u32 = OP_OPEN;
const OPEN_CONFIRM: u32 = OP_OPEN_CONFIRM;

impl Owners {
    fn get(&mut self, k: &OwnerKey) -> Option<&mut OwnerSeq> {
        self.clients
            .get_mut(&k.client)?
            .get_mut(&(k.lock, k.owner.clone()))
    }

    /// Checks sequence ID `seqid` of operation `opnum` by owner `k` (see the module
    /// documentation); a `Run` must be followed by [`Owners::finish`].
    pub(crate) fn begin(
        &mut self,
        k: &OwnerKey,
        seqid: u32,
        opnum: u32,
    ) -> Result<SeqCheck, Nfs4Status> {
        self.tick += 1;
        let tick = self.tick;
        let Some(o) = self.get(k) else {
            self.insert(k)?;
            return self.begin_new(k, seqid, opnum);
        };
        o.used = tick;
        if let Some(r) = o.running {
            return Err(if r == seqid {
                Nfs4Status::Delay
            } else {
                Nfs4Status::BadSeqid
            });
        }
        let replay = o.reply.as_ref().filter(|r| r.opnum == opnum);
        if o.last == Some(seqid) {
            return replay
                .cloned()
                .map(SeqCheck::Replay)
                .ok_or(Nfs4Status::BadSeqid);
        }
        if !o.confirmed && opnum == OPEN {
            return self.begin_new(k, seqid, opnum);
        }
        if !o.confirmed && opnum != OPEN_CONFIRM {
            return Err(Nfs4Status::BadStateid);
        }
        if o.last.is_some_and(|l| l.wrapping_add(1) != seqid) {
            return Err(Nfs4Status::BadSeqid);
        }
        o.running = Some(seqid);
        Ok(SeqCheck::Run {
            confirmed: o.confirmed,
        })
    }

    /// The first request of an owner without a (confirmed) record: any sequence ID.
    /// An open-owner is unconfirmed until OPEN_CONFIRM; other owners (lock-owners, an
    /// open-owner whose record went) carry on confirmed.
    fn begin_new(&mut self, k: &OwnerKey, seqid: u32, opnum: u32) -> Result<SeqCheck, Nfs4Status> {
        let o = self.get(k).ok_or(Nfs4Status::ServerFault)?;
        o.last = None;
        o.reply = None;
        o.confirmed = k.lock || opnum != OPEN;
        o.running = Some(seqid);
        Ok(SeqCheck::Run {
            confirmed: o.confirmed,
        })
    }

    /// A record for `k`, making room in its client's table (the least recently used
    /// record goes) or NFS4ERR_RESOURCE when the server's table is full.
    fn insert(&mut self, k: &OwnerKey) -> Result<(), Nfs4Status> {
        let mine = self.clients.get(&k.client).map_or(0, |m| m.len());
        if mine >= MAX_OWNERS_PER_CLIENT || (self.total >= MAX_OWNERS && mine > 0) {
            self.evict_lru(k.client);
        } else if self.total >= MAX_OWNERS {
            return Err(Nfs4Status::Resource);
        }
        let rec = OwnerSeq {
            last: None,
            running: None,
            confirmed: false,
            reply: None,
            closed: None,
            used: self.tick,
        };
        self.clients
            .entry(k.client)
            .or_default()
            .insert((k.lock, k.owner.clone()), rec);
        self.total += 1;
        Ok(())
    }

    fn evict_lru(&mut self, client: u64) {
        let Some(m) = self.clients.get_mut(&client) else {
            return;
        };
        let victim = m
            .iter()
            .filter(|(_, o)| o.running.is_none())
            .min_by_key(|(_, o)| o.used)
            .map(|(k, _)| k.clone());
        if let Some(o) = victim.and_then(|v| m.remove(&v)) {
            self.total -= 1;
            if let Some(c) = o.closed {
                self.closed.remove(&c);
            }
        }
    }

    /// Ends a request `begin` let run: its result becomes the owner's replay and
    /// `seqid` its last when the status [`advances`] the sequence.
    pub(crate) fn finish(&mut self, k: &OwnerKey, seqid: u32, result: Replay) {
        let Some(o) = self.get(k) else {
            return;
        };
        o.running = None;
        if advances(result.status) {
            o.last = Some(seqid);
            o.reply = Some(result);
        } else if o.last.is_none() && !o.confirmed {
            // a new open-owner whose first OPEN did not count: no record
            self.forget(k);
        }
    }

    fn forget(&mut self, k: &OwnerKey) {
        let gone = self
            .clients
            .get_mut(&k.client)
            .and_then(|m| m.remove(&(k.lock, k.owner.clone())));
        if let Some(o) = gone {
            self.total -= 1;
            if let Some(c) = o.closed {
                self.closed.remove(&c);
            }
        }
    }

    /// OPEN_CONFIRM succeeded: the open-owner is confirmed.
    pub(crate) fn confirm(&mut self, k: &OwnerKey) {
        if let Some(o) = self.get(k) {
            o.confirmed = true;
        }
    }

    /// Starts the sequence of lock-owner `k` at `seqid` (its first LOCK, sequenced on
    /// its open-owner).
    pub(crate) fn start(&mut self, k: &OwnerKey, seqid: u32) {
        if self.get(k).is_none() && self.insert(k).is_err() {
            return;
        }
        if let Some(o) = self.get(k) {
            (o.last, o.reply, o.confirmed) = (Some(seqid), None, true);
        }
    }

    /// Remembers that owner `k`'s CLOSE removed stateid `other` (its last one goes).
    pub(crate) fn closed(&mut self, k: &OwnerKey, other: [u8; 12]) {
        let Some(o) = self.get(k) else {
            return;
        };
        let old = o.closed.replace(other);
        if let Some(old) = old {
            self.closed.remove(&old);
        }
        self.closed.insert(other, k.clone());
    }

    /// The owner whose last CLOSE removed stateid `other`.
    pub(crate) fn closed_owner(&self, other: &[u8; 12]) -> Option<OwnerKey> {
        self.closed.get(other).cloned()
    }

    /// Forgets the owners of a departed client.
    pub(crate) fn forget_client(&mut self, client: u64) {
        if let Some(m) = self.clients.remove(&client) {
            self.total -= m.len();
            for c in m.values().filter_map(|o| o.closed) {
                self.closed.remove(&c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(owner: &[u8], lock: bool) -> OwnerKey {
        OwnerKey {
            client: 7,
            lock,
            owner: owner.to_vec(),
        }
    }

    fn res(opnum: u32, status: Nfs4Status, body: &[u8]) -> Replay {
        Replay {
            opnum,
            status,
            body: body.to_vec(),
            ino: None,
        }
    }

    const CONFIRMED: SeqCheck = SeqCheck::Run { confirmed: true };
    const CLOSE: u32 = 4;

    fn confirmed_owner(o: &mut Owners, k: &OwnerKey, seqid: u32) {
        let first = o.begin(k, seqid, OPEN).unwrap();
        assert_eq!(first, SeqCheck::Run { confirmed: false });
        o.finish(k, seqid, res(OPEN, Nfs4Status::Ok, b"open"));
        let next = seqid.wrapping_add(1);
        assert_eq!(
            o.begin(k, next, OPEN_CONFIRM).unwrap(),
            SeqCheck::Run { confirmed: false }
        );
        o.confirm(k);
        o.finish(k, next, res(OPEN_CONFIRM, Nfs4Status::Ok, b"confirm"));
    }

    #[test]
    fn next_runs_last_replays_others_are_bad_seqid() {
        let mut o = Owners::default();
        let k = key(b"oo", false);
        confirmed_owner(&mut o, &k, 5);
        assert_eq!(
            o.begin(&k, 6, OPEN_CONFIRM).unwrap(),
            SeqCheck::Replay(res(OPEN_CONFIRM, Nfs4Status::Ok, b"confirm"))
        );
        assert_eq!(o.begin(&k, 8, CLOSE), Err(Nfs4Status::BadSeqid));
        assert_eq!(o.begin(&k, 5, CLOSE), Err(Nfs4Status::BadSeqid));
        assert_eq!(o.begin(&k, 7, CLOSE).unwrap(), CONFIRMED);
        // a second request while one runs
        assert_eq!(o.begin(&k, 7, CLOSE), Err(Nfs4Status::Delay));
        assert_eq!(o.begin(&k, 8, CLOSE), Err(Nfs4Status::BadSeqid));
        o.finish(&k, 7, res(CLOSE, Nfs4Status::Ok, b"closed"));
        let again = o.begin(&k, 7, CLOSE).unwrap();
        assert_eq!(
            again,
            SeqCheck::Replay(res(CLOSE, Nfs4Status::Ok, b"closed"))
        );
        // the same sequence ID for another operation is not a replay
        assert_eq!(o.begin(&k, 7, OPEN), Err(Nfs4Status::BadSeqid));
    }

    #[test]
    fn errors_advance_except_the_listed_ones() {
        let mut o = Owners::default();
        let k = key(b"oo", false);
        confirmed_owner(&mut o, &k, 1);
        assert_eq!(o.begin(&k, 3, CLOSE).unwrap(), CONFIRMED);
        o.finish(&k, 3, res(CLOSE, Nfs4Status::BadStateid, b""));
        assert_eq!(o.begin(&k, 3, CLOSE).unwrap(), CONFIRMED, "not used up");
        o.finish(&k, 3, res(CLOSE, Nfs4Status::Access, b""));
        assert_eq!(o.begin(&k, 4, CLOSE).unwrap(), CONFIRMED, "used up");
        o.finish(&k, 4, res(CLOSE, Nfs4Status::Ok, b""));
    }

    #[test]
    fn sequence_wraps_and_unconfirmed_owners_restart() {
        let mut o = Owners::default();
        let k = key(b"oo", false);
        confirmed_owner(&mut o, &k, u32::MAX - 1);
        assert_eq!(o.begin(&k, 0, CLOSE).unwrap(), CONFIRMED);
        o.finish(&k, 0, res(CLOSE, Nfs4Status::Ok, b""));
        // unconfirmed: only OPEN_CONFIRM, and a new OPEN starts afresh
        let u = key(b"new", false);
        o.begin(&u, 40, OPEN).unwrap();
        o.finish(&u, 40, res(OPEN, Nfs4Status::Ok, b""));
        assert_eq!(o.begin(&u, 41, CLOSE), Err(Nfs4Status::BadStateid));
        let restart = o.begin(&u, 3, OPEN).unwrap();
        assert_eq!(restart, SeqCheck::Run { confirmed: false });
        o.finish(&u, 3, res(OPEN, Nfs4Status::Ok, b""));
        // a lock-owner's sequence starts where its first LOCK said
        let l = key(b"lo", true);
        o.start(&l, 9);
        assert_eq!(o.begin(&l, 10, 12).unwrap(), CONFIRMED);
    }

    #[test]
    fn owners_are_bounded_and_go_with_their_client() {
        let mut o = Owners::default();
        for i in 0..MAX_OWNERS_PER_CLIENT + 10 {
            let k = key(format!("o{i}").as_bytes(), true);
            o.begin(&k, 1, 12).unwrap();
            o.finish(&k, 1, res(12, Nfs4Status::Ok, b""));
        }
        assert_eq!(o.total, MAX_OWNERS_PER_CLIENT);
        // the oldest went; the newest is there
        assert_eq!(o.begin(&key(b"o0", true), 2, 12).unwrap(), CONFIRMED);
        let k = key(b"o1033", true);
        o.closed(&k, [1; 12]);
        assert_eq!(o.closed_owner(&[1; 12]), Some(k));
        o.forget_client(7);
        assert_eq!((o.total, o.closed_owner(&[1; 12])), (0, None));
    }
}
