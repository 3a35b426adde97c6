//! `fattr4`: attribute masks and values (RFC 8881 section 5, RFC 7530 section 5;
//! `xattr_support`, RFC 8276).
//!
//! Each minor version reports its own attributes: 4.0 ends at `mounted_on_fileid` (55),
//! 4.1 adds `suppattr_exclcreat` (75), 4.2 `xattr_support` (82: true on a share's
//! objects, false in the pseudo file system, which has no extended attributes).
//!
//! Encoding ([`encode_attrs`]) writes the values of the requested attributes this server
//! supports ([`supported`]) in attribute-number order, and returns the mask of what it
//! wrote; attributes not supported are left out, as the RFC requires for GETATTR.
//! Decoding ([`SetAttrs4::from_fattr`]) accepts exactly the settable attributes (size,
//! mode, owner, owner_group, time_access_set, time_modify_set): an unsupported one is
//! NFS4ERR_ATTRNOTSUPP, a read-only one NFS4ERR_INVAL, values that do not decode or leave
//! bytes over NFS4ERR_BADXDR. Owners (`owner`, `owner_group`) are carried as the bytes
//! of their strings both ways; what a string means (`"1000"`, `"alice@example.com"`) is
//! the adapter's business (`proc4::idmap`, RFC 7530 section 5.9), not the codec's.

use super::Nfs4Status;
use super::types::{Bitmap4, Fh4, NfsTime4, OPAQUE_LIMIT};
use crate::xdr::{Decoder, XdrDecode, XdrEncode, XdrWrite, xdr_struct};
use bytes::BufMut;

xdr_struct! {
    /// `fattr4`: a mask and the values of the attributes it names, in bit order.
    pub struct Fattr4 {
        pub attrmask: Bitmap4,
        pub attr_vals: Opaque4Vals,
    }
}

/// `attrlist4`: the encoded values (bounded to 64 KiB).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opaque4Vals(pub Vec<u8>);

impl XdrEncode for Opaque4Vals {
    fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_xdr_opaque(&self.0);
    }
}

impl XdrDecode for Opaque4Vals {
    fn decode(dec: &mut Decoder<'_>) -> crate::xdr::XdrResult<Self> {
        dec.opaque_vec(64 * 1024).map(Opaque4Vals)
    }
}

/// Attribute numbers (RFC 8881 section 5.6-5.8).
pub mod a {
    pub const SUPPORTED_ATTRS: u32 = 0;
    pub const TYPE: u32 = 1;
    pub const FH_EXPIRE_TYPE: u32 = 2;
    pub const CHANGE: u32 = 3;
    pub const SIZE: u32 = 4;
    pub const LINK_SUPPORT: u32 = 5;
    pub const SYMLINK_SUPPORT: u32 = 6;
    pub const NAMED_ATTR: u32 = 7;
    pub const FSID: u32 = 8;
    pub const UNIQUE_HANDLES: u32 = 9;
    pub const LEASE_TIME: u32 = 10;
    pub const RDATTR_ERROR: u32 = 11;
    pub const ACLSUPPORT: u32 = 13;
    pub const CANSETTIME: u32 = 15;
    pub const CASE_INSENSITIVE: u32 = 16;
    pub const CASE_PRESERVING: u32 = 17;
    pub const CHOWN_RESTRICTED: u32 = 18;
    pub const FILEHANDLE: u32 = 19;
    pub const FILEID: u32 = 20;
    pub const FILES_AVAIL: u32 = 21;
    pub const FILES_FREE: u32 = 22;
    pub const FILES_TOTAL: u32 = 23;
    pub const HOMOGENEOUS: u32 = 26;
    pub const MAXFILESIZE: u32 = 27;
    pub const MAXLINK: u32 = 28;
    pub const MAXNAME: u32 = 29;
    pub const MAXREAD: u32 = 30;
    pub const MAXWRITE: u32 = 31;
    pub const MODE: u32 = 33;
    pub const NO_TRUNC: u32 = 34;
    pub const NUMLINKS: u32 = 35;
    pub const OWNER: u32 = 36;
    pub const OWNER_GROUP: u32 = 37;
    pub const RAWDEV: u32 = 41;
    pub const SPACE_AVAIL: u32 = 42;
    pub const SPACE_FREE: u32 = 43;
    pub const SPACE_TOTAL: u32 = 44;
    pub const SPACE_USED: u32 = 45;
    pub const TIME_ACCESS: u32 = 47;
    pub const TIME_ACCESS_SET: u32 = 48;
    pub const TIME_CREATE: u32 = 50;
    pub const TIME_DELTA: u32 = 51;
    pub const TIME_METADATA: u32 = 52;
    pub const TIME_MODIFY: u32 = 53;
    pub const TIME_MODIFY_SET: u32 = 54;
    pub const MOUNTED_ON_FILEID: u32 = 55;
    pub const SUPPATTR_EXCLCREAT: u32 = 75;
    pub const XATTR_SUPPORT: u32 = 82;
}

/// Every attribute this server supports (the `supported_attrs` value).
const SUPPORTED: &[u32] = &[
    a::SUPPORTED_ATTRS,
    a::TYPE,
    a::FH_EXPIRE_TYPE,
    a::CHANGE,
    a::SIZE,
    a::LINK_SUPPORT,
    a::SYMLINK_SUPPORT,
    a::NAMED_ATTR,
    a::FSID,
    a::UNIQUE_HANDLES,
    a::LEASE_TIME,
    a::RDATTR_ERROR,
    a::ACLSUPPORT,
    a::CANSETTIME,
    a::CASE_INSENSITIVE,
    a::CASE_PRESERVING,
    a::CHOWN_RESTRICTED,
    a::FILEHANDLE,
    a::FILEID,
    a::FILES_AVAIL,
    a::FILES_FREE,
    a::FILES_TOTAL,
    a::HOMOGENEOUS,
    a::MAXFILESIZE,
    a::MAXLINK,
    a::MAXNAME,
    a::MAXREAD,
    a::MAXWRITE,
    a::MODE,
    a::NO_TRUNC,
    a::NUMLINKS,
    a::OWNER,
    a::OWNER_GROUP,
    a::RAWDEV,
    a::SPACE_AVAIL,
    a::SPACE_FREE,
    a::SPACE_TOTAL,
    a::SPACE_USED,
    a::TIME_ACCESS,
    a::TIME_ACCESS_SET,
    a::TIME_CREATE,
    a::TIME_DELTA,
    a::TIME_METADATA,
    a::TIME_MODIFY,
    a::TIME_MODIFY_SET,
    a::MOUNTED_ON_FILEID,
    a::SUPPATTR_EXCLCREAT,
    a::XATTR_SUPPORT,
];

/// Attributes a client may set (SETATTR, CREATE, OPEN).
const SETTABLE: &[u32] = &[
    a::SIZE,
    a::MODE,
    a::OWNER,
    a::OWNER_GROUP,
    a::TIME_ACCESS_SET,
    a::TIME_MODIFY_SET,
];

/// Attributes an EXCLUSIVE4_1 create may set along with its verifier.
const EXCLCREAT: &[u32] = &[a::MODE, a::OWNER, a::OWNER_GROUP];

/// Attributes that need file system statistics (`statfs`).
const FS_STATS: &[u32] = &[
    a::FILES_AVAIL,
    a::FILES_FREE,
    a::FILES_TOTAL,
    a::SPACE_AVAIL,
    a::SPACE_FREE,
    a::SPACE_TOTAL,
];

/// The `supported_attrs` bitmap.
pub fn supported() -> Bitmap4 {
    Bitmap4::from_bits(SUPPORTED)
}

/// The `supported_attrs` bitmap of minor version `minor` (NFSv4.0 ends at
/// `mounted_on_fileid`, attribute 55; `xattr_support` is NFSv4.2's).
pub fn supported_for(minor: u32) -> Bitmap4 {
    let bits: Vec<u32> = SUPPORTED
        .iter()
        .copied()
        .filter(|&b| in_minor(b, minor))
        .collect();
    Bitmap4::from_bits(&bits)
}

/// Whether attribute `bit` belongs to minor version `minor`.
fn in_minor(bit: u32, minor: u32) -> bool {
    match bit {
        a::XATTR_SUPPORT => minor >= 2,
        b => minor > 0 || b <= a::MOUNTED_ON_FILEID,
    }
}

/// Whether encoding `mask` needs file system statistics.
pub fn needs_fs_stats(mask: &Bitmap4) -> bool {
    FS_STATS.iter().any(|&b| mask.has(b))
}

/// `nfs_ftype4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Ftype4 {
    Reg = 1,
    Dir = 2,
    Blk = 3,
    Chr = 4,
    Lnk = 5,
    Sock = 6,
    Fifo = 7,
}

/// File system statistics for the `files_*` and `space_*` attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStats4 {
    pub files_avail: u64,
    pub files_free: u64,
    pub files_total: u64,
    pub space_avail: u64,
    pub space_free: u64,
    pub space_total: u64,
}

/// Everything GETATTR/READDIR can report about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrSource {
    pub kind: Ftype4,
    pub change: u64,
    pub size: u64,
    pub fsid: (u64, u64),
    pub fileid: u64,
    pub mounted_on_fileid: u64,
    pub mode: u32,
    pub nlink: u32,
    /// The `owner` string (`proc4::idmap` makes it from the uid).
    pub owner: Vec<u8>,
    /// The `owner_group` string (from the gid).
    pub owner_group: Vec<u8>,
    pub rdev: (u32, u32),
    pub space_used: u64,
    pub atime: NfsTime4,
    pub mtime: NfsTime4,
    pub ctime: NfsTime4,
    pub btime: NfsTime4,
    pub fh: Fh4,
    pub lease_time: u32,
    pub max_io: u64,
    pub max_file_size: u64,
    pub stats: FsStats4,
    /// The minor version asking (4.0 has no attribute past `mounted_on_fileid`).
    pub minor: u32,
    /// Whether the object's file system has extended attributes (`xattr_support`).
    pub xattr_support: bool,
}

/// Encodes the attributes of `src` that `mask` asks for and this server supports, in
/// bit order. Returns the mask of what was written and the values.
pub fn encode_attrs(mask: &Bitmap4, src: &AttrSource) -> Fattr4 {
    let mut out = Vec::with_capacity(256);
    let mut done = Bitmap4::default();
    for bit in mask.bits() {
        if encode_one(bit, src, &mut out) {
            done.set(bit);
        }
    }
    Fattr4 {
        attrmask: done,
        attr_vals: Opaque4Vals(out),
    }
}

/// The `fattr4` of a READDIR entry whose attributes could not be read: only
/// `rdattr_error` (when asked for).
pub fn rdattr_error_only(mask: &Bitmap4, st: Nfs4Status) -> Fattr4 {
    let mut out = Vec::new();
    let mut done = Bitmap4::default();
    if mask.has(a::RDATTR_ERROR) {
        st.encode(&mut out);
        done.set(a::RDATTR_ERROR);
    }
    Fattr4 {
        attrmask: done,
        attr_vals: Opaque4Vals(out),
    }
}

/// Writes attribute `bit` of `src`; false when it is not one this server returns.
fn encode_one(bit: u32, src: &AttrSource, o: &mut Vec<u8>) -> bool {
    if !in_minor(bit, src.minor) {
        return false;
    }
    if encode_fixed(bit, src, o) {
        return true;
    }
    match bit {
        a::TYPE => o.put_xdr_u32(src.kind as u32),
        a::CHANGE => o.put_xdr_u64(src.change),
        a::SIZE => o.put_xdr_u64(src.size),
        a::FSID => {
            o.put_xdr_u64(src.fsid.0);
            o.put_xdr_u64(src.fsid.1);
        }
        a::LEASE_TIME => o.put_xdr_u32(src.lease_time),
        a::RDATTR_ERROR => Nfs4Status::Ok.encode(o),
        a::FILEHANDLE => src.fh.encode(o),
        a::FILEID => o.put_xdr_u64(src.fileid),
        a::FILES_AVAIL => o.put_xdr_u64(src.stats.files_avail),
        a::FILES_FREE => o.put_xdr_u64(src.stats.files_free),
        a::FILES_TOTAL => o.put_xdr_u64(src.stats.files_total),
        a::MAXFILESIZE => o.put_xdr_u64(src.max_file_size),
        a::MAXREAD | a::MAXWRITE => o.put_xdr_u64(src.max_io),
        a::MODE => o.put_xdr_u32(src.mode & 0o7777),
        a::NUMLINKS => o.put_xdr_u32(src.nlink),
        a::OWNER => o.put_xdr_opaque(&src.owner),
        a::OWNER_GROUP => o.put_xdr_opaque(&src.owner_group),
        a::RAWDEV => {
            o.put_xdr_u32(src.rdev.0);
            o.put_xdr_u32(src.rdev.1);
        }
        a::SPACE_AVAIL => o.put_xdr_u64(src.stats.space_avail),
        a::SPACE_FREE => o.put_xdr_u64(src.stats.space_free),
        a::SPACE_TOTAL => o.put_xdr_u64(src.stats.space_total),
        a::SPACE_USED => o.put_xdr_u64(src.space_used),
        a::TIME_ACCESS => src.atime.encode(o),
        a::TIME_CREATE => src.btime.encode(o),
        a::TIME_METADATA => src.ctime.encode(o),
        a::TIME_MODIFY => src.mtime.encode(o),
        a::MOUNTED_ON_FILEID => o.put_xdr_u64(src.mounted_on_fileid),
        a::XATTR_SUPPORT => o.put_xdr_bool(src.xattr_support),
        _ => return false,
    }
    true
}

/// The attributes whose value is the same for every object of this server.
fn encode_fixed(bit: u32, src: &AttrSource, o: &mut Vec<u8>) -> bool {
    match bit {
        a::SUPPORTED_ATTRS => supported_for(src.minor).encode(o),
        // FH4_PERSISTENT: handles survive restarts.
        a::FH_EXPIRE_TYPE => o.put_xdr_u32(0),
        a::LINK_SUPPORT | a::SYMLINK_SUPPORT | a::UNIQUE_HANDLES | a::CANSETTIME => {
            o.put_xdr_bool(true)
        }
        a::CASE_PRESERVING | a::CHOWN_RESTRICTED | a::HOMOGENEOUS | a::NO_TRUNC => {
            o.put_xdr_bool(true)
        }
        a::NAMED_ATTR | a::CASE_INSENSITIVE => o.put_xdr_bool(false),
        // No ACL types supported.
        a::ACLSUPPORT => o.put_xdr_u32(0),
        a::MAXLINK => o.put_xdr_u32(u32::MAX),
        a::MAXNAME => o.put_xdr_u32(255),
        a::TIME_DELTA => NfsTime4 {
            seconds: 0,
            nseconds: 1,
        }
        .encode(o),
        a::SUPPATTR_EXCLCREAT => Bitmap4::from_bits(EXCLCREAT).encode(o),
        _ => return false,
    }
    true
}

/// `settime4`: how SETATTR changes a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SetTime4 {
    #[default]
    DontChange,
    ServerTime,
    Client(NfsTime4),
}

impl XdrEncode for SetTime4 {
    fn encode<B: BufMut>(&self, out: &mut B) {
        match self {
            SetTime4::DontChange | SetTime4::ServerTime => out.put_xdr_u32(0),
            SetTime4::Client(t) => {
                out.put_xdr_u32(1);
                t.encode(out);
            }
        }
    }
}

/// The settable attributes of a SETATTR/CREATE/OPEN request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttrs4 {
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub owner: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
    pub atime: SetTime4,
    pub mtime: SetTime4,
}

impl SetAttrs4 {
    /// Decodes the settable attributes of `f` (see the module documentation); the mask
    /// of what was given is `f.attrmask`.
    pub fn from_fattr(f: &Fattr4) -> Result<SetAttrs4, Nfs4Status> {
        let sup = supported();
        for bit in f.attrmask.bits() {
            if !sup.has(bit) {
                return Err(Nfs4Status::AttrNotSupp);
            }
            if !SETTABLE.contains(&bit) {
                return Err(Nfs4Status::Inval);
            }
        }
        let mut d = Decoder::new(&f.attr_vals.0);
        let s = decode_settable(&f.attrmask, &mut d).map_err(|_| Nfs4Status::BadXdr)?;
        if !d.is_empty() {
            return Err(Nfs4Status::BadXdr);
        }
        Ok(s)
    }

    /// The `fattr4` of these attributes (client side).
    pub fn to_fattr(&self) -> Fattr4 {
        let mut m = Bitmap4::default();
        let mut o = Vec::new();
        if let Some(v) = self.size {
            m.set(a::SIZE);
            o.put_xdr_u64(v);
        }
        if let Some(v) = self.mode {
            m.set(a::MODE);
            o.put_xdr_u32(v);
        }
        for (bit, v) in [(a::OWNER, &self.owner), (a::OWNER_GROUP, &self.group)] {
            if let Some(v) = v {
                m.set(bit);
                o.put_xdr_opaque(v);
            }
        }
        for (bit, t) in [
            (a::TIME_ACCESS_SET, &self.atime),
            (a::TIME_MODIFY_SET, &self.mtime),
        ] {
            if *t != SetTime4::DontChange {
                m.set(bit);
                t.encode(&mut o);
            }
        }
        Fattr4 {
            attrmask: m,
            attr_vals: Opaque4Vals(o),
        }
    }
}

fn decode_settime(d: &mut Decoder<'_>) -> crate::xdr::XdrResult<SetTime4> {
    match d.u32()? {
        0 => Ok(SetTime4::ServerTime),
        1 => Ok(SetTime4::Client(NfsTime4::decode(d)?)),
        v => Err(crate::xdr::XdrError::BadDiscriminant {
            what: "time_how4",
            value: v,
        }),
    }
}

fn decode_settable(m: &Bitmap4, d: &mut Decoder<'_>) -> crate::xdr::XdrResult<SetAttrs4> {
    let mut s = SetAttrs4::default();
    if m.has(a::SIZE) {
        s.size = Some(d.u64()?);
    }
    if m.has(a::MODE) {
        s.mode = Some(d.u32()?);
    }
    if m.has(a::OWNER) {
        s.owner = Some(d.opaque_vec(OPAQUE_LIMIT)?);
    }
    if m.has(a::OWNER_GROUP) {
        s.group = Some(d.opaque_vec(OPAQUE_LIMIT)?);
    }
    if m.has(a::TIME_ACCESS_SET) {
        s.atime = decode_settime(d)?;
    }
    if m.has(a::TIME_MODIFY_SET) {
        s.mtime = decode_settime(d)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> AttrSource {
        AttrSource {
            kind: Ftype4::Reg,
            change: 9,
            size: 100,
            fsid: (1, 2),
            fileid: 42,
            mounted_on_fileid: 42,
            mode: 0o644,
            nlink: 1,
            owner: b"1000".to_vec(),
            owner_group: b"staff@example.com".to_vec(),
            rdev: (0, 0),
            space_used: 4096,
            atime: NfsTime4 {
                seconds: 1,
                nseconds: 2,
            },
            mtime: NfsTime4 {
                seconds: 3,
                nseconds: 4,
            },
            ctime: NfsTime4 {
                seconds: 5,
                nseconds: 6,
            },
            btime: NfsTime4 {
                seconds: 7,
                nseconds: 8,
            },
            fh: Fh4(vec![1, 2, 3]),
            lease_time: 90,
            max_io: 1 << 20,
            max_file_size: 1 << 40,
            stats: FsStats4::default(),
            minor: 1,
            xattr_support: true,
        }
    }

    /// Attribute numbers are the RFCs' (RFC 8881 section 5 and its XDR; 82: RFC 8276),
    /// and reach the wire as those bits: `supported_attrs` of 4.2 is exactly the words
    /// of these numbers, so a renumbered constant fails here even though our encoder
    /// and decoder would agree.
    #[test]
    fn attribute_numbers_are_the_rfcs() {
        macro_rules! rfc {
            ($($name:ident = $n:literal)*) => { [$((a::$name, $n, stringify!($name))),*] };
        }
        let table = rfc!(
            SUPPORTED_ATTRS = 0 TYPE = 1 FH_EXPIRE_TYPE = 2 CHANGE = 3 SIZE = 4
            LINK_SUPPORT = 5 SYMLINK_SUPPORT = 6 NAMED_ATTR = 7 FSID = 8 UNIQUE_HANDLES = 9
            LEASE_TIME = 10 RDATTR_ERROR = 11 ACLSUPPORT = 13 CANSETTIME = 15
            CASE_INSENSITIVE = 16 CASE_PRESERVING = 17 CHOWN_RESTRICTED = 18 FILEHANDLE = 19
            FILEID = 20 FILES_AVAIL = 21 FILES_FREE = 22 FILES_TOTAL = 23 HOMOGENEOUS = 26
            MAXFILESIZE = 27 MAXLINK = 28 MAXNAME = 29 MAXREAD = 30 MAXWRITE = 31 MODE = 33
            NO_TRUNC = 34 NUMLINKS = 35 OWNER = 36 OWNER_GROUP = 37 RAWDEV = 41
            SPACE_AVAIL = 42 SPACE_FREE = 43 SPACE_TOTAL = 44 SPACE_USED = 45 TIME_ACCESS = 47
            TIME_ACCESS_SET = 48 TIME_CREATE = 50 TIME_DELTA = 51 TIME_METADATA = 52
            TIME_MODIFY = 53 TIME_MODIFY_SET = 54 MOUNTED_ON_FILEID = 55
            SUPPATTR_EXCLCREAT = 75 XATTR_SUPPORT = 82
        );
        let mut words = [0u32; 3];
        for (ours, n, name) in table {
            assert_eq!(ours, n, "FATTR4_{name}");
            words[n as usize / 32] |= 1 << (n % 32);
        }
        let mut want = 3u32.to_be_bytes().to_vec();
        for w in words {
            want.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(supported_for(2).to_xdr(), want);
    }

    /// `nfs_ftype4` in the `type` attribute, and `time_how4` in `settime4`.
    #[test]
    fn attribute_value_enums_are_the_rfcs() {
        use Ftype4::*;
        let mask = Bitmap4::from_bits(&[a::TYPE]);
        for (kind, n) in [
            (Reg, 1u32),
            (Dir, 2),
            (Blk, 3),
            (Chr, 4),
            (Lnk, 5),
            (Sock, 6),
            (Fifo, 7),
        ] {
            let f = encode_attrs(&mask, &AttrSource { kind, ..src() });
            assert_eq!(f.attr_vals.0, n.to_be_bytes(), "{kind:?}");
        }
        // SET_TO_SERVER_TIME4 0, SET_TO_CLIENT_TIME4 1 (then the nfstime4)
        assert_eq!(SetTime4::ServerTime.to_xdr(), 0u32.to_be_bytes());
        let t = NfsTime4 {
            seconds: 2,
            nseconds: 3,
        };
        assert_eq!(
            SetTime4::Client(t.clone()).to_xdr()[..4],
            1u32.to_be_bytes()
        );
        let mut raw = 1u32.to_be_bytes().to_vec();
        raw.extend_from_slice(&t.to_xdr());
        let back = decode_settime(&mut Decoder::new(&raw)).unwrap();
        assert_eq!(back, SetTime4::Client(t));
        let server = decode_settime(&mut Decoder::new(&0u32.to_be_bytes())).unwrap();
        assert_eq!(server, SetTime4::ServerTime);
    }

    #[test]
    fn xattr_support_is_minor_version_two_only() {
        let mask = Bitmap4::from_bits(&[a::SUPPORTED_ATTRS, a::XATTR_SUPPORT]);
        for minor in [0, 1] {
            let f = encode_attrs(&mask, &AttrSource { minor, ..src() });
            assert_eq!(f.attrmask, Bitmap4::from_bits(&[a::SUPPORTED_ATTRS]));
            let sup = Bitmap4::from_xdr(&f.attr_vals.0).unwrap();
            assert!(!sup.has(a::XATTR_SUPPORT), "{minor}");
        }
        for (on, word) in [(true, 1), (false, 0)] {
            let v42 = AttrSource {
                minor: 2,
                xattr_support: on,
                ..src()
            };
            let f = encode_attrs(&mask, &v42);
            assert_eq!(f.attrmask, mask);
            let mut d = Decoder::new(&f.attr_vals.0);
            assert!(Bitmap4::decode(&mut d).unwrap().has(a::XATTR_SUPPORT));
            assert_eq!(d.u32().unwrap(), word);
            assert!(d.is_empty());
        }
        let set = Fattr4 {
            attrmask: Bitmap4::from_bits(&[a::XATTR_SUPPORT]),
            attr_vals: Opaque4Vals(vec![0, 0, 0, 1]),
        };
        assert_eq!(SetAttrs4::from_fattr(&set), Err(Nfs4Status::Inval));
    }

    #[test]
    fn minor_version_zero_has_no_attributes_past_55() {
        let mask = Bitmap4::from_bits(&[a::SUPPORTED_ATTRS, a::SUPPATTR_EXCLCREAT]);
        let v40 = AttrSource { minor: 0, ..src() };
        let f = encode_attrs(&mask, &v40);
        assert_eq!(f.attrmask, Bitmap4::from_bits(&[a::SUPPORTED_ATTRS]));
        let sup = Bitmap4::from_xdr(&f.attr_vals.0).unwrap();
        assert!(sup.has(a::MOUNTED_ON_FILEID) && !sup.has(a::SUPPATTR_EXCLCREAT));
        let f = encode_attrs(&mask, &src());
        assert_eq!(f.attrmask, mask);
    }

    #[test]
    fn values_follow_bit_order_and_unsupported_bits_are_dropped() {
        let mask = Bitmap4::from_bits(&[a::TYPE, a::SIZE, 12, a::OWNER, a::TIME_ACCESS_SET]);
        let f = encode_attrs(&mask, &src());
        assert_eq!(
            f.attrmask,
            Bitmap4::from_bits(&[a::TYPE, a::SIZE, a::OWNER])
        );
        let mut d = Decoder::new(&f.attr_vals.0);
        assert_eq!(d.u32().unwrap(), 1);
        assert_eq!(d.u64().unwrap(), 100);
        assert_eq!(d.opaque(16).unwrap(), b"1000");
        assert!(d.is_empty());
    }

    #[test]
    fn owner_strings_are_carried_as_given() {
        let mask = Bitmap4::from_bits(&[a::OWNER, a::OWNER_GROUP]);
        let f = encode_attrs(&mask, &src());
        assert_eq!(f.attrmask, mask);
        let mut d = Decoder::new(&f.attr_vals.0);
        assert_eq!(d.opaque(64).unwrap(), b"1000");
        assert_eq!(d.opaque(64).unwrap(), b"staff@example.com");
        assert!(d.is_empty());
        let set = SetAttrs4 {
            owner: Some(b"alice@example.com".to_vec()),
            group: Some(b"not checked here".to_vec()),
            ..Default::default()
        };
        let back = SetAttrs4::from_fattr(&set.to_fattr()).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn settable_round_trip() {
        let s = SetAttrs4 {
            size: Some(5),
            mode: Some(0o600),
            owner: Some(b"7".to_vec()),
            group: None,
            atime: SetTime4::ServerTime,
            mtime: SetTime4::Client(NfsTime4 {
                seconds: 10,
                nseconds: 0,
            }),
        };
        let f = s.to_fattr();
        let back = Fattr4::from_xdr(&f.to_xdr()).unwrap();
        assert_eq!(SetAttrs4::from_fattr(&back).unwrap(), s);
    }

    #[test]
    fn bad_settable_attributes_are_refused() {
        let ro = Fattr4 {
            attrmask: Bitmap4::from_bits(&[a::FILEID]),
            attr_vals: Opaque4Vals(vec![0; 8]),
        };
        assert_eq!(SetAttrs4::from_fattr(&ro), Err(Nfs4Status::Inval));
        let acl = Fattr4 {
            attrmask: Bitmap4::from_bits(&[12]),
            attr_vals: Opaque4Vals(vec![]),
        };
        assert_eq!(SetAttrs4::from_fattr(&acl), Err(Nfs4Status::AttrNotSupp));
        let short = Fattr4 {
            attrmask: Bitmap4::from_bits(&[a::SIZE]),
            attr_vals: Opaque4Vals(vec![0; 4]),
        };
        assert_eq!(SetAttrs4::from_fattr(&short), Err(Nfs4Status::BadXdr));
        let extra = Fattr4 {
            attrmask: Bitmap4::from_bits(&[a::MODE]),
            attr_vals: Opaque4Vals(vec![0; 8]),
        };
        assert_eq!(SetAttrs4::from_fattr(&extra), Err(Nfs4Status::BadXdr));
    }
}
