//! Client records (`Fs::put_client_record` and friends, `client_records.rs`) per backend:
//! written, listed by id prefix in id order (the `client/` key prefix not shown),
//! replaced, deleted (an absent one too), kept across a reopen of a sled store, and
//! invisible to the share's namespace invariants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

async fn records_round_trip(backend: &str) {
    let fx = common::fixture(backend).await;
    let fs = &fx.fs;
    assert!(fs.client_records(b"").await.unwrap().is_empty());
    fs.put_client_record(b"nfs4/b", &[1]).await.unwrap();
    fs.put_client_record(b"nfs4/a", &[1]).await.unwrap();
    fs.put_client_record(b"smb/x", &[2]).await.unwrap();
    fs.put_client_record(b"nfs4/a", &[3]).await.unwrap();
    let got = fs.client_records(b"nfs4/").await.unwrap();
    assert_eq!(
        got,
        vec![(b"nfs4/a".to_vec(), vec![3]), (b"nfs4/b".to_vec(), vec![1])]
    );
    assert_eq!(fs.client_records(b"").await.unwrap().len(), 3);
    fs.delete_client_record(b"nfs4/a").await.unwrap();
    fs.delete_client_record(b"nfs4/none").await.unwrap();
    let got = fs.client_records(b"nfs4/").await.unwrap();
    assert_eq!(got, vec![(b"nfs4/b".to_vec(), vec![1])]);
    let bad = dittofs_metadata::conformance::check_invariants(fx.store.as_ref(), fs.share_id())
        .await
        .unwrap();
    assert!(bad.is_empty(), "{bad:?}");
}

#[tokio::test]
async fn client_records_memory() {
    records_round_trip("memory").await;
}

#[tokio::test]
async fn client_records_sled() {
    records_round_trip("sled").await;
}

#[tokio::test]
async fn client_records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = common::open_store("sled", dir.path()).await;
        let fs = common::open_fs(store.clone(), dir.path()).await;
        fs.put_client_record(b"nfs4/kept", &[1]).await.unwrap();
        store.close().await.unwrap();
    }
    let store = common::open_store("sled", dir.path()).await;
    let fs = common::open_fs(store, dir.path()).await;
    let got = fs.client_records(b"nfs4/").await.unwrap();
    assert_eq!(got, vec![(b"nfs4/kept".to_vec(), vec![1])]);
}
