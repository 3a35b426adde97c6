//! Crash test of the persistent backends.
//!
//! The parent re-executes this test binary as a child process (`crash_child`, selected by
//! the `DITTOFS_CRASH_CHILD` environment variable). The child opens the store and runs a
//! deterministic metadata workload (creates, mkdirs, links, renames, unlinks, orphans,
//! block-list changes with refcount adjustments, rmdirs; most commits `Durable`, some
//! `Buffered`) on share 1, generated from a seed, and after each durable commit returns
//! writes `D <prefix>` to stdout (a pipe): the first `<prefix>` ops are durable. A second
//! task concurrently creates `g<n>` entries on share 2 with durable commits and reports
//! `G <n>` (so durable commits share flushes).
//!
//! The parent SIGKILLs the child after a random 50-500 ms, reopens the store and checks:
//! - share 1 equals the model state after exactly `p` ops for some `p` between the last
//!   reported durable prefix and the next durable op (so every reported op is there,
//!   nothing is torn, and buffered ops are lost only as a suffix);
//! - share 2 holds `g0..g(k-1)` with `k` covering every reported `G`;
//! - invariants: entries name existing inodes, nlink matches the names, lookup agrees
//!   with readdir, the backend's cookie index agrees with its entries, INV-02 holds and
//!   no chunk row has refcount 0.
//!
//! Iterations continue on the same store (each child resumes from the recovered state),
//! `DITTOFS_CRASH_ITERS` of them (default 20).

// Test code (helpers outside `#[test]` functions included): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dittofs_metadata::conformance::{ShareDump, check_invariants, dump_share};
use dittofs_metadata::record::ChunkRow;
use dittofs_metadata::{
    Check, DirEntry, Durability, InodeRecord, MetadataStore, Op, SledStore, Txn,
};
use dittofs_types::{BlockRef, ContentHash, FileType, Ino, ObjectId, ShareId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const S: ShareId = ShareId(1);
const G: ShareId = ShareId(2);

// ---- deterministic randomness (splitmix64) ----

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Some element of a non-empty set (not uniform; deterministic).
    fn pick<T: Ord + Clone>(&mut self, set: &BTreeSet<T>) -> Option<T> {
        let n = set.len() as u64;
        if n == 0 {
            return None;
        }
        // Cheap: walk at most 64 steps from the front or the back.
        let i = self.below(n.min(64));
        if self.below(2) == 0 {
            set.iter().nth(i as usize).cloned()
        } else {
            set.iter().rev().nth(i as usize).cloned()
        }
    }
}

// ---- the model: the share's state, updated by interpreting each txn ----

#[derive(Clone, Default)]
struct State {
    next_ino: u64,
    inodes: BTreeMap<u64, InodeRecord>,
    entries: BTreeMap<(u64, Vec<u8>), DirEntry>,
    blocks: BTreeMap<u64, Vec<BlockRef>>,
    chunks: BTreeMap<ContentHash, ChunkRow>,
    orphans: BTreeSet<u64>,
    aux: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl State {
    fn apply(&mut self, txn: &Txn) {
        for c in &txn.checks {
            match c {
                Check::InodeChange { ino, change } => {
                    assert_eq!(self.inodes[&ino.0].change, *change, "model check")
                }
                Check::Dirent { dir, name, ino } => assert_eq!(
                    self.entries.get(&(dir.0, name.clone())).map(|e| e.ino),
                    *ino,
                    "model check"
                ),
            }
        }
        for op in &txn.ops {
            match op {
                Op::PutInode(r) => {
                    self.inodes.insert(r.ino.0, r.clone());
                }
                Op::DeleteInode(i) => {
                    self.inodes.remove(&i.0);
                    self.blocks.remove(&i.0);
                    self.orphans.remove(&i.0);
                }
                Op::PutDirent { dir, entry } => {
                    self.entries
                        .insert((dir.0, entry.name.clone()), entry.clone());
                }
                Op::DeleteDirent { dir, name } => {
                    self.entries.remove(&(dir.0, name.clone()));
                }
                Op::SetBlocks { ino, blocks } => {
                    if blocks.is_empty() {
                        self.blocks.remove(&ino.0);
                    } else {
                        self.blocks.insert(ino.0, blocks.clone());
                    }
                }
                Op::AdjustChunk { hash, delta, size } => {
                    let cur = self.chunks.get(hash).map(|r| r.refcount).unwrap_or(0);
                    let next = cur as i64 + delta;
                    assert!(next >= 0, "model underflow");
                    if next == 0 {
                        self.chunks.remove(hash);
                    } else {
                        self.chunks.insert(
                            *hash,
                            ChunkRow {
                                refcount: next as u64,
                                size: *size,
                            },
                        );
                    }
                }
                Op::AddOrphan(i) => {
                    self.orphans.insert(i.0);
                }
                Op::RemoveOrphan(i) => {
                    self.orphans.remove(&i.0);
                }
                Op::ReserveInodes { next_ino } => self.next_ino = self.next_ino.max(*next_ino),
                Op::PutAux { key, value } => {
                    self.aux.insert(key.clone(), value.clone());
                }
                Op::SetXattrs { .. } => panic!("the crash workload sets no attributes"),
                Op::DeleteAux { key } => {
                    self.aux.remove(key);
                }
            }
        }
    }

    fn dump(&self) -> ShareDump {
        let mut dirs = BTreeMap::new();
        for r in self.inodes.values() {
            if r.kind == FileType::Directory {
                let mut list: Vec<DirEntry> = self
                    .entries
                    .range((r.ino.0, Vec::new())..(r.ino.0 + 1, Vec::new()))
                    .map(|(_, e)| e.clone())
                    .collect();
                list.sort_by_key(|e| e.cookie);
                dirs.insert(r.ino, list);
            }
        }
        ShareDump {
            next_ino: self.next_ino,
            inodes: self.inodes.values().cloned().collect(),
            dirs,
            blocks: self
                .blocks
                .iter()
                .map(|(i, b)| (Ino(*i), b.clone()))
                .collect(),
            chunks: self.chunks.iter().map(|(h, r)| (*h, *r)).collect(),
            orphans: self.orphans.iter().map(|i| Ino(*i)).collect(),
            aux: self.aux.clone().into_iter().collect(),
            xattrs: Vec::new(),
        }
    }
}

fn ts(step: u64) -> Timestamp {
    Timestamp {
        secs: 1_700_000_000 + step as i64,
        nanos: (step % 1000) as u32,
    }
}

fn base_rec(ino: u64, kind: FileType, step: u64) -> InodeRecord {
    InodeRecord {
        ino: Ino(ino),
        generation: 1 + (ino % 7) as u32,
        kind,
        mode: if kind == FileType::Directory {
            0o755
        } else {
            0o644
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 1000,
        gid: 1000,
        size: 0,
        atime: ts(step),
        mtime: ts(step),
        ctime: ts(step),
        btime: ts(step),
        rdev: Default::default(),
        change: 1,
        parent: Ino(0),
        next_cookie: if kind == FileType::Directory { 3 } else { 0 },
        symlink_target: None,
        object_id: ObjectId::NOT_QUIESCED,
        create_verifier: None,
        applied_seq: 0,
    }
}

const HASH_POOL: u64 = 40;

fn pool_hash(n: u64) -> ContentHash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h[31] = 0xc3;
    ContentHash(h)
}

#[derive(Clone)]
struct Model {
    seed: u64,
    rng: Rng,
    /// Number of ops the state reflects (the init op counts as op 1).
    step: u64,
    st: State,
    /// Linked regular files.
    files: BTreeSet<u64>,
    dirs: BTreeSet<u64>,
    /// Names of each linked file.
    names_of: BTreeMap<u64, BTreeSet<(u64, Vec<u8>)>>,
    /// Name of each directory but the root.
    dir_name: BTreeMap<u64, (u64, Vec<u8>)>,
}

impl Model {
    /// The state after the init op (prefix 1).
    fn new(seed: u64) -> Model {
        let mut root = base_rec(1, FileType::Directory, 0);
        root.parent = Ino::ROOT;
        let mut st = State {
            next_ino: Ino::FIRST_ALLOC,
            ..State::default()
        };
        st.inodes.insert(1, root);
        Model {
            seed,
            rng: Rng(seed),
            step: 1,
            st,
            files: BTreeSet::new(),
            dirs: BTreeSet::from([1]),
            names_of: BTreeMap::new(),
            dir_name: BTreeMap::new(),
        }
    }

    fn init_txn(&self) -> Txn {
        let mut t = Txn::new(S);
        t.op(Op::PutInode(self.st.inodes[&1].clone()));
        t
    }

    fn rec(&self, ino: u64) -> InodeRecord {
        self.st.inodes[&ino].clone()
    }

    /// The directory record after taking one cookie (if `cookie`), with change + 1.
    fn touched(&self, dir: u64, take_cookie: bool) -> (InodeRecord, Check, u64) {
        let mut d = self.rec(dir);
        let check = Check::InodeChange {
            ino: Ino(dir),
            change: d.change,
        };
        let cookie = d.next_cookie;
        if take_cookie {
            d.next_cookie += 1;
        }
        d.change += 1;
        d.mtime = ts(self.step);
        d.ctime = ts(self.step);
        (d, check, cookie)
    }

    fn random_blocks(&mut self, max: u64) -> Vec<BlockRef> {
        let n = self.rng.below(max + 1);
        (0..n)
            .map(|i| BlockRef {
                hash: pool_hash(self.rng.below(HASH_POOL)),
                offset: i * 4096,
                size: 4096,
            })
            .collect()
    }

    fn alloc(&mut self, t: &mut Txn) -> u64 {
        let ino = self.st.next_ino;
        t.op(Op::ReserveInodes { next_ino: ino + 1 });
        ino
    }

    /// Generates the next op, applies it to the model and returns it.
    fn next(&mut self) -> (Txn, Durability, String) {
        self.step += 1;
        let step = self.step;
        let mut t = Txn::new(S);
        let desc;
        let roll = self.rng.below(100);
        let file = self.rng.pick(&self.files);
        let orphan = self.rng.pick(&self.st.orphans);
        let dir = self.rng.pick(&self.dirs).unwrap_or(1);
        let name = format!("n{step}").into_bytes();

        if roll < 8 && self.dirs.len() < 24 {
            // mkdir
            let ino = self.alloc(&mut t);
            let (mut p, check, cookie) = self.touched(dir, true);
            p.nlink += 1;
            let mut d = base_rec(ino, FileType::Directory, step);
            d.parent = Ino(dir);
            t.check(check).check(Check::Dirent {
                dir: Ino(dir),
                name: name.clone(),
                ino: None,
            });
            t.op(Op::PutInode(d)).op(Op::PutDirent {
                dir: Ino(dir),
                entry: DirEntry {
                    name: name.clone(),
                    ino: Ino(ino),
                    kind: FileType::Directory,
                    cookie,
                },
            });
            t.op(Op::PutInode(p));
            self.dirs.insert(ino);
            self.dir_name.insert(ino, (dir, name));
            desc = format!("mkdir {ino} in {dir}");
        } else if roll < 12 && self.dirs.len() > 1 {
            // rmdir of an empty directory (if the picked one is empty)
            let d = self.rng.pick(&self.dirs).unwrap_or(1);
            let empty = d != 1
                && self
                    .st
                    .entries
                    .range((d, Vec::new())..(d + 1, Vec::new()))
                    .next()
                    .is_none();
            if !empty {
                return self.fallback_create(t, dir, name);
            }
            let (parent, dname) = self.dir_name[&d].clone();
            let (mut p, check, _) = self.touched(parent, false);
            p.nlink -= 1;
            t.check(check)
                .check(Check::InodeChange {
                    ino: Ino(d),
                    change: self.st.inodes[&d].change,
                })
                .check(Check::Dirent {
                    dir: Ino(parent),
                    name: dname.clone(),
                    ino: Some(Ino(d)),
                });
            t.op(Op::DeleteDirent {
                dir: Ino(parent),
                name: dname,
            })
            .op(Op::DeleteInode(Ino(d)))
            .op(Op::PutInode(p));
            self.dirs.remove(&d);
            self.dir_name.remove(&d);
            desc = format!("rmdir {d}");
        } else if roll < 42 || file.is_none() {
            return self.fallback_create(t, dir, name);
        } else if roll < 52 {
            // link
            let f = file.unwrap_or_default();
            let mut r = self.rec(f);
            t.check(Check::InodeChange {
                ino: Ino(f),
                change: r.change,
            });
            r.nlink += 1;
            r.change += 1;
            r.ctime = ts(step);
            let (d, check, cookie) = self.touched(dir, true);
            t.check(check).check(Check::Dirent {
                dir: Ino(dir),
                name: name.clone(),
                ino: None,
            });
            t.op(Op::PutDirent {
                dir: Ino(dir),
                entry: DirEntry {
                    name: name.clone(),
                    ino: Ino(f),
                    kind: FileType::Regular,
                    cookie,
                },
            })
            .op(Op::PutInode(d))
            .op(Op::PutInode(r));
            self.names_of.entry(f).or_default().insert((dir, name));
            desc = format!("link {f} into {dir}");
        } else if roll < 67 {
            // rename one name of a file to a new name in some directory
            let f = file.unwrap_or_default();
            let Some((sdir, sname)) = self.names_of.get(&f).and_then(|s| s.first().cloned()) else {
                return self.fallback_create(t, dir, name);
            };
            let (sd, scheck, _) = self.touched(sdir, false);
            t.check(scheck).check(Check::Dirent {
                dir: Ino(sdir),
                name: sname.clone(),
                ino: Some(Ino(f)),
            });
            t.op(Op::DeleteDirent {
                dir: Ino(sdir),
                name: sname.clone(),
            });
            let cookie = if dir == sdir {
                let mut sd = sd;
                let c = sd.next_cookie;
                sd.next_cookie += 1;
                t.op(Op::PutInode(sd));
                c
            } else {
                let (dd, dcheck, c) = self.touched(dir, true);
                t.check(dcheck);
                t.op(Op::PutInode(sd)).op(Op::PutInode(dd));
                c
            };
            t.check(Check::Dirent {
                dir: Ino(dir),
                name: name.clone(),
                ino: None,
            });
            t.op(Op::PutDirent {
                dir: Ino(dir),
                entry: DirEntry {
                    name: name.clone(),
                    ino: Ino(f),
                    kind: FileType::Regular,
                    cookie,
                },
            });
            let mut r = self.rec(f);
            r.change += 1;
            r.ctime = ts(step);
            t.op(Op::PutInode(r));
            let names = self.names_of.entry(f).or_default();
            names.remove(&(sdir, sname));
            names.insert((dir, name));
            desc = format!("rename {f} from {sdir} to {dir}");
        } else if roll < 82 {
            // unlink one name
            let f = file.unwrap_or_default();
            let Some((sdir, sname)) = self.names_of.get(&f).and_then(|s| s.last().cloned()) else {
                return self.fallback_create(t, dir, name);
            };
            let (sd, scheck, _) = self.touched(sdir, false);
            let mut r = self.rec(f);
            t.check(scheck)
                .check(Check::Dirent {
                    dir: Ino(sdir),
                    name: sname.clone(),
                    ino: Some(Ino(f)),
                })
                .check(Check::InodeChange {
                    ino: Ino(f),
                    change: r.change,
                });
            t.op(Op::DeleteDirent {
                dir: Ino(sdir),
                name: sname.clone(),
            })
            .op(Op::PutInode(sd));
            r.nlink -= 1;
            r.change += 1;
            r.ctime = ts(step);
            let names = self.names_of.entry(f).or_default();
            names.remove(&(sdir, sname));
            if r.nlink > 0 {
                t.op(Op::PutInode(r));
                desc = format!("unlink name of {f}");
            } else {
                self.names_of.remove(&f);
                self.files.remove(&f);
                if self.rng.below(2) == 0 {
                    t.op(Op::PutInode(r)).op(Op::AddOrphan(Ino(f)));
                    desc = format!("unlink {f} -> orphan");
                } else {
                    let old = self.st.blocks.get(&f).cloned().unwrap_or_default();
                    t.op(Op::DeleteInode(Ino(f))).adjust_refs(&old, &[]);
                    desc = format!("unlink {f} -> deleted");
                }
            }
        } else if roll < 94 || orphan.is_none() {
            // new block list for a file (or an open orphan)
            let f = match (orphan, self.rng.below(4)) {
                (Some(o), 0) => o,
                _ => file.unwrap_or_default(),
            };
            let mut r = self.rec(f);
            t.check(Check::InodeChange {
                ino: Ino(f),
                change: r.change,
            });
            let old = self.st.blocks.get(&f).cloned().unwrap_or_default();
            let new = self.random_blocks(5);
            r.size = new.last().map(|b| b.end()).unwrap_or(0);
            r.change += 1;
            r.mtime = ts(step);
            r.applied_seq = step;
            t.op(Op::PutInode(r))
                .op(Op::SetBlocks {
                    ino: Ino(f),
                    blocks: new.clone(),
                })
                .adjust_refs(&old, &new);
            desc = format!("write {f}: {} refs", new.len());
        } else {
            // last close of an orphan
            let o = orphan.unwrap_or_default();
            let old = self.st.blocks.get(&o).cloned().unwrap_or_default();
            t.check(Check::InodeChange {
                ino: Ino(o),
                change: self.st.inodes[&o].change,
            });
            t.op(Op::DeleteInode(Ino(o))).adjust_refs(&old, &[]);
            desc = format!("close orphan {o}");
        }
        self.finish(t, desc)
    }

    fn fallback_create(
        &mut self,
        mut t: Txn,
        dir: u64,
        name: Vec<u8>,
    ) -> (Txn, Durability, String) {
        let step = self.step;
        let ino = self.alloc(&mut t);
        let (d, check, cookie) = self.touched(dir, true);
        let blocks = self.random_blocks(3);
        let mut r = base_rec(ino, FileType::Regular, step);
        r.size = blocks.last().map(|b| b.end()).unwrap_or(0);
        t.check(check).check(Check::Dirent {
            dir: Ino(dir),
            name: name.clone(),
            ino: None,
        });
        t.op(Op::PutInode(r))
            .op(Op::PutDirent {
                dir: Ino(dir),
                entry: DirEntry {
                    name: name.clone(),
                    ino: Ino(ino),
                    kind: FileType::Regular,
                    cookie,
                },
            })
            .op(Op::PutInode(d));
        if !blocks.is_empty() {
            t.op(Op::SetBlocks {
                ino: Ino(ino),
                blocks: blocks.clone(),
            });
        }
        t.adjust_refs(&[], &blocks);
        self.files.insert(ino);
        self.names_of.entry(ino).or_default().insert((dir, name));
        let desc = format!("create {ino} in {dir}");
        self.finish(t, desc)
    }

    fn finish(&mut self, t: Txn, desc: String) -> (Txn, Durability, String) {
        self.st.apply(&t);
        let d = if self.rng.below(5) == 0 {
            Durability::Buffered
        } else {
            Durability::Durable
        };
        (t, d, desc)
    }

    /// Advances without committing anything.
    fn advance_to(&mut self, prefix: u64) {
        while self.step < prefix {
            self.next();
        }
    }
}

// ---- backends ----

enum Opened {
    Sled(Arc<SledStore>),
}

impl Opened {
    fn open(kind: &str, path: &Path) -> Opened {
        match kind {
            "sled" => Opened::Sled(Arc::new(SledStore::open(path).expect("open sled"))),
            other => panic!("unknown backend {other}"),
        }
    }

    fn store(&self) -> Arc<dyn MetadataStore> {
        match self {
            Opened::Sled(s) => s.clone(),
        }
    }

    fn index_problems(&self) -> Vec<String> {
        match self {
            Opened::Sled(s) => s.verify_indexes().expect("verify indexes"),
        }
    }
}

// ---- the child ----

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Progress output that libtest does not capture.
fn note(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("{line}\n").as_bytes());
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Child mode: runs the workload until killed. A no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(kind) = std::env::var("DITTOFS_CRASH_CHILD") else {
        return;
    };
    let dir = std::env::var("DITTOFS_CRASH_DIR").expect("DITTOFS_CRASH_DIR");
    let seed = env_u64("DITTOFS_CRASH_SEED").expect("seed");
    let start = env_u64("DITTOFS_CRASH_START").expect("start");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let opened = Opened::open(&kind, Path::new(&dir));
        let store = opened.store();
        let mut model = Model::new(seed);
        model.advance_to(start);
        // Share 2: concurrent durable creates.
        let root2 = store.get_inode(G, Ino::ROOT).await.unwrap().expect("root2");
        let _group = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut root = root2;
                loop {
                    let n = root.next_cookie - 3;
                    root.next_cookie += 1;
                    root.change += 1;
                    let mut t = Txn::new(G);
                    t.op(Op::PutInode(base_rec(10 + n, FileType::Regular, n)))
                        .op(Op::PutDirent {
                            dir: Ino::ROOT,
                            entry: DirEntry {
                                name: format!("g{n}").into_bytes(),
                                ino: Ino(10 + n),
                                kind: FileType::Regular,
                                cookie: 3 + n,
                            },
                        })
                        .op(Op::PutInode(root.clone()));
                    store.commit(t, Durability::Durable).await.unwrap();
                    say(&format!("G {n}"));
                }
            })
        };
        say("READY");
        loop {
            let (t, d, desc) = model.next();
            store.commit(t, d).await.unwrap();
            if d == Durability::Durable {
                say(&format!("D {} {desc}", model.step));
            }
        }
    });
}

// ---- the parent ----

fn first_difference(a: &ShareDump, b: &ShareDump) -> String {
    if a.next_ino != b.next_ino {
        return format!("next_ino {} vs {}", a.next_ino, b.next_ino);
    }
    if a.inodes != b.inodes {
        let x: BTreeSet<u64> = a.inodes.iter().map(|r| r.ino.0).collect();
        let y: BTreeSet<u64> = b.inodes.iter().map(|r| r.ino.0).collect();
        return format!(
            "inodes differ; only in store {:?}, only in model {:?}",
            x.difference(&y).collect::<Vec<_>>(),
            y.difference(&x).collect::<Vec<_>>()
        );
    }
    if a.dirs != b.dirs {
        return "directory entries differ".into();
    }
    if a.blocks != b.blocks {
        return "block lists differ".into();
    }
    if a.chunks != b.chunks {
        return "chunk rows differ".into();
    }
    if a.orphans != b.orphans {
        return "orphans differ".into();
    }
    if a.aux != b.aux {
        return "auxiliary entries differ".into();
    }
    "equal".into()
}

fn run_crash_test(kind: &str) {
    let iters = env_u64("DITTOFS_CRASH_ITERS").unwrap_or(20);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let seed = env_u64("DITTOFS_CRASH_SEED").unwrap_or(now);
    let mut timing = Rng(seed ^ 0x5555);
    let dir = tempfile::tempdir().expect("tempdir");
    note(&format!(
        "[{kind}] seed {seed}, {iters} iterations in {}",
        dir.path().display()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Set up both shares and the init op.
    let mut base = Model::new(seed);
    rt.block_on(async {
        let opened = Opened::open(kind, dir.path());
        let s = opened.store();
        s.create_share(S, "crash", 0o755).await.unwrap();
        s.create_share(G, "group", 0o755).await.unwrap();
        s.commit(base.init_txn(), Durability::Durable)
            .await
            .unwrap();
        s.close().await.unwrap();
    });
    let mut g_count = 0u64;
    let mut total_reported = 0u64;

    for iter in 0..iters {
        let start = base.step;
        let delay = Duration::from_millis(50 + timing.below(451));
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "crash_child",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("DITTOFS_CRASH_CHILD", kind)
            .env("DITTOFS_CRASH_DIR", dir.path())
            .env("DITTOFS_CRASH_SEED", seed.to_string())
            .env("DITTOFS_CRASH_START", start.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stdout);
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.ends_with('\n') => {
                        if line.contains("READY") {
                            let _ = tx.send(line.clone());
                        }
                        lines.push(line);
                    }
                    Ok(_) => break, // torn last line
                }
            }
            lines
        });
        // The delay counts from the moment the child has opened the store.
        let ready = rx.recv_timeout(Duration::from_secs(60)).is_ok();
        let t0 = Instant::now();
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL child");
        let killed_after = t0.elapsed();
        let status = child.wait().expect("wait child");
        let lines = reader.join().expect("reader");
        assert!(
            ready,
            "child never became ready ({status:?}): {:?}",
            &lines[lines.len().saturating_sub(5)..]
        );
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "child died on its own: {status:?}"
            );
        }

        let mut last_d = start;
        let mut reported = 0u64;
        let mut last_g: Option<u64> = None;
        for l in &lines {
            let mut it = l.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
                (Some("D"), Some(p)) => {
                    assert!(p > last_d, "prefixes ascend");
                    last_d = p;
                    reported += 1;
                }
                (Some("G"), Some(n)) => last_g = Some(n),
                _ => {}
            }
        }
        total_reported += reported;

        // Candidate states: prefixes last_d ..= next durable op after it.
        let mut m = base.clone();
        m.advance_to(last_d);
        let mut candidates = vec![(m.step, m.st.dump())];
        loop {
            let (_, d, _) = m.next();
            candidates.push((m.step, m.st.dump()));
            if d == Durability::Durable {
                break;
            }
        }

        let (matched, g_now) = rt.block_on(async {
            let opened = Opened::open(kind, dir.path());
            let s = opened.store();
            let got = dump_share(s.as_ref(), S).await.unwrap();
            let matched = candidates.iter().find(|(_, c)| *c == got).map(|(p, _)| *p);
            let Some(matched) = matched else {
                let diffs: Vec<String> = candidates
                    .iter()
                    .map(|(p, c)| format!("prefix {p}: {}", first_difference(&got, c)))
                    .collect();
                panic!(
                    "[{kind}] iteration {iter}: recovered state matches no allowed prefix \
                     (start {start}, last durable {last_d}):\n{}",
                    diffs.join("\n")
                );
            };
            let bad = check_invariants(s.as_ref(), S).await.unwrap();
            assert!(bad.is_empty(), "[{kind}] share 1 invariants: {bad:#?}");
            let bad = check_invariants(s.as_ref(), G).await.unwrap();
            assert!(bad.is_empty(), "[{kind}] share 2 invariants: {bad:#?}");
            let bad = opened.index_problems();
            assert!(bad.is_empty(), "[{kind}] index problems: {bad:#?}");
            // Share 2: g0..g(k-1), covering every reported G.
            let entries = dump_share(s.as_ref(), G).await.unwrap().dirs[&Ino::ROOT].clone();
            let k = entries.len() as u64;
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(e.name, format!("g{i}").into_bytes(), "share 2 has a gap");
            }
            if let Some(n) = last_g {
                assert!(k > n, "[{kind}] durable g{n} lost (k = {k})");
            }
            assert!(
                k >= g_count,
                "[{kind}] share 2 went back from {g_count} to {k}"
            );
            s.close().await.unwrap();
            (matched, k)
        });
        note(&format!(
            "[{kind}] iter {iter:2}: SIGKILL {:3} ms after ready, {reported:4} durable ops \
             reported (prefix {start} -> {last_d}), recovered prefix {matched} \
             (+{} unreported), share 2: {} -> {g_now} entries",
            killed_after.as_millis(),
            matched - last_d,
            g_count,
        ));
        g_count = g_now;
        base.advance_to(matched);
        assert_eq!(base.step, matched);
    }
    note(&format!(
        "[{kind}] {iters} iterations, {total_reported} durable ops reported, final prefix {}, \
         seed {}",
        base.step, base.seed
    ));
}

#[test]
fn crash_sled() {
    if std::env::var("DITTOFS_CRASH_CHILD").is_ok() {
        return;
    }
    run_crash_test("sled");
}
