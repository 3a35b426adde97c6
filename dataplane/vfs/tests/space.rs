//! Copies by reference, hole punching, allocation and seeking (`ops_space`), on every
//! metadata backend: contents checked against a byte model, INV-02 audited after every
//! copy, punch and delete, and the chunk rows counted to show what was stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, fixture, read_all, write};
use dittofs_metadata::audit_inv02;
use dittofs_types::{Ino, ShareId};
use dittofs_vfs::{
    CopyRange, CreateMode, Credentials, Fs, FsError, SeekOutcome, SeekWhat, SetAttr, ShareOptions,
};

fn root() -> Credentials {
    Credentials::root()
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn mkfile(fx: &Fixture, name: &str) -> Ino {
    let sa = SetAttr {
        mode: Some(0o644),
        ..Default::default()
    };
    fx.fs
        .create(
            &root(),
            Ino::ROOT,
            name.as_bytes(),
            CreateMode::Guarded,
            &sa,
        )
        .await
        .expect("create")
        .ino
}

async fn audit(fx: &Fixture) {
    let report = audit_inv02(fx.store.as_ref(), fx.fs.share_id(), "t")
        .await
        .unwrap();
    assert_eq!(report.delta, 0, "INV-02 delta: {report:?}");
    assert_eq!(report.dangling_count, 0, "dangling refs: {report:?}");
}

async fn chunk_rows(fx: &Fixture) -> usize {
    fx.store
        .scan_chunks(fx.fs.share_id(), None, 1_000_000)
        .await
        .unwrap()
        .len()
}

fn range(src: Ino, src_off: u64, dst: Ino, dst_off: u64, len: u64) -> CopyRange {
    CopyRange {
        src,
        src_off,
        dst,
        dst_off,
        len,
    }
}

async fn copy(fx: &Fixture, r: CopyRange) -> dittofs_vfs::CopyOutcome {
    fx.fs.copy_range(&root(), &fx.fs, &r).await.expect("copy")
}

async fn whole_copy_shares_every_chunk(backend: &str) {
    let fx = fixture(backend).await;
    let data = noise(1, 200_000);
    let a = mkfile(&fx, "a").await;
    write(&fx, a, 0, &data).await;
    fx.fs.flush_file(a).await.unwrap();
    let rows = chunk_rows(&fx).await;
    assert!(rows > 20, "small chunker: many chunks ({rows})");
    let b = mkfile(&fx, "b").await;
    let out = copy(&fx, range(a, 0, b, 0, 0)).await;
    assert_eq!((out.copied, out.shared), (200_000, 200_000));
    assert_eq!(out.attr.size, 200_000);
    assert_eq!(chunk_rows(&fx).await, rows, "no new chunk stored");
    assert_eq!(read_all(&fx, b).await, data);
    audit(&fx).await;
    fx.fs.remove(&root(), Ino::ROOT, b"a").await.unwrap();
    audit(&fx).await;
    assert_eq!(read_all(&fx, b).await, data, "the copy outlives its source");
    fx.fs.remove(&root(), Ino::ROOT, b"b").await.unwrap();
    audit(&fx).await;
    assert_eq!(chunk_rows(&fx).await, 0, "every reference released");
}

/// Unaligned copies over existing content, within and between files, against a model.
async fn partial_copies_match_the_model(backend: &str) {
    let fx = fixture(backend).await;
    let src = noise(2, 150_000);
    let mut dst = noise(3, 90_000);
    let a = mkfile(&fx, "a").await;
    let b = mkfile(&fx, "b").await;
    write(&fx, a, 0, &src).await;
    write(&fx, b, 0, &dst).await;
    // Unflushed data on both sides: the copy flushes first.
    for (so, dof, n) in [(12_345, 40_000, 70_001), (0, 85_000, 30_000), (1, 3, 5)] {
        let out = copy(&fx, range(a, so, b, dof, n)).await;
        assert_eq!(out.copied, n);
        let end = (dof + n) as usize;
        if dst.len() < end {
            dst.resize(end, 0);
        }
        dst[dof as usize..end].copy_from_slice(&src[so as usize..so as usize + n as usize]);
        assert_eq!(
            read_all(&fx, b).await,
            dst,
            "after copy {so} -> {dof} ({n})"
        );
        audit(&fx).await;
    }
    // Within one file, disjoint ranges; then the punched source.
    let out = copy(&fx, range(a, 0, a, 200_000, 50_000)).await;
    assert!(out.shared > 0, "whole chunks shared within the file");
    let mut model = src.clone();
    model.resize(200_000, 0);
    model.extend_from_slice(&src[..50_000]);
    assert_eq!(read_all(&fx, a).await, model);
    audit(&fx).await;
    fx.fs.deallocate(&root(), a, 10_000, 30_000).await.unwrap();
    model[10_000..40_000].fill(0);
    assert_eq!(read_all(&fx, a).await, model);
    assert_eq!(read_all(&fx, b).await, dst, "the copy is not punched");
    audit(&fx).await;
    fx.fs.remove(&root(), Ino::ROOT, b"b").await.unwrap();
    audit(&fx).await;
    assert_eq!(read_all(&fx, a).await, model);
}

async fn copies_refuse_bad_ranges(backend: &str) {
    let fx = fixture(backend).await;
    let a = mkfile(&fx, "a").await;
    let b = mkfile(&fx, "b").await;
    write(&fx, a, 0, &noise(4, 1000)).await;
    let fs = &fx.fs;
    let err = |r| async move { fs.copy_range(&root(), fs, &r).await.err() };
    assert!(matches!(
        err(range(a, 500, b, 0, 501)).await,
        Some(FsError::Inval(_))
    ));
    assert!(matches!(
        err(range(a, 1001, b, 0, 0)).await,
        Some(FsError::Inval(_))
    ));
    assert!(matches!(
        err(range(a, 0, a, 100, 200)).await,
        Some(FsError::Inval(_))
    ));
    assert_eq!(
        err(range(a, 0, b, u64::MAX - 10, 100)).await,
        Some(FsError::FBig)
    );
    assert_eq!(
        err(range(Ino::ROOT, 0, b, 0, 1)).await,
        Some(FsError::IsDir)
    );
    let reader = Credentials {
        uid: 4242,
        gid: 4242,
        ..Credentials::root()
    };
    let e = fx
        .fs
        .copy_range(&reader, &fx.fs, &range(a, 0, b, 0, 10))
        .await;
    assert_eq!(e.err(), Some(FsError::Access), "no write access to b");
    // Another share is a cross-device copy.
    let other = Fs::open(
        fx.store.clone(),
        fx.engine.clone(),
        ShareId(2),
        "/other",
        ShareOptions::default(),
    )
    .await
    .unwrap();
    let e = fx
        .fs
        .copy_range(&root(), &other, &range(a, 0, b, 0, 10))
        .await;
    assert_eq!(e.err(), Some(FsError::XDev));
    assert_eq!(fx.fs.getattr(b).await.unwrap().size, 0, "nothing copied");
}

async fn punch_allocate_and_seek(backend: &str) {
    let fx = fixture(backend).await;
    let a = mkfile(&fx, "a").await;
    let data = noise(5, 20_000);
    write(&fx, a, 0, &data).await;
    write(&fx, a, 100_000, &data).await;
    let fs = &fx.fs;
    let seek = |o, w| async move { fs.seek(&root(), a, o, w).await };
    let at = |eof, offset| Ok(SeekOutcome { eof, offset });
    assert_eq!(seek(0, SeekWhat::Data).await, at(false, 0));
    assert_eq!(seek(0, SeekWhat::Hole).await, at(false, 20_000));
    assert_eq!(seek(20_000, SeekWhat::Data).await, at(false, 100_000));
    assert_eq!(seek(100_500, SeekWhat::Hole).await, at(true, 120_000));
    assert_eq!(seek(120_000, SeekWhat::Data).await, Err(FsError::NxIo));
    // Punch all of the second run and part of the first.
    fx.fs.deallocate(&root(), a, 5_000, 200_000).await.unwrap();
    let got = read_all(&fx, a).await;
    assert_eq!(got.len(), 120_000, "the size does not change");
    assert_eq!(&got[..5_000], &data[..5_000]);
    assert!(got[5_000..].iter().all(|&b| b == 0));
    assert_eq!(seek(50_000, SeekWhat::Data).await, at(true, 120_000));
    audit(&fx).await;
    // ALLOCATE past the end extends the size with zeros; inside it changes nothing.
    let attr = fx.fs.allocate(&root(), a, 100_000, 50_000).await.unwrap();
    assert_eq!(attr.size, 150_000);
    let attr = fx.fs.allocate(&root(), a, 0, 10).await.unwrap();
    assert_eq!(attr.size, 150_000);
    assert_eq!(read_all(&fx, a).await.len(), 150_000);
    audit(&fx).await;
    fx.fs.remove(&root(), Ino::ROOT, b"a").await.unwrap();
    audit(&fx).await;
    assert_eq!(chunk_rows(&fx).await, 0);
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name("memory").await } )*
        }
        mod sled {
            $( #[tokio::test] async fn $name() { super::$name("sled").await } )*
        }
    };
}

per_backend!(
    whole_copy_shares_every_chunk,
    partial_copies_match_the_model,
    copies_refuse_bad_ranges,
    punch_allocate_and_seek,
);
