//! The duplicate request cache: a retransmitted non-idempotent call (same client
//! address, xid, program, procedure and argument bytes) gets the reply of the original,
//! or is dropped while the original still runs, so a REMOVE or RENAME retransmitted
//! after a lost reply does not fail with NOENT. RFC 5531 leaves duplicate detection to
//! the server; which NFSv3 procedures count as non-idempotent is `proc3::is_idempotent`.
//!
//! Bounded: at most `cap` calls are remembered, the oldest evicted first; a call that is
//! evicted while it runs is simply not cached.

use crate::call::Reply;
use crate::rpc::RpcCall;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// What identifies a retransmission: the same client address, xid, program, procedure
/// and argument bytes (hashed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct DrcKey {
    client: IpAddr,
    xid: u32,
    prog: u32,
    proc_num: u32,
    args_hash: u64,
}

impl DrcKey {
    pub(crate) fn new(client: IpAddr, call: &RpcCall, args: &[u8]) -> DrcKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        args.hash(&mut h);
        DrcKey {
            client,
            xid: call.xid,
            prog: call.prog,
            proc_num: call.proc_num,
            args_hash: h.finish(),
        }
    }
}

/// What [`Drc::begin`] found for a call.
pub(crate) enum DrcState {
    /// First seen: run it (and [`Drc::finish`] it).
    New,
    /// The original is still running: drop the retransmission.
    InProgress,
    /// Answered before: send this reply again.
    Done(Reply),
}

enum DrcEntry {
    InProgress,
    Done(Reply),
}

/// Bounded cache of non-idempotent calls and their replies (oldest evicted first).
pub(crate) struct Drc {
    cap: usize,
    inner: Mutex<(HashMap<DrcKey, DrcEntry>, VecDeque<DrcKey>)>,
}

impl Drc {
    pub(crate) fn new(cap: usize) -> Drc {
        Drc {
            cap,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Registers call `k` as running unless it is already known.
    pub(crate) fn begin(&self, k: &DrcKey) -> DrcState {
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        match map.get(k) {
            Some(DrcEntry::InProgress) => return DrcState::InProgress,
            Some(DrcEntry::Done(r)) => return DrcState::Done(r.clone()),
            None => {}
        }
        map.insert(k.clone(), DrcEntry::InProgress);
        order.push_back(k.clone());
        while order.len() > self.cap {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        DrcState::New
    }

    /// Records the reply of call `k` (a call evicted meanwhile is not cached).
    pub(crate) fn finish(&self, k: DrcKey, reply: &Reply) {
        let mut g = self.inner.lock();
        if let Some(e) = g.0.get_mut(&k) {
            *e = DrcEntry::Done(reply.clone());
        }
    }
}
