//! Property test: whatever an adapter passes in (names of any bytes and length, offsets
//! and lengths up to u64::MAX, modes with stray bits, bogus inode numbers, random
//! sequences of operations), the filesystem core answers with a value or an `FsError`;
//! it never panics, and the share's invariants still hold afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use dittofs_types::Ino;
use dittofs_vfs::{CreateMode, Credentials, SetAttr, SetTime, Stability};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create(Vec<u8>, u32),
    Mkdir(Vec<u8>),
    Lookup(u64, Vec<u8>),
    Write(u64, u64, usize),
    Read(u64, u64, u32),
    SetSize(u64, u64),
    Chmod(u64, u32),
    Times(u64, i64, u32),
    Remove(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Link(u64, Vec<u8>),
    Symlink(Vec<u8>, Vec<u8>),
    Readdir(u64, u64, u64),
    Flush(u64),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b"a/b".to_vec()),
        Just(b"x\0y".to_vec()),
        "[a-c]{1,2}".prop_map(|s| s.into_bytes()),
    ]
}

fn ino() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), 2u64..20, Just(u64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (name(), any::<u32>()).prop_map(|(n, m)| Op::Create(n, m)),
        name().prop_map(Op::Mkdir),
        (ino(), name()).prop_map(|(i, n)| Op::Lookup(i, n)),
        (
            ino(),
            prop_oneof![0u64..100_000, Just(u64::MAX - 3), Just(i64::MAX as u64)],
            0usize..5000
        )
            .prop_map(|(i, o, l)| Op::Write(i, o, l)),
        (ino(), any::<u64>(), any::<u32>()).prop_map(|(i, o, l)| Op::Read(i, o, l)),
        (ino(), prop_oneof![0u64..200_000, Just(u64::MAX)]).prop_map(|(i, s)| Op::SetSize(i, s)),
        (ino(), any::<u32>()).prop_map(|(i, m)| Op::Chmod(i, m)),
        (ino(), any::<i64>(), any::<u32>()).prop_map(|(i, s, n)| Op::Times(i, s, n)),
        name().prop_map(Op::Remove),
        (name(), name()).prop_map(|(a, b)| Op::Rename(a, b)),
        (ino(), name()).prop_map(|(i, n)| Op::Link(i, n)),
        (name(), proptest::collection::vec(any::<u8>(), 0..5000))
            .prop_map(|(n, t)| Op::Symlink(n, t)),
        (ino(), any::<u64>(), any::<u64>()).prop_map(|(i, c, v)| Op::Readdir(i, c, v)),
        ino().prop_map(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn core_never_panics_on_hostile_input(ops in proptest::collection::vec(op(), 1..40), uid in prop_oneof![Just(0u32), Just(1000u32)]) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let fx = common::fixture("memory").await;
            let cred = Credentials::user(uid, uid);
            let r = Ino::ROOT;
            for o in ops {
                match o {
                    Op::Create(n, m) => { let _ = fx.fs.create(&cred, r, &n, CreateMode::Guarded, &SetAttr { mode: Some(m), ..Default::default() }).await; }
                    Op::Mkdir(n) => { let _ = fx.fs.mkdir(&cred, r, &n, &SetAttr::default()).await; }
                    Op::Lookup(i, n) => { let _ = fx.fs.lookup(&cred, Ino(i), &n).await; }
                    Op::Write(i, off, len) => { let _ = fx.fs.write(&cred, Ino(i), off, Bytes::from(vec![7u8; len]), Stability::Unstable).await; }
                    Op::Read(i, off, len) => { let _ = fx.fs.read(&cred, Ino(i), off, len.min(1 << 20)).await; }
                    Op::SetSize(i, s) => { let _ = fx.fs.setattr(&cred, Ino(i), &SetAttr { size: Some(s), ..Default::default() }, None).await; }
                    Op::Chmod(i, m) => { let _ = fx.fs.setattr(&cred, Ino(i), &SetAttr { mode: Some(m), ..Default::default() }, None).await; }
                    Op::Times(i, s, n) => {
                        let t = dittofs_types::Timestamp { secs: s, nanos: n % 1_000_000_000 };
                        let _ = fx.fs.setattr(&cred, Ino(i), &SetAttr { atime: SetTime::Client(t), mtime: SetTime::ServerNow, ..Default::default() }, None).await;
                    }
                    Op::Remove(n) => { let _ = fx.fs.remove(&cred, r, &n).await; let _ = fx.fs.rmdir(&cred, r, &n).await; }
                    Op::Rename(a, b) => { let _ = fx.fs.rename(&cred, r, &a, r, &b).await; }
                    Op::Link(i, n) => { let _ = fx.fs.link(&cred, Ino(i), r, &n).await; }
                    Op::Symlink(n, t) => { let _ = fx.fs.symlink(&cred, r, &n, &t, &SetAttr::default()).await; }
                    Op::Readdir(i, c, v) => { let _ = fx.fs.readdir(&cred, Ino(i), c, v, 50).await; }
                    Op::Flush(i) => { let _ = fx.fs.flush_file(Ino(i)).await; }
                }
            }
            fx.fs.flush_all().await.unwrap();
            let report = dittofs_metadata::audit_inv02(fx.store.as_ref(), fx.fs.share_id(), "/export").await.unwrap();
            assert_eq!(report.delta, 0, "INV-02 after hostile input");
        });
    }
}
