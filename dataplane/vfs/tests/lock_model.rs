//! Model-based property test of the lock manager (`dittofs_vfs::state`).
//!
//! Random sequences of opens/closes (random access and deny), non-blocking locks,
//! unlocks, lock tests, mandatory I/O checks and owner/client releases, by four owners
//! of two clients over two protocols on two files, are applied both to the manager and
//! to a deliberately naive model: per file, one cell per byte of 0..128 plus one cell
//! for "128 to end of file" (every offset used is below 128, so all bytes from 128 on
//! behave alike), each cell recording which owners hold it and how; opens are a plain
//! list. Every answer must agree, and after every step the bytes each owner holds (the
//! manager's ranges expanded to cells) must equal the model's, with each owner's
//! ranges disjoint and merged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_types::Ino;
use dittofs_vfs::state::{
    Access, ByteRange, ClientId, LockError, LockKind, LockManager, OpenId, Owner, Protocol,
};
use proptest::prelude::*;
use std::sync::Arc;

const CELLS: usize = 129;
const EOF_CELL: usize = 128;
const INOS: [Ino; 2] = [Ino(2), Ino(3)];

fn owners() -> Vec<Owner> {
    let nlm = |k: u8| Owner::new(Protocol::Nlm, ClientId::Name(Arc::from("c1")), &[k]);
    let smb = |k: u8| Owner::new(Protocol::Smb, ClientId::Num(2), &[k]);
    vec![nlm(0), nlm(1), smb(0), smb(1)]
}

#[derive(Debug, Clone)]
enum Op {
    Open {
        ino: usize,
        owner: usize,
        access: u8,
        deny: u8,
    },
    Close {
        pick: usize,
    },
    Lock {
        ino: usize,
        owner: usize,
        excl: bool,
        off: u64,
        len: u64,
    },
    Unlock {
        ino: usize,
        owner: usize,
        off: u64,
        len: u64,
    },
    Test {
        ino: usize,
        owner: usize,
        excl: bool,
        off: u64,
        len: u64,
    },
    CheckIo {
        ino: usize,
        owner: usize,
        write: bool,
        off: u64,
        len: u64,
    },
    ReleaseOwner {
        owner: usize,
    },
    ReleaseClient {
        client: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let (i, o, off, len) = (0..2usize, 0..4usize, 0..64u64, 0..16u64);
    prop_oneof![
        2 => (i.clone(), o.clone(), 0..8u8, 0..8u8)
            .prop_map(|(ino, owner, access, deny)| Op::Open { ino, owner, access, deny }),
        1 => any::<usize>().prop_map(|pick| Op::Close { pick }),
        6 => (i.clone(), o.clone(), any::<bool>(), off.clone(), len.clone())
            .prop_map(|(ino, owner, excl, off, len)| Op::Lock { ino, owner, excl, off, len }),
        3 => (i.clone(), o.clone(), off.clone(), len.clone())
            .prop_map(|(ino, owner, off, len)| Op::Unlock { ino, owner, off, len }),
        2 => (i.clone(), o.clone(), any::<bool>(), off.clone(), len.clone())
            .prop_map(|(ino, owner, excl, off, len)| Op::Test { ino, owner, excl, off, len }),
        2 => (i, o.clone(), any::<bool>(), off, len)
            .prop_map(|(ino, owner, write, off, len)| Op::CheckIo { ino, owner, write, off, len }),
        1 => o.prop_map(|owner| Op::ReleaseOwner { owner }),
        1 => (0..2usize).prop_map(|client| Op::ReleaseClient { client }),
    ]
}

fn access(bits: u8) -> Access {
    Access::new(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0)
}

fn kind(excl: bool) -> LockKind {
    if excl {
        LockKind::Exclusive
    } else {
        LockKind::Shared
    }
}

/// The cells a lock range covers: `len` 0 runs to end of file.
fn lock_cells(off: u64, len: u64) -> std::ops::Range<usize> {
    let off = off as usize;
    if len == 0 {
        off..CELLS
    } else {
        off..off + len as usize
    }
}

struct ModelOpen {
    id: OpenId,
    ino: usize,
    owner: usize,
    access: u8,
    deny: u8,
    open: bool,
}

#[derive(Default)]
struct Model {
    /// cells[ino][cell][owner]
    cells: Vec<Vec<[Option<LockKind>; 4]>>,
    opens: Vec<ModelOpen>,
}

impl Model {
    fn new() -> Model {
        Model {
            cells: vec![vec![[None; 4]; CELLS]; 2],
            opens: Vec::new(),
        }
    }

    /// Whether `owner` may take `cells` as `kind` (other owners' holdings only).
    fn conflicts(
        &self,
        ino: usize,
        owner: usize,
        cells: std::ops::Range<usize>,
        k: LockKind,
    ) -> bool {
        self.cells[ino][cells].iter().any(|c| {
            c.iter()
                .enumerate()
                .any(|(o, held)| o != owner && held.is_some_and(|h| h.conflicts_with(k)))
        })
    }

    fn share_conflict(&self, ino: usize, access: u8, deny: u8) -> bool {
        self.opens
            .iter()
            .filter(|o| o.open && o.ino == ino)
            .any(|o| access & o.deny != 0 || deny & o.access != 0)
    }

    fn release(&mut self, pred: impl Fn(usize) -> bool) {
        for file in &mut self.cells {
            for cell in file.iter_mut() {
                for (o, held) in cell.iter_mut().enumerate() {
                    if pred(o) {
                        *held = None;
                    }
                }
            }
        }
        for open in self.opens.iter_mut().filter(|o| pred(o.owner)) {
            open.open = false;
        }
    }
}

/// The manager's locks of one file as cells per owner; checks disjointness and merging.
fn manager_cells(m: &LockManager, ino: Ino, owners: &[Owner]) -> Vec<[Option<LockKind>; 4]> {
    let mut cells = vec![[None; 4]; CELLS];
    let mut locks = m.snapshot(ino).locks;
    locks.sort_by_key(|l| (l.owner.clone(), l.range.start()));
    for pair in locks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.owner == b.owner {
            assert!(a.range.last() < b.range.start(), "overlap {a:?} {b:?}");
            let touching = a.range.last() + 1 == b.range.start();
            assert!(!(touching && a.kind == b.kind), "unmerged {a:?} {b:?}");
        }
    }
    for l in &locks {
        let o = owners.iter().position(|x| x == &l.owner).unwrap();
        let last = if l.range.is_to_eof() {
            EOF_CELL
        } else {
            l.range.last() as usize
        };
        assert!(
            last < EOF_CELL || l.range.is_to_eof(),
            "range past the model: {l:?}"
        );
        for cell in &mut cells[l.range.start() as usize..=last] {
            assert!(cell[o].is_none(), "owner {o} twice on a byte");
            cell[o] = Some(l.kind);
        }
    }
    cells
}

fn apply(m: &LockManager, model: &mut Model, owners: &[Owner], op: &Op) {
    match *op {
        Op::Open {
            ino,
            owner,
            access: a,
            deny: d,
        } => {
            let got = m.open(INOS[ino], &owners[owner], access(a), access(d));
            assert_eq!(got.is_err(), model.share_conflict(ino, a, d), "{got:?}");
            if let Ok(id) = got {
                model.opens.push(ModelOpen {
                    id,
                    ino,
                    owner,
                    access: a,
                    deny: d,
                    open: true,
                });
            }
        }
        Op::Close { pick } => {
            if model.opens.is_empty() {
                return;
            }
            let n = model.opens.len();
            let open = &mut model.opens[pick % n];
            let got = m.close(open.id);
            assert_eq!(got.is_ok(), open.open, "{got:?}");
            if got.is_err() {
                assert_eq!(got, Err(LockError::UnknownOpen(open.id)));
            }
            open.open = false;
        }
        Op::Lock {
            ino,
            owner,
            excl,
            off,
            len,
        } => {
            let (k, range) = (kind(excl), ByteRange::new(off, len).unwrap());
            let want = model.conflicts(ino, owner, lock_cells(off, len), k);
            match m.lock(INOS[ino], &owners[owner], range, k) {
                Ok(()) => {
                    assert!(!want, "granted against the model");
                    for cell in &mut model.cells[ino][lock_cells(off, len)] {
                        cell[owner] = Some(k);
                    }
                }
                Err(LockError::Conflict(c)) => {
                    assert!(want, "refused against the model: {c:?}");
                    check_conflict(m, INOS[ino], &owners[owner], range, k, &c);
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        Op::Unlock {
            ino,
            owner,
            off,
            len,
        } => {
            let range = ByteRange::new(off, len).unwrap();
            let cells = &mut model.cells[ino][lock_cells(off, len)];
            let held = cells.iter().any(|c| c[owner].is_some());
            cells.iter_mut().for_each(|c| c[owner] = None);
            assert_eq!(m.unlock(INOS[ino], &owners[owner], range), held);
        }
        Op::Test {
            ino,
            owner,
            excl,
            off,
            len,
        } => {
            let (k, range) = (kind(excl), ByteRange::new(off, len).unwrap());
            let want = model.conflicts(ino, owner, lock_cells(off, len), k);
            let got = m.test_lock(INOS[ino], &owners[owner], range, k);
            assert_eq!(got.is_some(), want, "{got:?}");
            if let Some(c) = got {
                check_conflict(m, INOS[ino], &owners[owner], range, k, &c);
            }
        }
        Op::CheckIo {
            ino,
            owner,
            write,
            off,
            len,
        } => {
            let cells = off as usize..(off + len) as usize;
            let want = model.conflicts(ino, owner, cells, kind(write));
            let got = m.check_io(INOS[ino], &owners[owner], off, len, write);
            assert_eq!(got.is_err(), want, "{got:?}");
        }
        Op::ReleaseOwner { owner } => {
            m.release_owner(&owners[owner]);
            model.release(|o| o == owner);
        }
        Op::ReleaseClient { client } => {
            let (p, c) = (
                owners[client * 2].protocol,
                owners[client * 2].client.clone(),
            );
            m.release_client(p, &c);
            model.release(|o| o / 2 == client);
        }
    }
}

/// A reported conflict is a real lock of another owner that overlaps and conflicts.
fn check_conflict(
    m: &LockManager,
    ino: Ino,
    me: &Owner,
    range: ByteRange,
    k: LockKind,
    c: &dittofs_vfs::state::LockConflict,
) {
    assert_ne!(&c.owner, me);
    assert!(
        c.range.overlaps(&range) && c.kind.conflicts_with(k),
        "{c:?}"
    );
    let held = m.snapshot(ino).locks;
    assert!(
        held.iter()
            .any(|l| l.owner == c.owner && l.range == c.range && l.kind == c.kind)
    );
}

fn check_state(m: &LockManager, model: &Model, owners: &[Owner]) {
    for (i, ino) in INOS.iter().enumerate() {
        assert!(
            manager_cells(m, *ino, owners) == model.cells[i],
            "locks of {ino} differ"
        );
        let mut got: Vec<OpenId> = m.snapshot(*ino).opens.iter().map(|o| o.id).collect();
        let mut want: Vec<OpenId> = model
            .opens
            .iter()
            .filter(|o| o.open && o.ino == i)
            .map(|o| o.id)
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "opens of {ino}");
    }
    let in_use = INOS
        .iter()
        .filter(|ino| m.snapshot(**ino) != Default::default())
        .count();
    assert_eq!(m.inodes_in_use(), in_use, "empty per-file state kept");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn manager_agrees_with_the_byte_model(ops in prop::collection::vec(op(), 1..=50)) {
        let owners = owners();
        let m = LockManager::new();
        let mut model = Model::new();
        for op in &ops {
            apply(&m, &mut model, &owners, op);
            check_state(&m, &model, &owners);
        }
        m.release_client(Protocol::Nlm, &ClientId::Name(Arc::from("c1")));
        m.release_client(Protocol::Smb, &ClientId::Num(2));
        prop_assert_eq!(m.inodes_in_use(), 0);
    }
}
