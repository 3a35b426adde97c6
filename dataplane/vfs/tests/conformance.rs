//! The VFS-level conformance suite: every test runs unchanged once per metadata backend
//! (`memory::<name>` and `sled::<name>`), through the full filesystem core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::{Fixture, fixture, read_all, write};
use dittofs_types::{ContentHash, FileType, Ino};
use dittofs_vfs::{CreateMode, Credentials, FsError, SetAttr, SetTime, Stability};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fn root() -> Credentials {
    Credentials::root()
}

fn sa_mode(mode: u32) -> SetAttr {
    SetAttr {
        mode: Some(mode),
        ..Default::default()
    }
}

async fn mkfile(fx: &Fixture, dir: Ino, name: &str) -> Ino {
    fx.fs
        .create(
            &root(),
            dir,
            name.as_bytes(),
            CreateMode::Guarded,
            &sa_mode(0o644),
        )
        .await
        .expect("create")
        .ino
}

async fn mkdir(fx: &Fixture, dir: Ino, name: &str) -> Ino {
    fx.fs
        .mkdir(&root(), dir, name.as_bytes(), &sa_mode(0o755))
        .await
        .expect("mkdir")
        .ino
}

/// Walks the whole share and checks: every entry names a live inode; nlink of every
/// non-directory equals the names pointing at it; nlink of every directory is 2 + its
/// subdirectories; INV-02 (sum of refcounts == sum of block-list lengths, per hash) and no
/// dangling refs. Returns the number of inodes.
pub async fn check_invariants(fx: &Fixture) -> usize {
    let share = fx.fs.share_id();
    let s = &fx.store;
    let mut inodes = BTreeMap::new();
    let mut after = None;
    loop {
        let page = s.scan_inodes(share, after, 500).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.ino);
        for r in page {
            inodes.insert(r.ino, r);
        }
    }
    let mut names: HashMap<Ino, u32> = HashMap::new();
    let mut subdirs: HashMap<Ino, u32> = HashMap::new();
    for (ino, r) in &inodes {
        if r.kind != FileType::Directory {
            continue;
        }
        let mut cookie = 0;
        loop {
            let page = s.read_dir(share, *ino, cookie, 100).await.unwrap();
            if page.is_empty() {
                break;
            }
            cookie = page.last().unwrap().cookie;
            for e in page {
                let child = inodes
                    .get(&e.ino)
                    .unwrap_or_else(|| panic!("dangling entry {:?} -> {}", e.name, e.ino));
                assert_eq!(child.kind, e.kind, "entry kind matches inode");
                *names.entry(e.ino).or_default() += 1;
                if e.kind == FileType::Directory {
                    *subdirs.entry(*ino).or_default() += 1;
                    assert_eq!(child.parent, *ino, "dir parent pointer");
                }
            }
        }
    }
    let orphans: Vec<Ino> = s.list_orphans(share).await.unwrap();
    for (ino, r) in &inodes {
        if r.kind == FileType::Directory {
            assert_eq!(
                r.nlink,
                2 + subdirs.get(ino).copied().unwrap_or(0),
                "dir {ino} nlink"
            );
        } else if !orphans.contains(ino) {
            assert_eq!(
                r.nlink,
                names.get(ino).copied().unwrap_or(0),
                "file {ino} nlink"
            );
            assert!(r.nlink > 0, "unreferenced inode {ino} not an orphan");
        }
    }
    // INV-02
    let mut refs: HashMap<ContentHash, u64> = HashMap::new();
    let mut total_refs = 0u64;
    let mut after = None;
    loop {
        let page = s.scan_blocks(share, after, 200).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.0);
        for (ino, blocks) in page {
            assert!(inodes.contains_key(&ino), "blocks of missing inode {ino}");
            dittofs_types::validate_blocks(&blocks).unwrap();
            for b in blocks {
                *refs.entry(b.hash).or_default() += 1;
                total_refs += 1;
            }
        }
    }
    let mut total_rc = 0u64;
    let mut rows = 0usize;
    let mut after = None;
    loop {
        let page = s.scan_chunks(share, after, 500).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.0);
        for (h, row) in page {
            rows += 1;
            total_rc += row.refcount;
            assert_eq!(
                refs.get(&h).copied().unwrap_or(0),
                row.refcount,
                "refcount of {h:?}"
            );
        }
    }
    assert_eq!(
        rows,
        refs.len(),
        "every referenced hash has a row (no dangling refs)"
    );
    assert_eq!(total_rc, total_refs, "INV-02");
    inodes.len()
}

// ---------------------------------------------------------------------------------------

async fn create_lookup_getattr(backend: &str) {
    let fx = fixture(backend).await;
    let f = mkfile(&fx, Ino::ROOT, "a").await;
    let a = fx.fs.lookup(&root(), Ino::ROOT, b"a").await.unwrap();
    assert_eq!(a.ino, f);
    assert_eq!(a.kind, FileType::Regular);
    assert_eq!(a.nlink, 1);
    assert_ne!(a.ino.0, 0);
    assert_eq!(
        fx.fs.lookup(&root(), Ino::ROOT, b".").await.unwrap().ino,
        Ino::ROOT
    );
    assert_eq!(
        fx.fs.lookup(&root(), Ino::ROOT, b"..").await.unwrap().ino,
        Ino::ROOT
    );
    assert_eq!(
        fx.fs.lookup(&root(), Ino::ROOT, b"nope").await.unwrap_err(),
        FsError::NoEnt
    );
    assert_eq!(
        fx.fs.lookup(&root(), f, b"x").await.unwrap_err(),
        FsError::NotDir
    );
    check_invariants(&fx).await;
}

async fn hostile_names_rejected(backend: &str) {
    let fx = fixture(backend).await;
    let r = root();
    let m = CreateMode::Guarded;
    let sa = sa_mode(0o644);
    assert!(matches!(
        fx.fs.create(&r, Ino::ROOT, b"", m, &sa).await,
        Err(FsError::Inval(_))
    ));
    assert!(matches!(
        fx.fs.create(&r, Ino::ROOT, b"a/b", m, &sa).await,
        Err(FsError::Inval(_))
    ));
    assert!(matches!(
        fx.fs.create(&r, Ino::ROOT, b"a\0b", m, &sa).await,
        Err(FsError::Inval(_))
    ));
    assert_eq!(
        fx.fs
            .create(&r, Ino::ROOT, &[b'x'; 256], m, &sa)
            .await
            .unwrap_err(),
        FsError::NameTooLong
    );
    assert!(
        fx.fs
            .create(&r, Ino::ROOT, &[b'x'; 255], m, &sa)
            .await
            .is_ok()
    );
    assert_eq!(
        fx.fs.create(&r, Ino::ROOT, b".", m, &sa).await.unwrap_err(),
        FsError::Exist
    );
    assert_eq!(
        fx.fs.mkdir(&r, Ino::ROOT, b"..", &sa).await.unwrap_err(),
        FsError::Exist
    );
    assert!(matches!(
        fx.fs.remove(&r, Ino::ROOT, b".").await,
        Err(FsError::Inval(_))
    ));
    assert_eq!(
        fx.fs.rmdir(&r, Ino::ROOT, b"..").await.unwrap_err(),
        FsError::NotEmpty
    );
    assert!(matches!(
        fx.fs.rename(&r, Ino::ROOT, b".", Ino::ROOT, b"z").await,
        Err(FsError::Inval(_))
    ));
    assert_eq!(
        fx.fs.lookup(&r, Ino::ROOT, &[b'y'; 256]).await.unwrap_err(),
        FsError::NameTooLong
    );
    check_invariants(&fx).await;
}

async fn mkdir_rmdir_nlink(backend: &str) {
    let fx = fixture(backend).await;
    let d = mkdir(&fx, Ino::ROOT, "d").await;
    assert_eq!(fx.fs.getattr(Ino::ROOT).await.unwrap().nlink, 3);
    let _e = mkdir(&fx, d, "e").await;
    let f = mkfile(&fx, d, "f").await;
    assert_eq!(fx.fs.getattr(d).await.unwrap().nlink, 3);
    assert_eq!(
        fx.fs.lookup(&root(), d, b"..").await.unwrap().ino,
        Ino::ROOT
    );
    assert_eq!(
        fx.fs.rmdir(&root(), Ino::ROOT, b"d").await.unwrap_err(),
        FsError::NotEmpty
    );
    assert_eq!(
        fx.fs.rmdir(&root(), d, b"f").await.unwrap_err(),
        FsError::NotDir
    );
    assert_eq!(
        fx.fs.remove(&root(), d, b"e").await.unwrap_err(),
        FsError::IsDir
    );
    fx.fs.remove(&root(), d, b"f").await.unwrap();
    assert_eq!(fx.fs.getattr(f).await.unwrap_err(), FsError::Stale);
    fx.fs.rmdir(&root(), d, b"e").await.unwrap();
    assert_eq!(fx.fs.getattr(d).await.unwrap().nlink, 2);
    fx.fs.rmdir(&root(), Ino::ROOT, b"d").await.unwrap();
    assert_eq!(fx.fs.getattr(Ino::ROOT).await.unwrap().nlink, 2);
    assert_eq!(check_invariants(&fx).await, 1);
}

async fn hard_links_across_directories(backend: &str) {
    let fx = fixture(backend).await;
    let a = mkdir(&fx, Ino::ROOT, "a").await;
    let b = mkdir(&fx, Ino::ROOT, "b").await;
    let f = mkfile(&fx, a, "f").await;
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&fx, f, 0, &data).await;
    fx.fs.flush_file(f).await.unwrap();
    let at = fx.fs.link(&root(), f, b, b"g").await.unwrap();
    assert_eq!(at.nlink, 2);
    assert_eq!(
        fx.fs.link(&root(), f, b, b"g").await.unwrap_err(),
        FsError::Exist
    );
    assert_eq!(
        fx.fs.link(&root(), a, b, b"dirlink").await.unwrap_err(),
        FsError::Perm
    );
    check_invariants(&fx).await;
    fx.fs.remove(&root(), a, b"f").await.unwrap();
    assert_eq!(fx.fs.getattr(f).await.unwrap().nlink, 1);
    assert_eq!(read_all(&fx, f).await, data);
    check_invariants(&fx).await;
    fx.fs.remove(&root(), b, b"g").await.unwrap();
    assert_eq!(fx.fs.getattr(f).await.unwrap_err(), FsError::Stale);
    check_invariants(&fx).await;
    assert!(
        fx.store
            .scan_chunks(fx.fs.share_id(), None, 10)
            .await
            .unwrap()
            .is_empty(),
        "refs released"
    );
}

async fn rename_overwrite_and_type_rules(backend: &str) {
    let fx = fixture(backend).await;
    let x = mkfile(&fx, Ino::ROOT, "x").await;
    let y = mkfile(&fx, Ino::ROOT, "y").await;
    write(&fx, x, 0, b"xxxx").await;
    write(&fx, y, 0, &vec![9u8; 10_000]).await;
    fx.fs.flush_all().await.unwrap();
    fx.fs
        .rename(&root(), Ino::ROOT, b"x", Ino::ROOT, b"y")
        .await
        .unwrap();
    assert_eq!(fx.fs.lookup(&root(), Ino::ROOT, b"y").await.unwrap().ino, x);
    assert_eq!(
        fx.fs.lookup(&root(), Ino::ROOT, b"x").await.unwrap_err(),
        FsError::NoEnt
    );
    assert_eq!(fx.fs.getattr(y).await.unwrap_err(), FsError::Stale);
    assert_eq!(read_all(&fx, x).await, b"xxxx");
    check_invariants(&fx).await;
    let d1 = mkdir(&fx, Ino::ROOT, "d1").await;
    let d2 = mkdir(&fx, Ino::ROOT, "d2").await;
    mkfile(&fx, d2, "inner").await;
    assert_eq!(
        fx.fs
            .rename(&root(), Ino::ROOT, b"y", Ino::ROOT, b"d1")
            .await
            .unwrap_err(),
        FsError::IsDir
    );
    assert_eq!(
        fx.fs
            .rename(&root(), Ino::ROOT, b"d1", Ino::ROOT, b"y")
            .await
            .unwrap_err(),
        FsError::NotDir
    );
    assert_eq!(
        fx.fs
            .rename(&root(), Ino::ROOT, b"d1", Ino::ROOT, b"d2")
            .await
            .unwrap_err(),
        FsError::NotEmpty
    );
    fx.fs
        .rename(&root(), Ino::ROOT, b"d2", Ino::ROOT, b"d1")
        .await
        .unwrap();
    assert_eq!(
        fx.fs.lookup(&root(), Ino::ROOT, b"d1").await.unwrap().ino,
        d2
    );
    assert_eq!(fx.fs.getattr(d1).await.unwrap_err(), FsError::Stale);
    assert_eq!(fx.fs.getattr(Ino::ROOT).await.unwrap().nlink, 3);
    check_invariants(&fx).await;
}

async fn rename_directory_across_and_into_subtree(backend: &str) {
    let fx = fixture(backend).await;
    let a = mkdir(&fx, Ino::ROOT, "a").await;
    let b = mkdir(&fx, a, "b").await;
    let c = mkdir(&fx, b, "c").await;
    assert!(matches!(
        fx.fs.rename(&root(), Ino::ROOT, b"a", c, b"a2").await,
        Err(FsError::Inval(_))
    ));
    assert!(matches!(
        fx.fs.rename(&root(), Ino::ROOT, b"a", a, b"self").await,
        Err(FsError::Inval(_))
    ));
    fx.fs
        .rename(&root(), b, b"c", Ino::ROOT, b"c")
        .await
        .unwrap();
    assert_eq!(
        fx.fs.lookup(&root(), c, b"..").await.unwrap().ino,
        Ino::ROOT
    );
    assert_eq!(fx.fs.getattr(b).await.unwrap().nlink, 2);
    assert_eq!(fx.fs.getattr(Ino::ROOT).await.unwrap().nlink, 4);
    // same inode under two names: rename is a no-op
    let f = mkfile(&fx, a, "f").await;
    fx.fs.link(&root(), f, a, b"g").await.unwrap();
    fx.fs.rename(&root(), a, b"f", a, b"g").await.unwrap();
    assert_eq!(fx.fs.getattr(f).await.unwrap().nlink, 2);
    check_invariants(&fx).await;
}

async fn readdir_cookies_stable_under_concurrency(backend: &str) {
    let fx = fixture(backend).await;
    let d = mkdir(&fx, Ino::ROOT, "d").await;
    for i in 0..300 {
        mkfile(&fx, d, &format!("keep{i}")).await;
    }
    let fs = fx.fs.clone();
    let churn = tokio::spawn(async move {
        for i in 0..200 {
            let name = format!("tmp{i}");
            fs.create(
                &root(),
                d,
                name.as_bytes(),
                CreateMode::Guarded,
                &SetAttr::default(),
            )
            .await
            .unwrap();
            if i % 2 == 0 {
                fs.remove(&root(), d, name.as_bytes()).await.unwrap();
            }
        }
    });
    let mut seen = BTreeMap::new();
    let mut cookie = 0;
    let mut verifier = 0;
    loop {
        let page = fx
            .fs
            .readdir(&root(), d, cookie, verifier, 7)
            .await
            .unwrap();
        verifier = page.verifier;
        for e in &page.entries {
            assert!(e.cookie > cookie, "cookies ascend");
            assert!(
                seen.insert(e.name.clone(), e.cookie).is_none(),
                "duplicate {:?}",
                e.name
            );
        }
        if let Some(l) = page.entries.last() {
            cookie = l.cookie;
        }
        if page.eof {
            break;
        }
        tokio::task::yield_now().await;
    }
    churn.await.unwrap();
    for i in 0..300 {
        assert!(
            seen.contains_key(format!("keep{i}").as_bytes()),
            "keep{i} missing"
        );
    }
    // a wrong verifier is refused once past the start
    assert_eq!(
        fx.fs
            .readdir(&root(), d, cookie, verifier ^ 1, 7)
            .await
            .unwrap_err(),
        FsError::BadCookie
    );
    check_invariants(&fx).await;
}

async fn large_directory(backend: &str) {
    let fx = fixture(backend).await;
    let d = mkdir(&fx, Ino::ROOT, "big").await;
    let n = 10_000usize;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let fs = fx.fs.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(8) {
                fs.create(
                    &root(),
                    d,
                    format!("f{i:06}").as_bytes(),
                    CreateMode::Guarded,
                    &SetAttr::default(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut count = 0;
    let mut cookie = 0;
    loop {
        let page = fx.fs.readdir(&root(), d, cookie, 0, 1000).await.unwrap();
        count += page.entries.len();
        if let Some(l) = page.entries.last() {
            cookie = l.cookie;
        }
        if page.eof {
            break;
        }
    }
    assert_eq!(count, n);
    assert!(fx.fs.lookup(&root(), d, b"f004321").await.is_ok());
}

async fn permissions_and_sticky(backend: &str) {
    let fx = fixture(backend).await;
    let alice = Credentials::user(1000, 1000);
    let bob = Credentials::user(1001, 1001);
    let tmp = fx
        .fs
        .mkdir(&root(), Ino::ROOT, b"tmp", &sa_mode(0o1777))
        .await
        .unwrap()
        .ino;
    let af = fx
        .fs
        .create(&alice, tmp, b"af", CreateMode::Guarded, &sa_mode(0o644))
        .await
        .unwrap();
    assert_eq!((af.uid, af.gid), (1000, 1000));
    assert_eq!(
        fx.fs.remove(&bob, tmp, b"af").await.unwrap_err(),
        FsError::Perm
    );
    assert_eq!(
        fx.fs
            .rename(&bob, tmp, b"af", tmp, b"bf")
            .await
            .unwrap_err(),
        FsError::Perm
    );
    assert_eq!(
        fx.fs
            .write(
                &bob,
                af.ino,
                0,
                Bytes::from_static(b"x"),
                Stability::FileSync
            )
            .await
            .unwrap_err(),
        FsError::Access
    );
    assert_eq!(
        fx.fs
            .setattr(&bob, af.ino, &sa_mode(0o777), None)
            .await
            .unwrap_err(),
        FsError::Perm
    );
    let own = SetAttr {
        uid: Some(1001),
        ..Default::default()
    };
    assert_eq!(
        fx.fs.setattr(&alice, af.ino, &own, None).await.unwrap_err(),
        FsError::Perm
    );
    fx.fs.remove(&alice, tmp, b"af").await.unwrap();
    // private dir: no search permission for others
    let p = fx
        .fs
        .mkdir(&alice, tmp, b"private", &sa_mode(0o700))
        .await
        .unwrap()
        .ino;
    assert_eq!(
        fx.fs.lookup(&bob, p, b"x").await.unwrap_err(),
        FsError::Access
    );
    assert_eq!(
        fx.fs
            .create(&bob, p, b"x", CreateMode::Guarded, &SetAttr::default())
            .await
            .unwrap_err(),
        FsError::Access
    );
    // access mask
    let (granted, _) = fx
        .fs
        .access(&bob, p, dittofs_vfs::access::ALL)
        .await
        .unwrap();
    assert_eq!(granted, 0);
    let (granted, _) = fx
        .fs
        .access(&alice, p, dittofs_vfs::access::ALL)
        .await
        .unwrap();
    assert_ne!(granted & dittofs_vfs::access::LOOKUP, 0);
    check_invariants(&fx).await;
}

async fn setgid_inheritance_and_suid_clearing(backend: &str) {
    let fx = fixture(backend).await;
    let alice = Credentials {
        groups: vec![50],
        ..Credentials::user(1000, 1000)
    };
    let sg = fx
        .fs
        .mkdir(&root(), Ino::ROOT, b"sg", &sa_mode(0o2777))
        .await
        .unwrap();
    fx.fs
        .setattr(
            &root(),
            sg.ino,
            &SetAttr {
                gid: Some(50),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let f = fx
        .fs
        .create(&alice, sg.ino, b"f", CreateMode::Guarded, &sa_mode(0o644))
        .await
        .unwrap();
    assert_eq!(f.gid, 50, "files inherit the setgid dir's group");
    let sub = fx
        .fs
        .mkdir(&alice, sg.ino, b"sub", &sa_mode(0o755))
        .await
        .unwrap();
    assert_eq!(sub.gid, 50);
    assert_ne!(sub.mode & 0o2000, 0, "subdirs inherit setgid");
    // write by a non-root clears suid and group-exec sgid
    let x = fx
        .fs
        .create(
            &alice,
            Ino::ROOT,
            b"x",
            CreateMode::Guarded,
            &sa_mode(0o6777),
        )
        .await
        .unwrap();
    assert_eq!(x.mode & 0o6000, 0o6000);
    fx.fs
        .write(
            &alice,
            x.ino,
            0,
            Bytes::from_static(b"hi"),
            Stability::Unstable,
        )
        .await
        .unwrap();
    assert_eq!(fx.fs.getattr(x.ino).await.unwrap().mode & 0o6000, 0);
    // chown clears suid even by root
    fx.fs
        .setattr(&root(), x.ino, &sa_mode(0o4755), None)
        .await
        .unwrap();
    fx.fs
        .setattr(
            &root(),
            x.ino,
            &SetAttr {
                uid: Some(5),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(fx.fs.getattr(x.ino).await.unwrap().mode, 0o755);
    check_invariants(&fx).await;
}

async fn timestamps_follow_posix(backend: &str) {
    let fx = fixture(backend).await;
    let t0 = fx.fs.getattr(Ino::ROOT).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let f = mkfile(&fx, Ino::ROOT, "t").await;
    let t1 = fx.fs.getattr(Ino::ROOT).await.unwrap();
    assert!(
        t1.mtime > t0.mtime && t1.ctime > t0.ctime,
        "create updates parent times"
    );
    let a0 = fx.fs.getattr(f).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    fx.fs
        .setattr(&root(), f, &sa_mode(0o600), None)
        .await
        .unwrap();
    let a1 = fx.fs.getattr(f).await.unwrap();
    assert!(
        a1.ctime > a0.ctime && a1.mtime == a0.mtime,
        "chmod: ctime only"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    write(&fx, f, 0, b"abc").await;
    let a2 = fx.fs.getattr(f).await.unwrap();
    assert!(
        a2.mtime > a1.mtime && a2.ctime > a1.ctime,
        "write updates mtime/ctime"
    );
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(
        fx.fs.getattr(f).await.unwrap().mtime,
        a2.mtime,
        "flush keeps the write's mtime"
    );
    let when = dittofs_types::Timestamp {
        secs: 1_000_000_000,
        nanos: 123,
    };
    let sa = SetAttr {
        mtime: SetTime::Client(when),
        atime: SetTime::Client(when),
        ..Default::default()
    };
    fx.fs.setattr(&root(), f, &sa, None).await.unwrap();
    let a3 = fx.fs.getattr(f).await.unwrap();
    assert_eq!((a3.mtime, a3.atime), (when, when));
    // an explicit mtime wins over an earlier unflushed write
    write(&fx, f, 3, b"def").await;
    fx.fs.setattr(&root(), f, &sa, None).await.unwrap();
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(fx.fs.getattr(f).await.unwrap().mtime, when);
}

/// The change attribute (NFSv4's cache validator) moves with every write, before any
/// flush publishes it; a flush does not move it; it never comes back to an earlier value
/// for other content, not even after a crash with unflushed writes (recovery).
async fn change_attribute_follows_writes(backend: &str) {
    let fx = fixture(backend).await;
    let f = mkfile(&fx, Ino::ROOT, "c").await;
    let change = |fx: &Fixture| {
        let fs = fx.fs.clone();
        async move { fs.getattr(f).await.unwrap().change }
    };
    let c0 = change(&fx).await;
    write(&fx, f, 0, b"old-content").await;
    let c1 = change(&fx).await;
    write(&fx, f, 0, b"NEW").await;
    let c2 = change(&fx).await;
    assert!(c0 < c1 && c1 < c2, "writes move it: {c0} {c1} {c2}");
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(change(&fx).await, c2, "a flush does not move it");
    write(&fx, f, 3, b"-").await;
    let c3 = change(&fx).await;
    fx.fs
        .setattr(&root(), f, &sa_mode(0o600), None)
        .await
        .unwrap();
    let c4 = change(&fx).await;
    assert!(c2 < c3 && c3 < c4, "write, then chmod: {c2} {c3} {c4}");
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(change(&fx).await, c4, "a flush does not move it");
    for (i, w) in [b"x", b"y", b"z"].iter().enumerate() {
        write(&fx, f, i as u64, *w).await;
    }
    let before_crash = change(&fx).await;
    assert!(
        before_crash >= c4 + 3,
        "three writes: {c4} -> {before_crash}"
    );
    // A crash: the writes are only in the journal; the metadata is as last flushed.
    let Fixture {
        fs,
        store,
        engine,
        dir,
    } = fx;
    drop(fs);
    drop(engine);
    let cfg = dittofs_blockstore::EngineConfig {
        chunker: common::small_chunker(),
        ..Default::default()
    };
    let (engine, recovered) =
        dittofs_blockstore::Engine::open(&dir.path().join("blocks"), cfg).unwrap();
    assert!(!recovered.is_empty(), "the writes are in the journal");
    let fx = common::reopen(store, Arc::new(engine), dir).await;
    fx.fs.recover(&recovered).await.unwrap();
    let after = change(&fx).await;
    assert!(
        after >= before_crash,
        "after recovery: {before_crash} -> {after}"
    );
    assert_eq!(read_all(&fx, f).await, b"xyz-content");
}

async fn create_modes(backend: &str) {
    let fx = fixture(backend).await;
    let v = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let a = fx
        .fs
        .create(
            &root(),
            Ino::ROOT,
            b"e",
            CreateMode::Exclusive(v),
            &SetAttr::default(),
        )
        .await
        .unwrap();
    let again = fx
        .fs
        .create(
            &root(),
            Ino::ROOT,
            b"e",
            CreateMode::Exclusive(v),
            &SetAttr::default(),
        )
        .await
        .unwrap();
    assert_eq!(a.ino, again.ino, "retransmitted exclusive create succeeds");
    let other = [9u8; 8];
    assert_eq!(
        fx.fs
            .create(
                &root(),
                Ino::ROOT,
                b"e",
                CreateMode::Exclusive(other),
                &SetAttr::default()
            )
            .await
            .unwrap_err(),
        FsError::Exist
    );
    assert_eq!(
        fx.fs
            .create(
                &root(),
                Ino::ROOT,
                b"e",
                CreateMode::Guarded,
                &SetAttr::default()
            )
            .await
            .unwrap_err(),
        FsError::Exist
    );
    write(&fx, a.ino, 0, b"hello").await;
    let u = fx
        .fs
        .create(
            &root(),
            Ino::ROOT,
            b"e",
            CreateMode::Unchecked,
            &SetAttr {
                size: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.ino, a.ino);
    assert_eq!(u.size, 0);
    check_invariants(&fx).await;
}

async fn write_read_truncate_holes(backend: &str) {
    let fx = fixture(backend).await;
    let f = mkfile(&fx, Ino::ROOT, "data").await;
    let mut model = vec![0u8; 0];
    let put = |m: &mut Vec<u8>, off: usize, d: &[u8]| {
        if m.len() < off + d.len() {
            m.resize(off + d.len(), 0);
        }
        m[off..off + d.len()].copy_from_slice(d);
    };
    let a: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&fx, f, 0, &a).await;
    put(&mut model, 0, &a);
    assert_eq!(read_all(&fx, f).await, model, "read before flush");
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(read_all(&fx, f).await, model, "read after flush");
    write(&fx, f, 100_000, b"tail").await; // leaves a hole 50_000..100_000
    put(&mut model, 100_000, b"tail");
    write(&fx, f, 1234, b"patch").await;
    put(&mut model, 1234, b"patch");
    assert_eq!(read_all(&fx, f).await, model);
    fx.fs.flush_file(f).await.unwrap();
    assert_eq!(read_all(&fx, f).await, model);
    check_invariants(&fx).await;
    let sa = SetAttr {
        size: Some(30_001),
        ..Default::default()
    };
    fx.fs.setattr(&root(), f, &sa, None).await.unwrap();
    model.truncate(30_001);
    assert_eq!(read_all(&fx, f).await, model);
    let sa = SetAttr {
        size: Some(40_000),
        ..Default::default()
    };
    fx.fs.setattr(&root(), f, &sa, None).await.unwrap();
    model.resize(40_000, 0);
    assert_eq!(read_all(&fx, f).await, model, "grown tail reads zeros");
    write(&fx, f, 39_990, b"0123456789abc").await;
    put(&mut model, 39_990, b"0123456789abc");
    let sa = SetAttr {
        size: Some(39_995),
        ..Default::default()
    };
    fx.fs.setattr(&root(), f, &sa, None).await.unwrap();
    model.truncate(39_995);
    assert_eq!(
        read_all(&fx, f).await,
        model,
        "truncate flushes pending writes first"
    );
    check_invariants(&fx).await;
    let attr = fx.fs.getattr(f).await.unwrap();
    assert_eq!(attr.size, 39_995);
}

async fn handles_stale_and_bad(backend: &str) {
    let fx = fixture(backend).await;
    let f = mkfile(&fx, Ino::ROOT, "h").await;
    let h = fx.fs.handle_of(f).await.unwrap();
    assert_eq!(fx.fs.resolve(&h).await.unwrap(), f);
    fx.fs.remove(&root(), Ino::ROOT, b"h").await.unwrap();
    assert_eq!(fx.fs.resolve(&h).await.unwrap_err(), FsError::Stale);
    let mut wrong_gen = fx.fs.root_handle().await.unwrap();
    wrong_gen.generation ^= 0x55;
    assert_eq!(fx.fs.resolve(&wrong_gen).await.unwrap_err(), FsError::Stale);
    assert_eq!(
        dittofs_vfs::FileHandle::decode(b"garbage").unwrap_err(),
        FsError::BadHandle
    );
}

async fn symlink_and_special_files(backend: &str) {
    let fx = fixture(backend).await;
    let s = fx
        .fs
        .symlink(
            &root(),
            Ino::ROOT,
            b"l",
            b"../target/x",
            &SetAttr::default(),
        )
        .await
        .unwrap();
    assert_eq!(s.kind, FileType::Symlink);
    assert_eq!(s.size, 11);
    assert_eq!(
        fx.fs.readlink(&root(), s.ino).await.unwrap(),
        b"../target/x"
    );
    let dev = dittofs_types::DeviceId { major: 8, minor: 1 };
    let b = fx
        .fs
        .mknod(
            &root(),
            Ino::ROOT,
            b"blk",
            dittofs_vfs::SpecialKind::Block(dev),
            &sa_mode(0o600),
        )
        .await
        .unwrap();
    assert_eq!((b.kind, b.rdev), (FileType::BlockDevice, dev));
    let p = fx
        .fs
        .mknod(
            &root(),
            Ino::ROOT,
            b"fifo",
            dittofs_vfs::SpecialKind::Fifo,
            &sa_mode(0o600),
        )
        .await
        .unwrap();
    assert_eq!(p.kind, FileType::Fifo);
    assert_eq!(
        fx.fs
            .mknod(
                &Credentials::user(5, 5),
                Ino::ROOT,
                b"c",
                dittofs_vfs::SpecialKind::Char(dev),
                &SetAttr::default()
            )
            .await
            .unwrap_err(),
        FsError::Perm
    );
    assert!(fx.fs.read(&root(), p.ino, 0, 10).await.is_err());
    check_invariants(&fx).await;
}

async fn dedup_copy_shares_chunks(backend: &str) {
    let fx = fixture(backend).await;
    let data: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    let a = mkfile(&fx, Ino::ROOT, "a").await;
    let b = mkfile(&fx, Ino::ROOT, "b").await;
    write(&fx, a, 0, &data).await;
    write(&fx, b, 0, &data).await;
    fx.fs.flush_all().await.unwrap();
    let ba = fx.store.get_blocks(fx.fs.share_id(), a).await.unwrap();
    let bb = fx.store.get_blocks(fx.fs.share_id(), b).await.unwrap();
    assert_eq!(ba, bb, "identical content, identical chunks");
    let rows = fx
        .store
        .scan_chunks(fx.fs.share_id(), None, 10_000)
        .await
        .unwrap();
    assert!(rows.iter().all(|(_, r)| r.refcount >= 2));
    let ra = fx
        .store
        .get_inode(fx.fs.share_id(), a)
        .await
        .unwrap()
        .unwrap();
    let rb = fx
        .store
        .get_inode(fx.fs.share_id(), b)
        .await
        .unwrap()
        .unwrap();
    assert!(ra.object_id.is_quiesced());
    assert_eq!(ra.object_id, rb.object_id, "same content, same ObjectID");
    check_invariants(&fx).await;
}

/// Concurrent create/write/link/unlink/rename/copy from several tasks with INV-02, no
/// dangling references and nlink consistency checked at quiescent points.
async fn concurrent_fuzz_keeps_invariants(backend: &str) {
    let fx = fixture(backend).await;
    let dirs = [
        mkdir(&fx, Ino::ROOT, "d0").await,
        mkdir(&fx, Ino::ROOT, "d1").await,
        mkdir(&fx, Ino::ROOT, "d2").await,
    ];
    for round in 0..4u64 {
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let fs = fx.fs.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = round * 1000 + w * 7 + 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for _ in 0..60 {
                    let d = dirs[(next() % 3) as usize];
                    let d2 = dirs[(next() % 3) as usize];
                    let name = format!("n{}", next() % 12);
                    let name2 = format!("n{}", next() % 12);
                    let r = root();
                    match next() % 7 {
                        0 => {
                            let _ = fs
                                .create(
                                    &r,
                                    d,
                                    name.as_bytes(),
                                    CreateMode::Unchecked,
                                    &SetAttr::default(),
                                )
                                .await;
                        }
                        1 => {
                            if let Ok(a) = fs.lookup(&r, d, name.as_bytes()).await {
                                let len = (next() % 6000) as usize;
                                let byte = (next() % 256) as u8;
                                let off = next() % 8000;
                                let _ = fs
                                    .write(
                                        &r,
                                        a.ino,
                                        off,
                                        Bytes::from(vec![byte; len]),
                                        Stability::Unstable,
                                    )
                                    .await;
                                if next() % 3 == 0 {
                                    let _ = fs.flush_file(a.ino).await;
                                }
                            }
                        }
                        2 => {
                            if let Ok(a) = fs.lookup(&r, d, name.as_bytes()).await {
                                let _ = fs.link(&r, a.ino, d2, name2.as_bytes()).await;
                            }
                        }
                        3 => {
                            let _ = fs.remove(&r, d, name.as_bytes()).await;
                        }
                        4 => {
                            let _ = fs
                                .rename(&r, d, name.as_bytes(), d2, name2.as_bytes())
                                .await;
                        }
                        5 => {
                            // copy: read whole file, write into a new name
                            if let Ok(a) = fs.lookup(&r, d, name.as_bytes()).await
                                && let Ok((data, _, _)) = fs.read(&r, a.ino, 0, 1 << 20).await
                                && let Ok(b) = fs
                                    .create(
                                        &r,
                                        d2,
                                        format!("c{}", next() % 12).as_bytes(),
                                        CreateMode::Unchecked,
                                        &SetAttr {
                                            size: Some(0),
                                            ..Default::default()
                                        },
                                    )
                                    .await
                            {
                                let _ = fs.write(&r, b.ino, 0, data, Stability::Unstable).await;
                            }
                        }
                        _ => {
                            if let Ok(a) = fs.lookup(&r, d, name.as_bytes()).await {
                                let sa = SetAttr {
                                    size: Some(next() % 9000),
                                    ..Default::default()
                                };
                                let _ = fs.setattr(&r, a.ino, &sa, None).await;
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        fx.fs.flush_all().await.unwrap();
        check_invariants(&fx).await;
    }
}

/// `resolve_dir_path` (MOUNT of a subdirectory): a chain of LOOKUPs with the caller's
/// credentials, directories only, `..` refused, empty components and `.` skipped.
async fn resolve_dir_path_rules(backend: &str) {
    let fx = fixture(backend).await;
    let r = root();
    let a = mkdir(&fx, Ino::ROOT, "a").await;
    let b = mkdir(&fx, a, "b").await;
    mkfile(&fx, b, "f").await;
    fx.fs
        .symlink(&r, Ino::ROOT, b"ln", b"a", &SetAttr::default())
        .await
        .unwrap();
    let p = fx
        .fs
        .mkdir(&r, Ino::ROOT, b"private", &sa_mode(0o700))
        .await
        .unwrap()
        .ino;
    let inner = mkdir(&fx, p, "inner").await;
    let resolve = |path: &'static [u8], cred: Credentials| {
        let fs = &fx.fs;
        async move { fs.resolve_dir_path(&cred, path).await }
    };
    for (path, want) in [
        (&b""[..], Ok(Ino::ROOT)),
        (b"/", Ok(Ino::ROOT)),
        (b"a/b", Ok(b)),
        (b"/a/b/", Ok(b)),
        (b"//a/./b//", Ok(b)),
        (b"a/b/f", Err(FsError::NotDir)),
        (b"a/b/f/x", Err(FsError::NotDir)),
        (b"ln", Err(FsError::NotDir)),
        (b"ln/b", Err(FsError::NotDir)),
        (b"a/nope", Err(FsError::NoEnt)),
        (b"..", Err(FsError::NoEnt)),
        (b"a/..", Err(FsError::NoEnt)),
        (b"a/../a", Err(FsError::NoEnt)),
        (b"private/inner", Ok(inner)),
    ] {
        assert_eq!(
            resolve(path, root()).await,
            want,
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    let long: &'static [u8] = Box::leak(vec![b'n'; 256].into_boxed_slice());
    assert_eq!(resolve(long, root()).await, Err(FsError::NameTooLong));
    let user = Credentials::user(1000, 1000);
    assert_eq!(resolve(b"a/b", user.clone()).await, Ok(b));
    assert_eq!(resolve(b"private/inner", user).await, Err(FsError::Access));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("memory").await } )*
        }
        mod sled {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("sled").await } )*
        }
    };
}

conformance!(
    create_lookup_getattr,
    hostile_names_rejected,
    mkdir_rmdir_nlink,
    hard_links_across_directories,
    rename_overwrite_and_type_rules,
    rename_directory_across_and_into_subtree,
    readdir_cookies_stable_under_concurrency,
    large_directory,
    permissions_and_sticky,
    setgid_inheritance_and_suid_clearing,
    timestamps_follow_posix,
    change_attribute_follows_writes,
    create_modes,
    write_read_truncate_holes,
    handles_stale_and_bad,
    symlink_and_special_files,
    dedup_copy_shares_chunks,
    concurrent_fuzz_keeps_invariants,
    resolve_dir_path_rules,
);
