//! Sample values of every NFSv3 / MOUNT v3 argument and result type (RFC 1813), used by
//! the round-trip and malformed-input tests.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use dittofs_nfs::mount3::*;
use dittofs_nfs::nfs3::*;

pub fn fh(n: u8, len: usize) -> NfsFh3 {
    NfsFh3((0..len).map(|i| n.wrapping_add(i as u8)).collect())
}

pub fn t(s: u32, ns: u32) -> NfsTime3 {
    NfsTime3 {
        seconds: s,
        nseconds: ns,
    }
}

pub fn fattr(ftype: Ftype3) -> Fattr3 {
    Fattr3 {
        ftype,
        mode: 0o100644,
        nlink: 2,
        uid: 1000,
        gid: 100,
        size: 0x1_0000_0001,
        used: 4096,
        rdev: SpecData3 {
            specdata1: 8,
            specdata2: 1,
        },
        fsid: 0xDEAD_BEEF_0000_0001,
        fileid: 42,
        atime: t(1, 2),
        mtime: t(3, 4),
        ctime: t(5, 999_999_999),
    }
}

pub fn wcc(full: bool) -> WccData {
    if full {
        WccData {
            before: Some(WccAttr {
                size: 10,
                mtime: t(7, 8),
                ctime: t(9, 10),
            }),
            after: Some(fattr(Ftype3::Dir)),
        }
    } else {
        WccData::default()
    }
}

pub fn sattr_all() -> Sattr3 {
    Sattr3 {
        mode: Some(0o755),
        uid: Some(0),
        gid: Some(u32::MAX),
        size: Some(u64::MAX),
        atime: SetTime::ServerTime,
        mtime: SetTime::ClientTime(t(11, 12)),
    }
}

pub fn dirop(name: &str) -> DirOpArgs3 {
    DirOpArgs3 {
        dir: fh(1, 64),
        name: Filename3::from(name),
    }
}

/// Argument samples: several per procedure, covering every union arm.
pub fn nfs3_args() -> Vec<Nfs3Args> {
    vec![
        Nfs3Args::Null,
        Nfs3Args::Getattr(GetattrArgs { object: fh(3, 8) }),
        Nfs3Args::Getattr(GetattrArgs { object: fh(3, 0) }),
        Nfs3Args::Setattr(SetattrArgs {
            object: fh(4, 13),
            new_attributes: sattr_all(),
            guard: Some(t(1, 1)),
        }),
        Nfs3Args::Setattr(SetattrArgs {
            object: fh(4, 13),
            new_attributes: Sattr3::default(),
            guard: None,
        }),
        Nfs3Args::Lookup(LookupArgs {
            what: dirop("hello.txt"),
        }),
        Nfs3Args::Lookup(LookupArgs {
            what: DirOpArgs3 {
                dir: fh(2, 5),
                name: Filename3(vec![0xff, 0xfe, b'/', 0]),
            },
        }),
        Nfs3Args::Access(AccessArgs {
            object: fh(5, 32),
            access: ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_EXECUTE,
        }),
        Nfs3Args::Readlink(ReadlinkArgs { symlink: fh(6, 7) }),
        Nfs3Args::Read(ReadArgs {
            file: fh(7, 16),
            offset: 1 << 40,
            count: 1 << 20,
        }),
        Nfs3Args::Write(WriteArgs {
            file: fh(8, 16),
            offset: 4096,
            count: 5,
            stable: StableHow::Unstable,
            data: Bytes::from_static(b"hello"),
        }),
        Nfs3Args::Write(WriteArgs {
            file: fh(8, 16),
            offset: 0,
            count: 0,
            stable: StableHow::FileSync,
            data: Bytes::new(),
        }),
        Nfs3Args::Create(CreateArgs {
            where_: dirop("a"),
            how: CreateHow3::Unchecked(sattr_all()),
        }),
        Nfs3Args::Create(CreateArgs {
            where_: dirop("ab"),
            how: CreateHow3::Guarded(Sattr3 {
                mode: Some(0o600),
                ..Sattr3::default()
            }),
        }),
        Nfs3Args::Create(CreateArgs {
            where_: dirop("abc"),
            how: CreateHow3::Exclusive(*b"verifier"),
        }),
        Nfs3Args::Mkdir(MkdirArgs {
            where_: dirop("dir"),
            attributes: sattr_all(),
        }),
        Nfs3Args::Symlink(SymlinkArgs {
            where_: dirop("link"),
            symlink: SymlinkData3 {
                symlink_attributes: Sattr3::default(),
                symlink_data: NfsPath3::from("../target/file"),
            },
        }),
        Nfs3Args::Mknod(MknodArgs {
            where_: dirop("tty"),
            what: MknodData3::Chr(DeviceData3 {
                dev_attributes: sattr_all(),
                spec: SpecData3 {
                    specdata1: 4,
                    specdata2: 1,
                },
            }),
        }),
        Nfs3Args::Mknod(MknodArgs {
            where_: dirop("sda"),
            what: MknodData3::Blk(DeviceData3 {
                dev_attributes: Sattr3::default(),
                spec: SpecData3 {
                    specdata1: 8,
                    specdata2: 0,
                },
            }),
        }),
        Nfs3Args::Mknod(MknodArgs {
            where_: dirop("sock"),
            what: MknodData3::Sock(Sattr3::default()),
        }),
        Nfs3Args::Mknod(MknodArgs {
            where_: dirop("fifo"),
            what: MknodData3::Fifo(sattr_all()),
        }),
        Nfs3Args::Mknod(MknodArgs {
            where_: dirop("reg"),
            what: MknodData3::Other(Ftype3::Reg),
        }),
        Nfs3Args::Remove(RemoveArgs {
            object: dirop("gone"),
        }),
        Nfs3Args::Rmdir(RmdirArgs {
            object: dirop("gonedir"),
        }),
        Nfs3Args::Rename(RenameArgs {
            from: dirop("old"),
            to: DirOpArgs3 {
                dir: fh(9, 3),
                name: Filename3::from("new"),
            },
        }),
        Nfs3Args::Link(LinkArgs {
            file: fh(10, 20),
            link: dirop("hard"),
        }),
        Nfs3Args::Readdir(ReaddirArgs {
            dir: fh(11, 64),
            cookie: 0,
            cookieverf: [0; 8],
            count: 4096,
        }),
        Nfs3Args::Readdirplus(ReaddirplusArgs {
            dir: fh(12, 64),
            cookie: 77,
            cookieverf: *b"cookieve",
            dircount: 1024,
            maxcount: 32768,
        }),
        Nfs3Args::Fsstat(FsstatArgs { fsroot: fh(13, 1) }),
        Nfs3Args::Fsinfo(FsinfoArgs { fsroot: fh(14, 2) }),
        Nfs3Args::Pathconf(PathconfArgs { object: fh(15, 3) }),
        Nfs3Args::Commit(CommitArgs {
            file: fh(16, 4),
            offset: 0,
            count: 0,
        }),
    ]
}

/// Result samples: for every procedure at least one `resok` and one `resfail`.
pub fn nfs3_res() -> Vec<Nfs3Res> {
    let pa = Some(fattr(Ftype3::Reg));
    vec![
        Nfs3Res::Null,
        Nfs3Res::Getattr(Res3::Ok(GetattrResOk {
            obj_attributes: fattr(Ftype3::Lnk),
        })),
        Nfs3Res::Getattr(Res3::Fail(NfsStat3::Stale, ())),
        Nfs3Res::Setattr(Res3::Ok(SetattrResOk { obj_wcc: wcc(true) })),
        Nfs3Res::Setattr(Res3::Fail(
            NfsStat3::NotSync,
            SetattrResFail {
                obj_wcc: wcc(false),
            },
        )),
        Nfs3Res::Lookup(Res3::Ok(LookupResOk {
            object: fh(1, 64),
            obj_attributes: pa.clone(),
            dir_attributes: None,
        })),
        Nfs3Res::Lookup(Res3::Fail(
            NfsStat3::NoEnt,
            LookupResFail {
                dir_attributes: pa.clone(),
            },
        )),
        Nfs3Res::Access(Res3::Ok(AccessResOk {
            obj_attributes: None,
            access: ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE,
        })),
        Nfs3Res::Access(Res3::Fail(
            NfsStat3::BadHandle,
            AccessResFail {
                obj_attributes: None,
            },
        )),
        Nfs3Res::Readlink(Res3::Ok(ReadlinkResOk {
            symlink_attributes: pa.clone(),
            data: NfsPath3::from("/abs/target"),
        })),
        Nfs3Res::Readlink(Res3::Fail(
            NfsStat3::Inval,
            ReadlinkResFail {
                symlink_attributes: None,
            },
        )),
        Nfs3Res::Read(Res3::Ok(ReadResOk {
            file_attributes: pa.clone(),
            count: 3,
            eof: true,
            data: Bytes::from_static(b"abc"),
        })),
        Nfs3Res::Read(Res3::Fail(
            NfsStat3::Io,
            ReadResFail {
                file_attributes: None,
            },
        )),
        Nfs3Res::Write(Res3::Ok(WriteResOk {
            file_wcc: wcc(true),
            count: 5,
            committed: StableHow::DataSync,
            verf: *b"wverf123",
        })),
        Nfs3Res::Write(Res3::Fail(
            NfsStat3::NoSpc,
            WriteResFail {
                file_wcc: wcc(false),
            },
        )),
        Nfs3Res::Create(Res3::Ok(CreateResOk {
            obj: Some(fh(2, 12)),
            obj_attributes: pa.clone(),
            dir_wcc: wcc(true),
        })),
        Nfs3Res::Create(Res3::Fail(
            NfsStat3::Exist,
            CreateResFail { dir_wcc: wcc(true) },
        )),
        Nfs3Res::Mkdir(Res3::Ok(CreateResOk {
            obj: None,
            obj_attributes: None,
            dir_wcc: wcc(false),
        })),
        Nfs3Res::Mkdir(Res3::Fail(
            NfsStat3::NameTooLong,
            CreateResFail {
                dir_wcc: wcc(false),
            },
        )),
        Nfs3Res::Symlink(Res3::Ok(CreateResOk {
            obj: Some(fh(3, 1)),
            obj_attributes: None,
            dir_wcc: wcc(true),
        })),
        Nfs3Res::Symlink(Res3::Fail(
            NfsStat3::NotSupp,
            CreateResFail {
                dir_wcc: wcc(false),
            },
        )),
        Nfs3Res::Mknod(Res3::Ok(CreateResOk {
            obj: Some(fh(4, 9)),
            obj_attributes: Some(fattr(Ftype3::Fifo)),
            dir_wcc: wcc(true),
        })),
        Nfs3Res::Mknod(Res3::Fail(
            NfsStat3::BadType,
            CreateResFail {
                dir_wcc: wcc(false),
            },
        )),
        Nfs3Res::Remove(Res3::Ok(RemoveResOk { dir_wcc: wcc(true) })),
        Nfs3Res::Remove(Res3::Fail(
            NfsStat3::Acces,
            CreateResFail {
                dir_wcc: wcc(false),
            },
        )),
        Nfs3Res::Rmdir(Res3::Ok(RemoveResOk {
            dir_wcc: wcc(false),
        })),
        Nfs3Res::Rmdir(Res3::Fail(
            NfsStat3::NotEmpty,
            CreateResFail { dir_wcc: wcc(true) },
        )),
        Nfs3Res::Rename(Res3::Ok(RenameResOk {
            fromdir_wcc: wcc(true),
            todir_wcc: wcc(false),
        })),
        Nfs3Res::Rename(Res3::Fail(
            NfsStat3::XDev,
            RenameResFail {
                fromdir_wcc: wcc(false),
                todir_wcc: wcc(true),
            },
        )),
        Nfs3Res::Link(Res3::Ok(LinkResOk {
            file_attributes: pa.clone(),
            linkdir_wcc: wcc(true),
        })),
        Nfs3Res::Link(Res3::Fail(
            NfsStat3::MLink,
            LinkResFail {
                file_attributes: None,
                linkdir_wcc: wcc(false),
            },
        )),
        Nfs3Res::Readdir(Res3::Ok(ReaddirResOk {
            dir_attributes: Some(fattr(Ftype3::Dir)),
            cookieverf: *b"cv123456",
            entries: vec![
                Entry3 {
                    fileid: 1,
                    name: Filename3::from("."),
                    cookie: 1,
                },
                Entry3 {
                    fileid: 2,
                    name: Filename3::from("a-longer-name"),
                    cookie: 2,
                },
            ],
            eof: true,
        })),
        Nfs3Res::Readdir(Res3::Ok(ReaddirResOk {
            dir_attributes: None,
            cookieverf: [0; 8],
            entries: vec![],
            eof: false,
        })),
        Nfs3Res::Readdir(Res3::Fail(
            NfsStat3::BadCookie,
            ReaddirResFail {
                dir_attributes: None,
            },
        )),
        Nfs3Res::Readdirplus(Res3::Ok(ReaddirplusResOk {
            dir_attributes: Some(fattr(Ftype3::Dir)),
            cookieverf: *b"cv123456",
            entries: vec![
                Entryplus3 {
                    fileid: 3,
                    name: Filename3::from("x"),
                    cookie: 10,
                    name_attributes: pa.clone(),
                    name_handle: Some(fh(5, 20)),
                },
                Entryplus3 {
                    fileid: 4,
                    name: Filename3::from("yz"),
                    cookie: 11,
                    name_attributes: None,
                    name_handle: None,
                },
            ],
            eof: false,
        })),
        Nfs3Res::Readdirplus(Res3::Fail(
            NfsStat3::TooSmall,
            ReaddirplusResFail {
                dir_attributes: pa.clone(),
            },
        )),
        Nfs3Res::Fsstat(Res3::Ok(FsstatResOk {
            obj_attributes: pa.clone(),
            tbytes: 1 << 40,
            fbytes: 1 << 39,
            abytes: 1 << 38,
            tfiles: 1_000_000,
            ffiles: 999_999,
            afiles: 999_998,
            invarsec: 0,
        })),
        Nfs3Res::Fsstat(Res3::Fail(
            NfsStat3::ServerFault,
            FsstatResFail {
                obj_attributes: None,
            },
        )),
        Nfs3Res::Fsinfo(Res3::Ok(FsinfoResOk {
            obj_attributes: None,
            rtmax: 1 << 20,
            rtpref: 1 << 20,
            rtmult: 4096,
            wtmax: 1 << 20,
            wtpref: 1 << 20,
            wtmult: 4096,
            dtpref: 65536,
            maxfilesize: u64::MAX,
            time_delta: t(0, 1),
            properties: FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME,
        })),
        Nfs3Res::Fsinfo(Res3::Fail(
            NfsStat3::Jukebox,
            FsinfoResFail {
                obj_attributes: None,
            },
        )),
        Nfs3Res::Pathconf(Res3::Ok(PathconfResOk {
            obj_attributes: pa.clone(),
            linkmax: 32000,
            name_max: 255,
            no_trunc: true,
            chown_restricted: true,
            case_insensitive: false,
            case_preserving: true,
        })),
        Nfs3Res::Pathconf(Res3::Fail(
            NfsStat3::Perm,
            PathconfResFail {
                obj_attributes: None,
            },
        )),
        Nfs3Res::Commit(Res3::Ok(CommitResOk {
            file_wcc: wcc(true),
            verf: *b"wverf123",
        })),
        Nfs3Res::Commit(Res3::Fail(
            NfsStat3::DQuot,
            CommitResFail {
                file_wcc: wcc(false),
            },
        )),
    ]
}

pub fn mount_args() -> Vec<MountArgs> {
    vec![
        MountArgs::Null,
        MountArgs::Mnt(MntArgs {
            dirpath: DirPath::from("/export"),
        }),
        MountArgs::Dump,
        MountArgs::Umnt(UmntArgs {
            dirpath: DirPath::from("/export/sub"),
        }),
        MountArgs::Umntall,
        MountArgs::Export,
    ]
}

pub fn mount_res() -> Vec<MountRes> {
    vec![
        MountRes::Null,
        MountRes::Mnt(MntRes::Ok(MntResOk {
            fhandle: fh(1, 64),
            auth_flavors: vec![1, 0],
        })),
        MountRes::Mnt(MntRes::Err(MountStat3::NoEnt)),
        MountRes::Dump(DumpRes::default()),
        MountRes::Dump(DumpRes {
            mounts: vec![
                MountBody {
                    hostname: MountName::from("client1"),
                    directory: DirPath::from("/export"),
                },
                MountBody {
                    hostname: MountName::from("c2"),
                    directory: DirPath::from("/"),
                },
            ],
        }),
        MountRes::Umnt,
        MountRes::Umntall,
        MountRes::Export(ExportRes::default()),
        MountRes::Export(ExportRes {
            exports: vec![
                ExportNode {
                    dir: DirPath::from("/export"),
                    groups: vec![],
                },
                ExportNode {
                    dir: DirPath::from("/data"),
                    groups: vec![MountName::from("10.0.0.0/8"), MountName::from("@ng")],
                },
            ],
        }),
    ]
}
