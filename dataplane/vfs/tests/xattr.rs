//! Extended attributes through the filesystem core (`Fs::get_xattr`, `set_xattr`,
//! `list_xattrs`, `remove_xattr`): every test runs once per metadata backend
//! (`memory::<name>` and `sled::<name>`). Values, flags, limits, paging, permissions
//! and the ACCESS bits, and that an inode's attributes go with its last link (REMOVE,
//! RENAME over it, the last close of a file unlinked while open, a purge of the
//! recycle bin) and nowhere else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, fixture};
use dittofs_types::{DeviceId, Ino};
use dittofs_vfs::{
    AccessLevel, CreateMode, Credentials, FsError, FsResult, SetAttr, ShareOptions, SpecialKind,
    TrashPolicy, XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_TOTAL_MAX, XattrPage, XattrSetMode, access,
};

const EITHER: XattrSetMode = XattrSetMode::Either;

fn owner() -> Credentials {
    Credentials::user(1000, 1000)
}

fn other() -> Credentials {
    Credentials::user(2000, 2000)
}

fn mode(m: u32) -> SetAttr {
    SetAttr {
        mode: Some(m),
        ..Default::default()
    }
}

/// A regular file `name` in the root made by uid 1000 with mode `m`.
async fn file(fx: &Fixture, name: &str, m: u32) -> Ino {
    fx.fs
        .create(
            &owner(),
            Ino::ROOT,
            name.as_bytes(),
            CreateMode::Guarded,
            &mode(m),
        )
        .await
        .unwrap()
        .ino
}

async fn set(fx: &Fixture, ino: Ino, name: &[u8], value: &[u8]) {
    fx.fs
        .set_xattr(&owner(), ino, name, value, EITHER)
        .await
        .unwrap();
}

/// Every name of `ino`, listed in pages of at most `per_page` names.
async fn names(fx: &Fixture, cred: &Credentials, ino: Ino, per_page: usize) -> Vec<Vec<u8>> {
    let (mut out, mut cookie) = (Vec::new(), 0);
    loop {
        let mut n = 0;
        let page = fx
            .fs
            .list_xattrs(cred, ino, cookie, |_| {
                n += 1;
                n <= per_page
            })
            .await
            .unwrap();
        assert!(page.names.len() <= per_page);
        out.extend(page.names);
        cookie = page.cookie;
        if page.eof {
            return out;
        }
    }
}

/// The attributes the store holds for `ino` (empty when none, or when the inode is gone).
async fn stored(fx: &Fixture, ino: Ino) -> usize {
    fx.store
        .get_xattrs(fx.fs.share_id(), ino)
        .await
        .unwrap()
        .len()
}

async fn set_get_list_remove(backend: &str) {
    let fx = fixture(backend).await;
    let f = file(&fx, "f", 0o644).await;
    let before = fx.fs.getattr(f).await.unwrap();
    let ch = fx
        .fs
        .set_xattr(&owner(), f, b"color", b"blue", EITHER)
        .await
        .unwrap();
    let after = fx.fs.getattr(f).await.unwrap();
    assert_eq!(ch.before, before.change);
    assert_eq!(ch.after, after.change);
    assert!(ch.after > ch.before);
    assert!(after.ctime >= before.ctime);
    assert_eq!(after.mtime, before.mtime, "content untouched");
    let got = fx.fs.get_xattr(&owner(), f, b"color").await.unwrap();
    assert_eq!(got, b"blue");
    set(&fx, f, b"empty", b"").await;
    assert_eq!(fx.fs.get_xattr(&other(), f, b"empty").await.unwrap(), b"");
    set(&fx, f, b"color", b"green").await;
    assert_eq!(
        fx.fs.get_xattr(&owner(), f, b"color").await.unwrap(),
        b"green"
    );
    assert_eq!(
        names(&fx, &other(), f, 10).await,
        vec![b"color".to_vec(), b"empty".to_vec()]
    );
    // with unflushed writes, the change info is the change attribute GETATTR shows
    common::write(&fx, f, 0, b"data").await;
    let before = fx.fs.getattr(f).await.unwrap().change;
    let ch = fx.fs.remove_xattr(&owner(), f, b"color").await.unwrap();
    assert_eq!(ch.before, before);
    assert_eq!(ch.after, fx.fs.getattr(f).await.unwrap().change);
    assert_eq!(
        fx.fs.get_xattr(&owner(), f, b"color").await,
        Err(FsError::NoXattr)
    );
    assert_eq!(
        fx.fs.remove_xattr(&owner(), f, b"color").await,
        Err(FsError::NoXattr)
    );
    fx.fs.remove_xattr(&owner(), f, b"empty").await.unwrap();
    assert_eq!(stored(&fx, f).await, 0);
    assert!(names(&fx, &owner(), f, 10).await.is_empty());
    // Directories carry attributes too.
    let d = fx
        .fs
        .mkdir(&owner(), Ino::ROOT, b"d", &mode(0o755))
        .await
        .unwrap()
        .ino;
    set(&fx, d, b"dir", b"1").await;
    assert_eq!(fx.fs.get_xattr(&owner(), d, b"dir").await.unwrap(), b"1");
}

async fn create_and_replace_flags(backend: &str) {
    let fx = fixture(backend).await;
    let f = file(&fx, "f", 0o644).await;
    let fs = &fx.fs;
    assert_eq!(
        fs.set_xattr(&owner(), f, b"a", b"1", XattrSetMode::Replace)
            .await,
        Err(FsError::NoXattr)
    );
    fs.set_xattr(&owner(), f, b"a", b"1", XattrSetMode::Create)
        .await
        .unwrap();
    let change = fs.getattr(f).await.unwrap().change;
    assert_eq!(
        fs.set_xattr(&owner(), f, b"a", b"2", XattrSetMode::Create)
            .await,
        Err(FsError::Exist)
    );
    assert_eq!(fs.get_xattr(&owner(), f, b"a").await.unwrap(), b"1");
    assert_eq!(
        fs.getattr(f).await.unwrap().change,
        change,
        "a refused change changes nothing"
    );
    fs.set_xattr(&owner(), f, b"a", b"3", XattrSetMode::Replace)
        .await
        .unwrap();
    assert_eq!(fs.get_xattr(&owner(), f, b"a").await.unwrap(), b"3");
}

async fn limits(backend: &str) {
    let fx = fixture(backend).await;
    let f = file(&fx, "f", 0o644).await;
    let fs = &fx.fs;
    let try_set = |name: Vec<u8>, len: usize| async move {
        fs.set_xattr(&owner(), f, &name, &vec![7u8; len], EITHER)
            .await
            .map(|_| ())
    };
    assert_eq!(
        try_set(Vec::new(), 1).await,
        Err(FsError::Inval("empty attribute name"))
    );
    assert!(matches!(
        try_set(b"a\0b".to_vec(), 1).await,
        Err(FsError::Inval(_))
    ));
    assert_eq!(
        try_set(vec![b'n'; XATTR_NAME_MAX + 1], 1).await,
        Err(FsError::NameTooLong)
    );
    assert_eq!(
        fs.get_xattr(&owner(), f, &[b'n'; XATTR_NAME_MAX + 1]).await,
        Err(FsError::NameTooLong)
    );
    try_set(vec![b'n'; XATTR_NAME_MAX], 0).await.unwrap();
    assert_eq!(
        try_set(b"big".to_vec(), XATTR_SIZE_MAX + 1).await,
        Err(FsError::XattrTooBig)
    );
    try_set(b"big".to_vec(), XATTR_SIZE_MAX).await.unwrap();
    assert_eq!(
        fs.get_xattr(&owner(), f, b"big").await.unwrap().len(),
        XATTR_SIZE_MAX
    );
    // Fill the inode up to its total: names + values.
    let used = XATTR_NAME_MAX + 3 + XATTR_SIZE_MAX;
    let left = XATTR_TOTAL_MAX - used;
    let last = left - 2 * (XATTR_SIZE_MAX + 2) - 2;
    try_set(b"b1".to_vec(), XATTR_SIZE_MAX).await.unwrap();
    try_set(b"b2".to_vec(), XATTR_SIZE_MAX).await.unwrap();
    assert_eq!(try_set(b"b3".to_vec(), last + 1).await, Err(FsError::NoSpc));
    try_set(b"b3".to_vec(), last).await.unwrap();
    assert_eq!(try_set(b"c".to_vec(), 0).await, Err(FsError::NoSpc));
    // Replacing with a smaller value and removing make room again.
    try_set(b"b3".to_vec(), last - 1).await.unwrap();
    try_set(b"c".to_vec(), 0).await.unwrap();
    fs.remove_xattr(&owner(), f, b"big").await.unwrap();
    try_set(b"d".to_vec(), 1000).await.unwrap();
}

async fn list_pages_by_cookie(backend: &str) {
    let fx = fixture(backend).await;
    let f = file(&fx, "f", 0o644).await;
    let mut want: Vec<Vec<u8>> = Vec::new();
    for i in 0..10u8 {
        let name = vec![b'a' + (9 - i); 1 + usize::from(i)];
        set(&fx, f, &name, &[i]).await;
        want.push(name);
    }
    want.sort();
    for per_page in [1, 3, 10, 50] {
        assert_eq!(names(&fx, &owner(), f, per_page).await, want, "{per_page}");
    }
    let fs = &fx.fs;
    let page = |cookie, budget: usize| async move {
        let mut left = budget;
        fs.list_xattrs(&owner(), f, cookie, |n| {
            let fits = n.len() <= left;
            if fits {
                left -= n.len();
            }
            fits
        })
        .await
    };
    // A byte budget: "a" * 10 + "b" * 9 fit in 19 bytes, the next name does not.
    assert_eq!(
        page(0, 19).await.unwrap(),
        XattrPage {
            names: want[..2].to_vec(),
            cookie: 2,
            eof: false
        }
    );
    assert_eq!(
        page(2, 7).await,
        Err(FsError::TooSmall),
        "'c' * 8 does not fit"
    );
    let tail = page(9, 1).await.unwrap();
    assert_eq!(
        (tail.names, tail.cookie, tail.eof),
        (want[9..].to_vec(), 10, true)
    );
    let past = page(25, 100).await.unwrap();
    assert!(
        past.names.is_empty() && past.eof,
        "a cookie past the end ends the list"
    );
    assert_eq!(
        page(XATTR_TOTAL_MAX as u64 + 1, 100).await,
        Err(FsError::BadCookie)
    );
    // An empty list is one empty last page, whatever the budget.
    let g = file(&fx, "g", 0o644).await;
    let p = fs.list_xattrs(&owner(), g, 0, |_| false).await.unwrap();
    assert!(p.names.is_empty() && p.eof && p.cookie == 0);
}

async fn permissions(backend: &str) {
    let fx = fixture(backend).await;
    let fs = &fx.fs;
    let shared = file(&fx, "shared", 0o644).await;
    set(&fx, shared, b"k", b"v").await;
    assert_eq!(fs.get_xattr(&other(), shared, b"k").await.unwrap(), b"v");
    assert_eq!(names(&fx, &other(), shared, 5).await, vec![b"k".to_vec()]);
    assert_eq!(
        fs.set_xattr(&other(), shared, b"k", b"x", EITHER).await,
        Err(FsError::Access)
    );
    assert_eq!(
        fs.remove_xattr(&other(), shared, b"k").await,
        Err(FsError::Access)
    );
    let private = file(&fx, "private", 0o600).await;
    set(&fx, private, b"k", b"v").await;
    assert_eq!(
        fs.get_xattr(&other(), private, b"k").await,
        Err(FsError::Access)
    );
    assert_eq!(
        fs.list_xattrs(&other(), private, 0, |_| true).await,
        Err(FsError::Access)
    );
    // No owner bypass as for data: a read-only file refuses its owner's change, root not.
    let ro = file(&fx, "ro", 0o444).await;
    assert_eq!(
        fs.set_xattr(&owner(), ro, b"k", b"v", EITHER).await,
        Err(FsError::Access)
    );
    let root = Credentials::root();
    fs.set_xattr(&root, private, b"r", b"1", EITHER)
        .await
        .unwrap();
    assert_eq!(fs.get_xattr(&root, private, b"r").await.unwrap(), b"1");
    // Symlinks and special files carry none.
    let link = fs
        .symlink(&owner(), Ino::ROOT, b"l", b"shared", &SetAttr::default())
        .await
        .unwrap()
        .ino;
    let fifo = fs
        .mknod(&owner(), Ino::ROOT, b"p", SpecialKind::Fifo, &mode(0o666))
        .await
        .unwrap()
        .ino;
    let dev = SpecialKind::Char(DeviceId { major: 1, minor: 3 });
    let chr = fs
        .mknod(&root, Ino::ROOT, b"c", dev, &mode(0o666))
        .await
        .unwrap()
        .ino;
    for ino in [link, fifo, chr] {
        assert_eq!(
            fs.set_xattr(&root, ino, b"k", b"v", EITHER).await,
            Err(FsError::Perm)
        );
        assert_eq!(fs.remove_xattr(&root, ino, b"k").await, Err(FsError::Perm));
        assert_eq!(fs.get_xattr(&root, ino, b"k").await, Err(FsError::NoXattr));
        assert!(names(&fx, &root, ino, 5).await.is_empty());
    }
    // A sticky directory's attributes: its owner and root only.
    let d = fs
        .mkdir(&owner(), Ino::ROOT, b"tmp", &mode(0o1777))
        .await
        .unwrap()
        .ino;
    assert_eq!(
        fs.set_xattr(&other(), d, b"k", b"v", EITHER).await,
        Err(FsError::Perm)
    );
    set(&fx, d, b"k", b"v").await;
    fs.set_xattr(&root, d, b"k", b"w", EITHER).await.unwrap();
    assert_eq!(fs.get_xattr(&other(), d, b"k").await.unwrap(), b"w");
}

/// The share's access level and read-only flag, as for every other read and change.
async fn levels_and_read_only_share(backend: &str) {
    let fx = fixture(backend).await;
    let fs = &fx.fs;
    let f = file(&fx, "f", 0o666).await;
    set(&fx, f, b"k", b"v").await;
    let read = owner().with_level(AccessLevel::Read);
    assert_eq!(fs.get_xattr(&read, f, b"k").await.unwrap(), b"v");
    assert_eq!(
        fs.set_xattr(&read, f, b"k", b"x", EITHER).await,
        Err(FsError::Access)
    );
    assert_eq!(fs.remove_xattr(&read, f, b"k").await, Err(FsError::Access));
    let none = owner().with_level(AccessLevel::None);
    assert_eq!(fs.get_xattr(&none, f, b"k").await, Err(FsError::Access));
    assert_eq!(
        fs.list_xattrs(&none, f, 0, |_| true).await,
        Err(FsError::Access)
    );
    fs.set_options(ShareOptions {
        read_only: true,
        root_mode: 0o777,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        fs.set_xattr(&owner(), f, b"k", b"x", EITHER).await,
        Err(FsError::RoFs)
    );
    assert_eq!(fs.remove_xattr(&owner(), f, b"k").await, Err(FsError::RoFs));
    assert_eq!(fs.get_xattr(&owner(), f, b"k").await.unwrap(), b"v");
}

/// ACCESS answers the attribute bits by the same rules as the operations.
async fn access_bits(backend: &str) {
    let fx = fixture(backend).await;
    let fs = &fx.fs;
    let all = access::XATTR_ALL;
    let (rd, wr) = (access::XATTR_READ | access::XATTR_LIST, access::XATTR_WRITE);
    let bits = |cred: Credentials, ino| async move { fs.access(&cred, ino, all).await.unwrap().0 };
    let f = file(&fx, "f", 0o644).await;
    assert_eq!(bits(owner(), f).await, rd | wr);
    assert_eq!(bits(other(), f).await, rd);
    let private = file(&fx, "private", 0o600).await;
    assert_eq!(bits(other(), private).await, 0);
    let link = fs
        .symlink(&owner(), Ino::ROOT, b"l", b"f", &SetAttr::default())
        .await
        .unwrap()
        .ino;
    assert_eq!(bits(Credentials::root(), link).await, rd);
    let d = fs
        .mkdir(&owner(), Ino::ROOT, b"tmp", &mode(0o1777))
        .await
        .unwrap()
        .ino;
    assert_eq!(bits(other(), d).await, rd);
    assert_eq!(bits(owner(), d).await, rd | wr);
    assert_eq!(bits(owner().with_level(AccessLevel::Read), f).await, rd);
    assert_eq!(bits(owner().with_level(AccessLevel::None), f).await, 0);
    // Asked bits only: the NFSv3 set gets none of them.
    assert_eq!(
        fs.access(&owner(), f, access::ALL).await.unwrap().0 & all,
        0
    );
}

/// Attributes go with the inode's last link and stay while a link or an open remains.
async fn gone_with_the_inode(backend: &str) {
    let fx = fixture(backend).await;
    let fs = &fx.fs;
    let me = owner();
    // REMOVE: the attributes go with the inode; a new file of the same name has none.
    let f = file(&fx, "f", 0o644).await;
    set(&fx, f, b"k", b"v").await;
    fs.remove(&me, Ino::ROOT, b"f").await.unwrap();
    assert_eq!(stored(&fx, f).await, 0);
    let f2 = file(&fx, "f", 0o644).await;
    assert_ne!(f2, f);
    assert!(names(&fx, &me, f2, 5).await.is_empty());
    // A second link keeps them; the last one takes them.
    set(&fx, f2, b"k", b"v").await;
    fs.link(&me, f2, Ino::ROOT, b"f-link").await.unwrap();
    fs.remove(&me, Ino::ROOT, b"f").await.unwrap();
    assert_eq!(fs.get_xattr(&me, f2, b"k").await.unwrap(), b"v");
    fs.remove(&me, Ino::ROOT, b"f-link").await.unwrap();
    assert_eq!(stored(&fx, f2).await, 0);
    // RENAME over a file with attributes.
    let victim = file(&fx, "victim", 0o644).await;
    set(&fx, victim, b"k", b"v").await;
    let src = file(&fx, "src", 0o644).await;
    fs.rename(&me, Ino::ROOT, b"src", Ino::ROOT, b"victim")
        .await
        .unwrap();
    assert_eq!(stored(&fx, victim).await, 0);
    assert!(names(&fx, &me, src, 5).await.is_empty());
    // Unlinked while open: readable and changeable until the last close.
    let open = file(&fx, "open", 0o644).await;
    set(&fx, open, b"k", b"v").await;
    fs.open_ref(open);
    fs.remove(&me, Ino::ROOT, b"open").await.unwrap();
    assert_eq!(fs.get_xattr(&me, open, b"k").await.unwrap(), b"v");
    set(&fx, open, b"k2", b"w").await;
    assert_eq!(stored(&fx, open).await, 2);
    fs.close_ref(open).await.unwrap();
    assert_eq!(stored(&fx, open).await, 0);
    // A directory.
    let d = fs
        .mkdir(&me, Ino::ROOT, b"d", &mode(0o755))
        .await
        .unwrap()
        .ino;
    set(&fx, d, b"k", b"v").await;
    fs.rmdir(&me, Ino::ROOT, b"d").await.unwrap();
    assert_eq!(stored(&fx, d).await, 0);
}

/// The recycle bin keeps a deleted file's attributes (same inode) until it purges it.
async fn recycle_bin_keeps_then_purges(backend: &str) {
    let fx = fixture(backend).await;
    let fs = &fx.fs;
    fs.set_options(ShareOptions {
        root_mode: 0o777,
        trash: TrashPolicy {
            enabled: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let f = file(&fx, "f", 0o644).await;
    set(&fx, f, b"k", b"v").await;
    fs.remove(&owner(), Ino::ROOT, b"f").await.unwrap();
    assert_eq!(fs.get_xattr(&owner(), f, b"k").await.unwrap(), b"v");
    fs.trash_empty().await.unwrap();
    assert_eq!(stored(&fx, f).await, 0);
    assert!(matches!(
        fs.get_xattr(&owner(), f, b"k").await,
        Err(FsError::Stale)
    ));
}

/// Concurrent changes of one inode's attributes all land (one transaction each, under
/// the inode's lock): no lost update.
async fn concurrent_sets_all_land(backend: &str) {
    let fx = fixture(backend).await;
    let f = file(&fx, "f", 0o644).await;
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let fs = fx.fs.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("n{i:02}").into_bytes();
            fs.set_xattr(&owner(), f, &name, &i.to_be_bytes(), EITHER)
                .await
        }));
    }
    let results: Vec<FsResult<_>> = futures_join(tasks).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let all = names(&fx, &owner(), f, 100).await;
    assert_eq!(all.len(), 16);
    for i in 0..16u32 {
        let name = format!("n{i:02}").into_bytes();
        let v = fx.fs.get_xattr(&owner(), f, &name).await.unwrap();
        assert_eq!(v, i.to_be_bytes());
    }
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("memory").await } )*
        }
        mod sled {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("sled").await } )*
        }
    };
}

per_backend!(
    set_get_list_remove,
    create_and_replace_flags,
    limits,
    list_pages_by_cookie,
    permissions,
    levels_and_read_only_share,
    access_bits,
    gone_with_the_inode,
    recycle_bin_keeps_then_purges,
    concurrent_sets_all_land,
);
