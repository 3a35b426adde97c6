//! Users, groups and share permissions through the control API of the real `dfs`:
//! validation and its status codes, no password or hash in any reply, `identity.json`
//! mode 0600 without clear passwords (and `state.json` without users), persistence across
//! a restart, and the identity part of ApplyConfig (hashed on arrival, kept when the
//! password is left empty, absent = unchanged).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use dittofs_proto::v1 as pb;
use dittofs_proto::v1::control_service_client::ControlServiceClient;
use std::os::unix::fs::PermissionsExt;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type AuthFn =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Client = ControlServiceClient<InterceptedService<Channel, AuthFn>>;

const PW_ALICE: &str = "alice-Clear-Pw-1";
const PW_BOB: &str = "bob-Clear-Pw-2";

async fn client(s: &common::Server) -> Client {
    let token = std::fs::read_to_string(s.data.join("control-token"))
        .unwrap()
        .trim()
        .to_owned();
    let ch = Channel::from_shared(format!("http://127.0.0.1:{}", s.control_port))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let f: AuthFn = Box::new(move |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        Ok(r)
    });
    ControlServiceClient::with_interceptor(ch, f)
}

fn spec(name: &str, uid: Option<u32>, groups: &[&str], pw: &str) -> pb::UserSpec {
    pb::UserSpec {
        name: name.into(),
        uid,
        gid: None,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        disabled: false,
        password: pw.into(),
    }
}

/// Fails when any text (a reply's Debug form, a file) holds a password or a hash.
fn assert_no_secret(what: &str, text: &str, hashes: &[String]) {
    for s in [PW_ALICE, PW_BOB, "$argon2"] {
        assert!(!text.contains(s), "{what} holds {s:?}: {text}");
    }
    for h in hashes {
        assert!(!text.contains(h.as_str()), "{what} holds a hash");
    }
}

fn stored_nt_hashes(s: &common::Server) -> Vec<String> {
    let text = std::fs::read_to_string(s.data.join("control/identity.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["users"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|u| u["hashes"]["nt"].as_str().map(str::to_owned))
        .collect()
}

async fn code<T: std::fmt::Debug>(
    f: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> (Code, String) {
    let e = f.await.expect_err("refused");
    (e.code(), e.message().to_owned())
}

#[tokio::test]
async fn users_groups_grants_validated_persisted_and_never_returned_with_secrets() {
    let mut s = common::Server::start();
    let mut c = client(&s).await;
    let staff = c
        .create_group(pb::CreateGroupRequest {
            name: "staff".into(),
            gid: Some(500),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(staff.gid, 500);
    let alice = c
        .create_user(pb::CreateUserRequest {
            user: Some(spec("alice", Some(2001), &["staff"], PW_ALICE)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (alice.uid, alice.gid, alice.has_password),
        (2001, 2001, true)
    );
    let bob = c
        .create_user(pb::CreateUserRequest {
            user: Some(spec("bob", None, &[], PW_BOB)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.uid, 1000, "lowest free uid from 1000");

    // Validation, each with its status code and a message naming the problem.
    let refusals = [
        (
            spec("alice", Some(3000), &[], "x"),
            Code::AlreadyExists,
            "already exists",
        ),
        (
            spec("carol", Some(2001), &[], "x"),
            Code::InvalidArgument,
            "uid 2001 is already used by user \"alice\"",
        ),
        (
            spec("carol", None, &["nope"], "x"),
            Code::NotFound,
            "group \"nope\" does not exist",
        ),
        (
            spec("carol", None, &[], ""),
            Code::InvalidArgument,
            "password is required",
        ),
        (
            spec("-carol", None, &[], "x"),
            Code::InvalidArgument,
            "user name \"-carol\" is not valid",
        ),
    ];
    for (u, want, msg) in refusals {
        let (got, m) = code(c.create_user(pb::CreateUserRequest { user: Some(u) })).await;
        assert_eq!(got, want, "{m}");
        assert!(m.contains(msg), "{m}");
    }
    let grant = |user: &str, level: &str| pb::GrantSharePermissionRequest {
        share: "/export".into(),
        user: user.into(),
        group: String::new(),
        level: level.into(),
    };
    let (got, m) = code(c.grant_share_permission(grant("alice", "write"))).await;
    assert_eq!(got, Code::InvalidArgument, "{m}");
    assert!(m.contains("unknown access level \"write\""), "{m}");
    let (got, _) = code(c.grant_share_permission(grant("nobody", "read"))).await;
    assert_eq!(got, Code::NotFound);
    let mut no_share = grant("alice", "read");
    no_share.share = "/nope".into();
    assert_eq!(
        code(c.grant_share_permission(no_share)).await.0,
        Code::NotFound
    );
    let mut both = grant("alice", "read");
    both.group = "staff".into();
    assert_eq!(
        code(c.grant_share_permission(both)).await.0,
        Code::InvalidArgument
    );
    let (got, m) = code(c.remove_group(pb::RemoveGroupRequest {
        name: "staff".into(),
    }))
    .await;
    assert_eq!(got, Code::FailedPrecondition, "{m}");

    c.grant_share_permission(grant("alice", "read"))
        .await
        .unwrap();
    let perms = c
        .grant_share_permission(pb::GrantSharePermissionRequest {
            share: "/export".into(),
            user: String::new(),
            group: "staff".into(),
            level: "read-write".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(perms.default_level, "read-write", "unset default");
    assert_eq!(perms.grants.len(), 2);
    c.set_share_default_level(pb::SetShareDefaultLevelRequest {
        share: "/export".into(),
        level: "read".into(),
    })
    .await
    .unwrap();
    c.edit_user(pb::EditUserRequest {
        name: "bob".into(),
        enabled: Some(false),
        ..Default::default()
    })
    .await
    .unwrap();
    c.set_password(pb::SetPasswordRequest {
        name: "bob".into(),
        password: PW_BOB.into(),
    })
    .await
    .unwrap();

    // No reply, and no file but identity.json, holds a password or a hash.
    let hashes = stored_nt_hashes(&s);
    assert_eq!(hashes.len(), 2);
    let replies = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        c.list_users(pb::ListUsersRequest {})
            .await
            .unwrap()
            .into_inner(),
        c.get_user(pb::GetUserRequest {
            name: "alice".into()
        })
        .await
        .unwrap()
        .into_inner(),
        c.get_config(pb::GetConfigRequest {})
            .await
            .unwrap()
            .into_inner(),
        c.list_groups(pb::ListGroupsRequest {})
            .await
            .unwrap()
            .into_inner(),
        c.get_share_permissions(pb::GetSharePermissionsRequest {
            share: "/export".into()
        })
        .await
        .unwrap()
        .into_inner(),
    );
    assert_no_secret("replies", &replies, &hashes);
    assert!(
        replies.contains("alice") && replies.contains("members: [\"alice\"]"),
        "{replies}"
    );
    let ident = s.data.join("control/identity.json");
    let mode = std::fs::metadata(&ident).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "identity.json mode {mode:o}");
    let text = std::fs::read_to_string(&ident).unwrap();
    assert!(text.contains("$argon2id$") && !text.contains(PW_ALICE) && !text.contains(PW_BOB));
    let state = std::fs::read_to_string(s.data.join("control/state.json")).unwrap_or_default();
    assert_no_secret("state.json", &state, &hashes);
    assert!(!state.contains("alice"), "{state}");

    // Persisted: the same identity after a restart.
    let before = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .identity;
    s.stop();
    s.spawn();
    let mut c = client(&s).await;
    let after = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .identity;
    assert_eq!(after, before);
    let users = c
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap()
        .into_inner()
        .users;
    assert!(!users.iter().find(|u| u.name == "bob").unwrap().enabled);

    // ApplyConfig: the identity as GetConfig returns it (no passwords) keeps the hashes;
    // a new user's password is hashed on arrival; absent = unchanged.
    let mut desired = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut identity = desired.identity.clone().unwrap();
    identity
        .users
        .push(spec("dave", Some(3000), &[], "dave-Clear-Pw-3"));
    desired.identity = Some(identity);
    desired.generation = 0;
    let changes = |r: pb::ApplyConfigResponse| -> Vec<String> {
        r.changes
            .iter()
            .map(|c| format!("{} {} {}", c.kind, c.name, c.action))
            .collect()
    };
    let apply = |dry_run| pb::ApplyConfigRequest {
        state: Some(desired.clone()),
        dry_run,
    };
    let dry = c.apply_config(apply(true)).await.unwrap().into_inner();
    assert_eq!(
        changes(dry),
        ["user dave added"],
        "a dry run reports the new user"
    );
    c.apply_config(apply(false)).await.unwrap();
    let again = c.apply_config(apply(true)).await.unwrap().into_inner();
    assert!(
        changes(again).is_empty(),
        "the same state again changes nothing"
    );
    let now = stored_nt_hashes(&s);
    assert_eq!(now.len(), 3);
    assert!(hashes.iter().all(|h| now.contains(h)), "stored hashes kept");
    desired.identity = None;
    c.apply_config(pb::ApplyConfigRequest {
        state: Some(desired.clone()),
        dry_run: false,
    })
    .await
    .unwrap();
    assert_eq!(
        c.list_users(pb::ListUsersRequest {})
            .await
            .unwrap()
            .into_inner()
            .users
            .len(),
        3
    );
    let mut orphan = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    orphan.generation = 0;
    orphan
        .identity
        .as_mut()
        .unwrap()
        .users
        .push(spec("erin", None, &[], ""));
    let (got, m) = code(c.apply_config(pb::ApplyConfigRequest {
        state: Some(orphan),
        dry_run: false,
    }))
    .await;
    assert_eq!(got, Code::InvalidArgument, "{m}");
    assert!(m.contains("\"erin\": a password is required"), "{m}");

    // Removal drops a user's grants; a group without members goes.
    c.remove_user(pb::RemoveUserRequest {
        name: "alice".into(),
    })
    .await
    .unwrap();
    c.remove_group(pb::RemoveGroupRequest {
        name: "staff".into(),
    })
    .await
    .unwrap();
    let perms = c
        .get_share_permissions(pb::GetSharePermissionsRequest {
            share: "/export".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(perms.grants.is_empty(), "{perms:?}");
    assert_eq!(perms.default_level, "read");
}

// ------------------------------------------------------------------ NFS enforcement

use dittofs_nfs::nfs3::*;

fn dirop(dir: &NfsFh3, name: &str) -> DirOpArgs3 {
    DirOpArgs3 {
        dir: dir.clone(),
        name: Filename3(name.as_bytes().to_vec()),
    }
}

/// The status of each kind of call, as uid `uid`, on the share root `root`, its file
/// `f` and its directory `d` (names made unique by `tag`).
fn statuses(
    nfs: &mut common::Client,
    uid: u32,
    root: &NfsFh3,
    f: &NfsFh3,
    tag: &str,
) -> Vec<(&'static str, NfsStat3)> {
    nfs.cred = (uid, uid, Vec::new());
    let sattr = |mode| Sattr3 {
        mode: Some(mode),
        ..Default::default()
    };
    let getattr: GetattrRes = nfs.call(
        PROGRAM,
        1,
        &GetattrArgs {
            object: root.clone(),
        },
    );
    let read: ReadRes = nfs.call(
        PROGRAM,
        6,
        &ReadArgs {
            file: f.clone(),
            offset: 0,
            count: 4,
        },
    );
    // touch -m: allowed to any writer of the file (a chmod would need its owner).
    let touch = Sattr3 {
        mtime: SetTime::ServerTime,
        ..Default::default()
    };
    let setattr: SetattrRes = nfs.call(
        PROGRAM,
        2,
        &SetattrArgs {
            object: f.clone(),
            new_attributes: touch,
            guard: None,
        },
    );
    let mkdir: MkdirRes = nfs.call(
        PROGRAM,
        9,
        &MkdirArgs {
            where_: dirop(root, &format!("dir-{tag}")),
            attributes: sattr(0o777),
        },
    );
    let rename: RenameRes = nfs.call(
        PROGRAM,
        14,
        &RenameArgs {
            from: dirop(root, "f"),
            to: dirop(root, "f"),
        },
    );
    let remove: RemoveRes = nfs.call(
        PROGRAM,
        12,
        &RemoveArgs {
            object: dirop(root, &format!("missing-{tag}")),
        },
    );
    vec![
        ("GETATTR", getattr.status()),
        ("READ", read.status()),
        ("WRITE", nfs.write_sync(f, 0, b"data")),
        ("SETATTR", setattr.status()),
        ("CREATE", nfs.create(root, &format!("file-{tag}")).status()),
        ("MKDIR", mkdir.status()),
        ("RENAME", rename.status()),
        ("REMOVE", remove.status()),
    ]
}

fn expect(got: &[(&str, NfsStat3)], want: &[(&str, NfsStat3)], who: &str) {
    for ((op, g), (_, w)) in got.iter().zip(want) {
        assert_eq!(g, w, "{who}: {op}");
    }
}

/// Two users and a disabled one, configured through the control API, as AUTH_SYS uids on
/// the wire: read-only refused on every change with ACCES, read-write served, a disabled
/// user refused even GETATTR, unknown uids at the share default; changes apply at once.
#[tokio::test]
async fn nfs_callers_get_their_grant_level() {
    let s = common::Server::start();
    let mut c = client(&s).await;
    let mut nfs = common::Client::connect(s.nfs_port);
    let root = nfs.mount_root();
    let f = nfs.create_file(&root, "f");
    assert_eq!(nfs.write_sync(&f, 0, b"data"), NfsStat3::Ok);
    let rw_all: SetattrRes = nfs.call(
        PROGRAM,
        2,
        &SetattrArgs {
            object: f.clone(),
            new_attributes: Sattr3 {
                mode: Some(0o666),
                ..Default::default()
            },
            guard: None,
        },
    );
    assert_eq!(rw_all.status(), NfsStat3::Ok);
    c.create_group(pb::CreateGroupRequest {
        name: "staff".into(),
        gid: Some(600),
    })
    .await
    .unwrap();
    for (name, uid, groups) in [
        ("reader", 2001, vec![]),
        ("writer", 2002, vec!["staff"]),
        ("off", 2003, vec![]),
    ] {
        let mut u = spec(name, Some(uid), &groups, "pw-not-checked-here");
        u.disabled = name == "off";
        c.create_user(pb::CreateUserRequest { user: Some(u) })
            .await
            .unwrap();
    }
    let grant = |user: &str, group: &str, level: &str| pb::GrantSharePermissionRequest {
        share: "/export".into(),
        user: user.into(),
        group: group.into(),
        level: level.into(),
    };
    c.grant_share_permission(grant("reader", "", "read"))
        .await
        .unwrap();
    c.grant_share_permission(grant("", "staff", "read-write"))
        .await
        .unwrap();
    c.set_share_default_level(pb::SetShareDefaultLevelRequest {
        share: "/export".into(),
        level: "none".into(),
    })
    .await
    .unwrap();

    use NfsStat3::{Acces, NoEnt, Ok};
    let read_only = [
        ("GETATTR", Ok),
        ("READ", Ok),
        ("WRITE", Acces),
        ("SETATTR", Acces),
        ("CREATE", Acces),
        ("MKDIR", Acces),
        ("RENAME", Acces),
        ("REMOVE", Acces),
    ];
    expect(
        &statuses(&mut nfs, 2001, &root, &f, "r"),
        &read_only,
        "read grant",
    );
    let read_write = [
        ("GETATTR", Ok),
        ("READ", Ok),
        ("WRITE", Ok),
        ("SETATTR", Ok),
        ("CREATE", Ok),
        ("MKDIR", Ok),
        ("RENAME", Ok),
        ("REMOVE", NoEnt),
    ];
    expect(
        &statuses(&mut nfs, 2002, &root, &f, "w"),
        &read_write,
        "group read-write",
    );
    expect(
        &statuses(&mut nfs, 2003, &root, &f, "off"),
        &[("GETATTR", Acces), ("READ", Acces), ("WRITE", Acces)],
        "disabled",
    );
    let none = [
        ("GETATTR", Ok),
        ("READ", Acces),
        ("WRITE", Acces),
        ("SETATTR", Acces),
    ];
    expect(
        &statuses(&mut nfs, 4242, &root, &f, "u"),
        &none,
        "unknown uid: default none",
    );

    // Changes reach the NFS server without a restart.
    c.set_share_default_level(pb::SetShareDefaultLevelRequest {
        share: "/export".into(),
        level: "read-write".into(),
    })
    .await
    .unwrap();
    expect(
        &statuses(&mut nfs, 4242, &root, &f, "u2"),
        &read_write,
        "unknown uid: default read-write",
    );
    c.edit_user(pb::EditUserRequest {
        name: "off".into(),
        enabled: Some(true),
        ..Default::default()
    })
    .await
    .unwrap();
    expect(
        &statuses(&mut nfs, 2003, &root, &f, "on"),
        &read_write,
        "re-enabled (default read-write)",
    );
    c.revoke_share_permission(pb::RevokeSharePermissionRequest {
        share: "/export".into(),
        user: "reader".into(),
        group: String::new(),
    })
    .await
    .unwrap();
    expect(
        &statuses(&mut nfs, 2001, &root, &f, "r2"),
        &read_write,
        "grant revoked: default",
    );
}
