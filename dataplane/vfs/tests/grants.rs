//! Share access levels in the core (`grant.rs`, `Fs::check_writable` / `check_readable`):
//! a `read` grant refuses every change with `Access`, `none` refuses names and contents
//! too, and the same operations all succeed at `read-write`, so each refusal is the
//! level's. The caller owns the files and the modes allow everything: the level takes
//! rights away that POSIX would give (root included).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use dittofs_types::Ino;
use dittofs_vfs::{
    AccessLevel, CreateMode, Credentials, FsError, FsResult, SetAttr, SpecialKind, Stability,
    access,
};

struct Tree {
    fx: common::Fixture,
    file: Ino,
    link: Ino,
}

fn mode(m: u32) -> SetAttr {
    SetAttr {
        mode: Some(m),
        ..Default::default()
    }
}

/// A file with content, an empty directory and a symlink, made by uid 1000.
async fn tree() -> Tree {
    let fx = common::fixture("memory").await;
    let me = Credentials::user(1000, 1000);
    let r = Ino::ROOT;
    let file = fx
        .fs
        .create(&me, r, b"f", CreateMode::Guarded, &mode(0o666))
        .await
        .unwrap()
        .ino;
    fx.fs
        .write(
            &me,
            file,
            0,
            bytes::Bytes::from_static(b"data"),
            Stability::FileSync,
        )
        .await
        .unwrap();
    fx.fs.mkdir(&me, r, b"d", &mode(0o777)).await.unwrap();
    let link = fx
        .fs
        .symlink(&me, r, b"l", b"f", &SetAttr::default())
        .await
        .unwrap()
        .ino;
    Tree { fx, file, link }
}

/// Every kind of change, each named; at `read-write` they all succeed in this order.
async fn changes(t: &Tree, c: &Credentials) -> Vec<(&'static str, FsResult<()>)> {
    let (fs, r, f) = (&t.fx.fs, Ino::ROOT, t.file);
    let size = SetAttr {
        size: Some(1),
        ..Default::default()
    };
    vec![
        (
            "create",
            unit(
                fs.create(c, r, b"n1", CreateMode::Guarded, &mode(0o644))
                    .await,
            ),
        ),
        ("mkdir", unit(fs.mkdir(c, r, b"n2", &mode(0o755)).await)),
        (
            "symlink",
            unit(fs.symlink(c, r, b"n3", b"f", &SetAttr::default()).await),
        ),
        (
            "mknod",
            unit(fs.mknod(c, r, b"n4", SpecialKind::Fifo, &mode(0o644)).await),
        ),
        ("link", unit(fs.link(c, f, r, b"n5").await)),
        ("chmod", unit(fs.setattr(c, f, &mode(0o600), None).await)),
        ("truncate", unit(fs.setattr(c, f, &size, None).await)),
        (
            "write",
            unit(
                fs.write(
                    c,
                    f,
                    0,
                    bytes::Bytes::from_static(b"x"),
                    Stability::FileSync,
                )
                .await,
            ),
        ),
        ("rename", unit(fs.rename(c, r, b"n1", r, b"n6").await)),
        ("remove", unit(fs.remove(c, r, b"n5").await)),
        ("rmdir", unit(fs.rmdir(c, r, b"d").await)),
    ]
}

/// Every kind of read of names and contents.
async fn reads(t: &Tree, c: &Credentials) -> Vec<(&'static str, FsResult<()>)> {
    let (fs, r) = (&t.fx.fs, Ino::ROOT);
    vec![
        ("lookup", unit(fs.lookup(c, r, b"f").await)),
        ("resolve_dir_path", unit(fs.resolve_dir_path(c, b"d").await)),
        ("readdir", unit(fs.readdir(c, r, 0, 0, 100).await)),
        ("read", unit(fs.read(c, t.file, 0, 4).await)),
        ("readlink", unit(fs.readlink(c, t.link).await)),
    ]
}

fn unit<T>(r: FsResult<T>) -> FsResult<()> {
    r.map(|_| ())
}

fn refused(level: AccessLevel, results: &[(&str, FsResult<()>)]) {
    for (op, r) in results {
        assert_eq!(r.as_ref().err(), Some(&FsError::Access), "{op} at {level}");
    }
}

#[tokio::test]
async fn read_grant_refuses_every_change_and_none_refuses_reads_too() {
    for uid in [1000, 0] {
        let t = tree().await;
        let names_before =
            t.fx.fs
                .readdir(&Credentials::root(), Ino::ROOT, 0, 0, 100)
                .await
                .unwrap();
        for level in [AccessLevel::Read, AccessLevel::None] {
            let c = Credentials::user(uid, 1000).with_level(level);
            refused(level, &changes(&t, &c).await);
            let names =
                t.fx.fs
                    .readdir(&Credentials::root(), Ino::ROOT, 0, 0, 100)
                    .await
                    .unwrap();
            assert_eq!(
                names.entries.len(),
                names_before.entries.len(),
                "nothing changed at {level}"
            );
            let (granted, _) = t.fx.fs.access(&c, t.file, access::ALL).await.unwrap();
            assert_eq!(
                granted & (access::MODIFY | access::EXTEND),
                0,
                "ACCESS at {level}"
            );
            assert!(
                t.fx.fs.getattr(t.file).await.is_ok(),
                "attributes stay readable"
            );
        }
        let read = Credentials::user(uid, 1000).with_level(AccessLevel::Read);
        for (op, r) in reads(&t, &read).await {
            assert!(r.is_ok(), "{op} at read: {r:?}");
        }
        let none = Credentials::user(uid, 1000).with_level(AccessLevel::None);
        refused(AccessLevel::None, &reads(&t, &none).await);
        let (granted, _) = t.fx.fs.access(&none, t.file, access::ALL).await.unwrap();
        assert_eq!(granted, 0, "ACCESS at none");
        // The same calls pass at read-write and admin: the refusals above were the level's.
        for (op, r) in reads(&t, &Credentials::user(uid, 1000)).await {
            assert!(r.is_ok(), "{op} at read-write: {r:?}");
        }
        let admin = Credentials::user(uid, 1000).with_level(AccessLevel::Admin);
        for (op, r) in changes(&t, &admin).await {
            assert!(r.is_ok(), "{op} as uid {uid} at admin: {r:?}");
        }
        // Data written before the grant changed may still be committed.
        assert!(t.fx.fs.commit_writes(t.file).await.is_ok());
    }
}

/// A read-only share says RoFs whatever the grant; a grant never adds rights.
#[tokio::test]
async fn read_only_share_is_rofs_and_grants_do_not_bypass_modes() {
    let t = tree().await;
    let mut opts = t.fx.fs.options();
    opts.read_only = true;
    t.fx.fs.set_options(opts).await.unwrap();
    let admin = Credentials::user(1000, 1000).with_level(AccessLevel::Admin);
    for (op, r) in changes(&t, &admin).await {
        assert_eq!(r.err(), Some(FsError::RoFs), "{op}");
    }
    opts = t.fx.fs.options();
    opts.read_only = false;
    t.fx.fs.set_options(opts).await.unwrap();
    let stranger = Credentials::user(2000, 2000).with_level(AccessLevel::Admin);
    t.fx.fs
        .setattr(&Credentials::user(1000, 1000), t.file, &mode(0o600), None)
        .await
        .unwrap();
    assert_eq!(
        t.fx.fs.read(&stranger, t.file, 0, 4).await.err(),
        Some(FsError::Access),
        "mode 0600 still refuses another uid at admin"
    );
}
