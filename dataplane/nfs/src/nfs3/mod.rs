//! NFS version 3 protocol codec (RFC 1813): program 100003, version 3, all 22
//! procedures (RFC 1813 section 3.3). Types live in private submodules split by
//! procedure family and are all re-exported here:
//!
//! * basic types and errors (RFC 1813 sections 2.5, 2.6): `types.rs`
//! * GETATTR, SETATTR, ACCESS: `attr.rs`
//! * LOOKUP, READLINK, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK: `ns.rs`
//! * READ, WRITE, COMMIT: `io.rs`
//! * READDIR, READDIRPLUS: `dir.rs`
//! * FSSTAT, FSINFO, PATHCONF: `fs.rs`
//!
//! Every `*Args` implements [`XdrDecode`] (server side) and [`XdrEncode`] (client side /
//! tests); every `*Res` ([`Res3`]) implements both as well. [`Nfs3Args`] and
//! [`Nfs3Res`] dispatch on the procedure number.

mod attr;
mod dir;
mod fs;
mod io;
mod ns;
mod types;

pub use attr::*;
pub use dir::*;
pub use fs::*;
pub use io::*;
pub use ns::*;
pub use types::*;

use bytes::BufMut;

use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrResult, xdr_enum};

/// RPC program number of NFS (RFC 1813 section 3).
pub const PROGRAM: u32 = 100_003;
/// NFS protocol version implemented here.
pub const VERSION: u32 = 3;

xdr_enum! {
    /// NFSv3 procedure numbers (RFC 1813 section 3.3).
    pub enum Nfs3Proc ("nfs3 procedure") {
        /// NFSPROC3_NULL.
        Null = 0,
        /// NFSPROC3_GETATTR.
        Getattr = 1,
        /// NFSPROC3_SETATTR.
        Setattr = 2,
        /// NFSPROC3_LOOKUP.
        Lookup = 3,
        /// NFSPROC3_ACCESS.
        Access = 4,
        /// NFSPROC3_READLINK.
        Readlink = 5,
        /// NFSPROC3_READ.
        Read = 6,
        /// NFSPROC3_WRITE.
        Write = 7,
        /// NFSPROC3_CREATE.
        Create = 8,
        /// NFSPROC3_MKDIR.
        Mkdir = 9,
        /// NFSPROC3_SYMLINK.
        Symlink = 10,
        /// NFSPROC3_MKNOD.
        Mknod = 11,
        /// NFSPROC3_REMOVE.
        Remove = 12,
        /// NFSPROC3_RMDIR.
        Rmdir = 13,
        /// NFSPROC3_RENAME.
        Rename = 14,
        /// NFSPROC3_LINK.
        Link = 15,
        /// NFSPROC3_READDIR.
        Readdir = 16,
        /// NFSPROC3_READDIRPLUS.
        Readdirplus = 17,
        /// NFSPROC3_FSSTAT.
        Fsstat = 18,
        /// NFSPROC3_FSINFO.
        Fsinfo = 19,
        /// NFSPROC3_PATHCONF.
        Pathconf = 20,
        /// NFSPROC3_COMMIT.
        Commit = 21,
    }
}

macro_rules! per_proc_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $variant:ident ( $ty:ty ) ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            /// NULL procedure (void).
            Null,
            $(
                #[doc = concat!("The `", stringify!($variant), "` procedure.")]
                $variant($ty),
            )*
        }

        impl $name {
            /// The procedure this value belongs to.
            pub fn proc_num(&self) -> Nfs3Proc {
                match self {
                    $name::Null => Nfs3Proc::Null,
                    $( $name::$variant(_) => Nfs3Proc::$variant, )*
                }
            }

            /// Decode the value of procedure `proc_num`.
            pub fn decode(proc_num: Nfs3Proc, dec: &mut Decoder<'_>) -> XdrResult<Self> {
                Ok(match proc_num {
                    Nfs3Proc::Null => $name::Null,
                    $( Nfs3Proc::$variant => $name::$variant(<$ty>::decode(dec)?), )*
                })
            }
        }

        impl XdrEncode for $name {
            fn encode<B: BufMut>(&self, out: &mut B) {
                match self {
                    $name::Null => {}
                    $( $name::$variant(v) => v.encode(out), )*
                }
            }
        }
    };
}

per_proc_enum! {
    /// Arguments of any NFSv3 procedure.
    pub enum Nfs3Args {
        Getattr(GetattrArgs),
        Setattr(SetattrArgs),
        Lookup(LookupArgs),
        Access(AccessArgs),
        Readlink(ReadlinkArgs),
        Read(ReadArgs),
        Write(WriteArgs),
        Create(CreateArgs),
        Mkdir(MkdirArgs),
        Symlink(SymlinkArgs),
        Mknod(MknodArgs),
        Remove(RemoveArgs),
        Rmdir(RmdirArgs),
        Rename(RenameArgs),
        Link(LinkArgs),
        Readdir(ReaddirArgs),
        Readdirplus(ReaddirplusArgs),
        Fsstat(FsstatArgs),
        Fsinfo(FsinfoArgs),
        Pathconf(PathconfArgs),
        Commit(CommitArgs),
    }
}

per_proc_enum! {
    /// Results of any NFSv3 procedure.
    pub enum Nfs3Res {
        Getattr(GetattrRes),
        Setattr(SetattrRes),
        Lookup(LookupRes),
        Access(AccessRes),
        Readlink(ReadlinkRes),
        Read(ReadRes),
        Write(WriteRes),
        Create(CreateRes),
        Mkdir(MkdirRes),
        Symlink(SymlinkRes),
        Mknod(MknodRes),
        Remove(RemoveRes),
        Rmdir(RmdirRes),
        Rename(RenameRes),
        Link(LinkRes),
        Readdir(ReaddirRes),
        Readdirplus(ReaddirplusRes),
        Fsstat(FsstatRes),
        Fsinfo(FsinfoRes),
        Pathconf(PathconfRes),
        Commit(CommitRes),
    }
}

impl Nfs3Res {
    /// The `nfsstat3` of the result (NFS3_OK for NULL).
    pub fn status(&self) -> NfsStat3 {
        match self {
            Nfs3Res::Null => NfsStat3::Ok,
            Nfs3Res::Getattr(r) => r.status(),
            Nfs3Res::Setattr(r) => r.status(),
            Nfs3Res::Lookup(r) => r.status(),
            Nfs3Res::Access(r) => r.status(),
            Nfs3Res::Readlink(r) => r.status(),
            Nfs3Res::Read(r) => r.status(),
            Nfs3Res::Write(r) => r.status(),
            Nfs3Res::Create(r) => r.status(),
            Nfs3Res::Mkdir(r) => r.status(),
            Nfs3Res::Symlink(r) => r.status(),
            Nfs3Res::Mknod(r) => r.status(),
            Nfs3Res::Remove(r) => r.status(),
            Nfs3Res::Rmdir(r) => r.status(),
            Nfs3Res::Rename(r) => r.status(),
            Nfs3Res::Link(r) => r.status(),
            Nfs3Res::Readdir(r) => r.status(),
            Nfs3Res::Readdirplus(r) => r.status(),
            Nfs3Res::Fsstat(r) => r.status(),
            Nfs3Res::Fsinfo(r) => r.status(),
            Nfs3Res::Pathconf(r) => r.status(),
            Nfs3Res::Commit(r) => r.status(),
        }
    }
}
