//! Model-based property test of leases (`dittofs_vfs::state`): random grants, breaks
//! (every cause), acknowledgments, returns, opens/closes and releases by four holders of
//! two clients on two files, against a model that keeps leases as plain
//! `(holder, file, flags, breaking)` rows and opens as a list. Each grant's answer, each
//! break's pending set, every recall sent to the breaker (exactly once per change of
//! target), each acknowledgment's result and, after every step, the whole lease table
//! must agree with the model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_types::Ino;
use dittofs_vfs::state::{
    Access, BreakCause, ChannelBreaker, ClientId, LeaseEvent, LeaseId, LeaseKind, LockError,
    LockManager, OpenId, Owner, Protocol,
};
use proptest::prelude::*;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

const INOS: [Ino; 2] = [Ino(2), Ino(3)];
const R: u8 = 1;
const W: u8 = 2;
const H: u8 = 4;
/// The kinds a lease may be granted with: R, RW, RH, RWH.
const KINDS: [u8; 4] = [R, R | W, R | H, R | W | H];

fn owners() -> Vec<Owner> {
    let nfs = |k: u8| Owner::new(Protocol::Nfs4, ClientId::Num(1), &[k]);
    let smb = |k: u8| Owner::new(Protocol::Smb, ClientId::Num(1), &[k]);
    vec![nfs(0), nfs(1), smb(0), smb(1)]
}

fn causes() -> [BreakCause; 10] {
    [
        BreakCause::Open { write: false },
        BreakCause::Open { write: true },
        BreakCause::Write,
        BreakCause::SetSize,
        BreakCause::Lock { exclusive: false },
        BreakCause::Lock { exclusive: true },
        BreakCause::Rename,
        BreakCause::Delete,
        BreakCause::Read,
        BreakCause::SetAttr,
    ]
}

/// The flags each cause takes away (the table in the lease module's documentation).
fn broken(cause: BreakCause) -> u8 {
    match cause {
        BreakCause::Open { write: false }
        | BreakCause::Lock { exclusive: false }
        | BreakCause::Read
        | BreakCause::SetAttr => W,
        BreakCause::Open { write: true }
        | BreakCause::Lock { exclusive: true }
        | BreakCause::Write
        | BreakCause::SetSize => R | W,
        BreakCause::Rename | BreakCause::Delete => H,
    }
}

fn norm(bits: u8) -> u8 {
    if bits & R == 0 { 0 } else { bits }
}

fn kind(bits: u8) -> LeaseKind {
    LeaseKind::new(bits & R != 0, bits & W != 0, bits & H != 0)
}

#[derive(Debug, Clone)]
enum Op {
    Open {
        ino: usize,
        owner: usize,
        write: bool,
    },
    Close {
        pick: usize,
    },
    Grant {
        ino: usize,
        holder: usize,
        kind: usize,
    },
    Break {
        ino: usize,
        by: usize,
        cause: usize,
    },
    Ack {
        pick: usize,
        kept: usize,
    },
    Return {
        pick: usize,
    },
    ReleaseOwner {
        owner: usize,
    },
    ReleaseClient {
        client: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let (i, o) = (0..2usize, 0..4usize);
    prop_oneof![
        2 => (i.clone(), o.clone(), any::<bool>())
            .prop_map(|(ino, owner, write)| Op::Open { ino, owner, write }),
        1 => any::<usize>().prop_map(|pick| Op::Close { pick }),
        4 => (i.clone(), o.clone(), 0..4usize)
            .prop_map(|(ino, holder, kind)| Op::Grant { ino, holder, kind }),
        4 => (i, o.clone(), 0..9usize).prop_map(|(ino, by, cause)| Op::Break { ino, by, cause }),
        2 => (any::<usize>(), 0..5usize).prop_map(|(pick, kept)| Op::Ack { pick, kept }),
        1 => any::<usize>().prop_map(|pick| Op::Return { pick }),
        1 => o.prop_map(|owner| Op::ReleaseOwner { owner }),
        1 => (0..2usize).prop_map(|client| Op::ReleaseClient { client }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: LeaseId,
    holder: usize,
    ino: usize,
    bits: u8,
    breaking: Option<u8>,
}

#[derive(Default)]
struct Model {
    leases: Vec<Row>,
    /// (id, file, owner, write access).
    opens: Vec<(OpenId, usize, usize, bool)>,
    /// Every lease id ever granted (acks of stale ids are part of the test).
    ever: Vec<LeaseId>,
}

/// Owners 0,1 are NFSv4 client 1, owners 2,3 SMB client 1: different clients.
fn same_client(a: usize, b: usize) -> bool {
    a / 2 == b / 2
}

impl Model {
    fn grant_refused(&self, ino: usize, holder: usize, bits: u8) -> bool {
        let lease = self
            .leases
            .iter()
            .filter(|l| l.ino == ino && l.holder != holder)
            .any(|l| l.breaking.is_some() || l.bits & W != 0 || bits & W != 0);
        let own_breaking = self
            .leases
            .iter()
            .any(|l| l.ino == ino && l.holder == holder && l.breaking.is_some());
        let open = self
            .opens
            .iter()
            .filter(|o| o.1 == ino && !same_client(o.2, holder))
            .any(|o| bits & W != 0 || o.3);
        lease || own_breaking || open
    }
}

fn events(rx: &mut UnboundedReceiver<LeaseEvent>) -> Vec<LeaseEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

struct Run {
    m: LockManager,
    rx: UnboundedReceiver<LeaseEvent>,
    model: Model,
    owners: Vec<Owner>,
}

impl Run {
    fn grant(&mut self, ino: usize, holder: usize, bits: u8) {
        let refused = self.model.grant_refused(ino, holder, bits);
        let got = self
            .m
            .grant_lease(INOS[ino], &self.owners[holder], kind(bits));
        match got {
            Err(LockError::LeaseConflict { .. }) => assert!(refused, "refused against the model"),
            Err(e) => panic!("unexpected {e:?}"),
            Ok(id) => {
                assert!(!refused, "granted against the model");
                let rows = &mut self.model.leases;
                match rows.iter_mut().find(|l| l.ino == ino && l.holder == holder) {
                    Some(row) => {
                        assert_eq!(row.id, id, "a holder keeps its lease id");
                        row.bits = bits;
                    }
                    None => {
                        rows.push(Row {
                            id,
                            holder,
                            ino,
                            bits,
                            breaking: None,
                        });
                        self.model.ever.push(id);
                    }
                }
            }
        }
    }

    fn brk(&mut self, ino: usize, by: usize, cause: BreakCause) {
        let mut pending = Vec::new();
        let mut recalls = Vec::new();
        for l in self
            .model
            .leases
            .iter_mut()
            .filter(|l| l.ino == ino && l.holder != by)
        {
            if norm(l.bits & !broken(cause)) == l.bits {
                continue;
            }
            pending.push(l.id);
            let to = norm(l.breaking.unwrap_or(l.bits) & !broken(cause));
            if l.breaking != Some(to) {
                l.breaking = Some(to);
                let holder = self.owners[l.holder].clone();
                recalls.push(LeaseEvent::Recall {
                    lease: l.id,
                    holder,
                    to: kind(to),
                });
            }
        }
        let got = self.m.break_leases(INOS[ino], &self.owners[by], cause);
        if pending.is_empty() {
            assert_eq!(got, Ok(()));
        } else {
            assert_eq!(got, Err(LockError::LeaseRecallPending { leases: pending }));
        }
        assert_eq!(events(&mut self.rx), recalls, "recalls sent");
    }

    fn ack(&mut self, id: LeaseId, kept: u8) {
        let got = self.m.ack_break(id, kind(kept));
        let at = self.model.leases.iter().position(|l| l.id == id);
        let Some(at) = at else {
            assert_eq!(got, Err(LockError::UnknownLease(id)));
            return;
        };
        let row = &mut self.model.leases[at];
        row.bits = norm(row.breaking.take().unwrap_or(row.bits) & kept);
        assert_eq!(got, Ok(kind(row.bits)));
        if row.bits == 0 {
            self.model.leases.remove(at);
        }
    }

    fn release(&mut self, pred: impl Fn(usize) -> bool) {
        self.model.leases.retain(|l| !pred(l.holder));
        self.model.opens.retain(|o| !pred(o.2));
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Open { ino, owner, write } => {
                let access = if write {
                    Access::READ_WRITE
                } else {
                    Access::READ
                };
                let id = self
                    .m
                    .open(INOS[ino], &self.owners[owner], access, Access::NONE);
                self.model.opens.push((id.unwrap(), ino, owner, write));
            }
            Op::Close { pick } if !self.model.opens.is_empty() => {
                let n = self.model.opens.len();
                let (id, ..) = self.model.opens.remove(pick % n);
                self.m.close(id).unwrap();
            }
            Op::Grant { ino, holder, kind } => self.grant(ino, holder, KINDS[kind]),
            Op::Break { ino, by, cause } => self.brk(ino, by, causes()[cause]),
            Op::Ack { pick, kept } if !self.model.ever.is_empty() => {
                let kept = [0, R, R | W, R | H, R | W | H][kept];
                let n = self.model.ever.len();
                self.ack(self.model.ever[pick % n], kept);
            }
            Op::Return { pick } if !self.model.ever.is_empty() => {
                let n = self.model.ever.len();
                self.ack(self.model.ever[pick % n], 0);
            }
            Op::ReleaseOwner { owner } => {
                self.m.release_owner(&self.owners[owner]);
                self.release(|o| o == owner);
            }
            Op::ReleaseClient { client } => {
                let o = &self.owners[client * 2];
                self.m.release_client(o.protocol, &o.client);
                self.release(|x| x / 2 == client);
            }
            Op::Close { .. } | Op::Ack { .. } | Op::Return { .. } => {}
        }
    }

    fn check(&self) {
        for (i, ino) in INOS.iter().enumerate() {
            let mut got: Vec<_> = self.m.snapshot(*ino).leases;
            got.sort_by_key(|l| l.id);
            let mut want: Vec<_> = self.model.leases.iter().filter(|l| l.ino == i).collect();
            want.sort_by_key(|l| l.id);
            assert_eq!(
                got.len(),
                want.len(),
                "leases of {ino}: {got:?} vs {want:?}"
            );
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.id, w.id);
                assert_eq!(g.holder, self.owners[w.holder]);
                assert_eq!(g.kind, kind(w.bits));
                assert_eq!(g.breaking, w.breaking.map(kind));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn leases_agree_with_the_model(ops in prop::collection::vec(op(), 1..=50)) {
        let (breaker, rx) = ChannelBreaker::new();
        let m = LockManager::with_breaker(Arc::new(breaker));
        let mut run = Run { m, rx, model: Model::default(), owners: owners() };
        for op in &ops {
            run.apply(op);
            run.check();
        }
        for o in run.owners.clone() {
            run.m.release_owner(&o);
        }
        prop_assert_eq!(run.m.inodes_in_use(), 0);
        prop_assert!(events(&mut run.rx).is_empty(), "releases send no recall");
    }
}
