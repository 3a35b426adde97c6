//! NFSv4.0/4.1/4.2 COMPOUND over the filesystem core (RFC 8881 sections 2.10, 15.2,
//! 16, 18; RFC 7530 for 4.0; RFC 7862 for 4.2, whose data operations ALLOCATE,
//! DEALLOCATE, COPY, CLONE, SEEK and READ_PLUS are served (`space`) and the rest
//! (COPY_NOTIFY, OFFLOAD_*, IO_ADVISE, WRITE_SAME, LAYOUTERROR/LAYOUTSTATS) answered
//! NOTSUPP; RFC 8276's extended attribute operations GETXATTR, SETXATTR, LISTXATTRS,
//! REMOVEXATTR (`xattr`)).
//!
//! A COMPOUND runs its operations in order against a current and a saved file handle
//! ([`Cur`]: a pseudo directory or an object of a share with the caller's credentials,
//! see `pseudo`) and stops at the first failure; its status is the last operation's.
//! Rules enforced here (RFC 8881 section 2.10.6, 15.1):
//! - minor versions 0, 1 and 2 (else NFS4ERR_MINOR_VERS_MISMATCH, no results); more
//!   than [`MAX_OPS`] operations is, before anything runs, NFS4ERR_RESOURCE in 4.0 and
//!   NFS4ERR_TOO_MANY_OPS in 4.1/4.2 (RESOURCE is no 4.1 error, RFC 8881 15.1); an
//!   operation its minor version does not have is OP_ILLEGAL in 4.0 (4.1's and 4.2's
//!   operations) and NFS4ERR_NOTSUPP in 4.1/4.2 (the five 4.0-only ones; 4.2's in 4.1);
//! - minor version 0 has no sessions: its COMPOUNDs run without SEQUENCE, client IDs
//!   come from SETCLIENTID and travel in the arguments (OPEN, LOCK), leases are renewed
//!   by RENEW and by every use of a stateid; OPEN, OPEN_CONFIRM, OPEN_DOWNGRADE, CLOSE,
//!   LOCK and LOCKU are sequenced per open-/lock-owner and replayed from the owner's
//!   last reply (`seqid`, RFC 7530 section 9.1.7; 4.1/4.2 ignore these seqids); a
//!   retransmitted COMPOUND (same xid) that changes state is also answered from the
//!   duplicate request cache, as NFSv3's non-idempotent calls are
//!   (`nfs4::v40_wants_replay_cache`, `dispatch`);
//! - SEQUENCE first, or one of the operations allowed without a session alone in the
//!   COMPOUND (EXCHANGE_ID, CREATE_SESSION, DESTROY_SESSION, DESTROY_CLIENTID,
//!   BIND_CONN_TO_SESSION: else NFS4ERR_NOT_ONLY_OP); any other first operation is
//!   NFS4ERR_OP_NOT_IN_SESSION, a later SEQUENCE NFS4ERR_SEQUENCE_POS;
//! - in a session: more operations than negotiated is NFS4ERR_TOO_MANY_OPS, a reply
//!   past the negotiated size NFS4ERR_REP_TOO_BIG (the operation that overflowed gets
//!   the status instead of its result), a request past the negotiated size
//!   NFS4ERR_REQ_TOO_BIG, a `cachethis` reply past the cache bound
//!   NFS4ERR_REP_TOO_BIG_TO_CACHE; the whole reply is kept in the slot for replay.
//!
//! Handlers by family, one file per codec file of [`crate::nfs4`]: `session`, `fh`
//! (incl. SECINFO), `attr`, `io` (incl. OPEN/CLOSE/locks), `ns`, `dir`, `space` (the
//! 4.2 data operations, codec `v42`), `xattr` (RFC 8276); the state (clients, sessions, stateids, leases)
//! is `state`; read delegations, their recall and the sessions' back channels are
//! `deleg` (on `crate::backchannel`), NFSv4.0's callback paths (SETCLIENTID's address,
//! dialled by `crate::cblink`) and the client a 4.0 operation acts for `cb40`;
//! NFSv4.0's owner sequence IDs are `seqid`; client records across restarts, the grace
//! period and reclaims are `grace`; lease expiry, courtesy clients (expired, state kept
//! until someone conflicts) and the release of departed clients' state are `courtesy`
//! (swept before every COMPOUND); lock-owners waiting for a blocked lock are
//! `lockwait`, their CB_NOTIFY_LOCK `notify`; owner strings (numeric, or
//! `name@domain`) to and from uids/gids are `idmap`.

mod attr;
pub(crate) mod cb40;
pub(crate) mod courtesy;
pub(crate) mod deleg;
mod dir;
mod fh;
pub(crate) mod grace;
pub(crate) mod idmap;
mod io;
mod lm;
mod lock;
pub(crate) mod lockwait;
pub(crate) mod notify;
mod ns;
mod owners;
mod pseudo;
pub(crate) mod recall;
mod seqid;
mod session;
mod space;
pub(crate) mod state;
mod xattr;

use crate::call::{CallCtx, Outcome, garbage_args};
use crate::metrics::{ErrorLabels, ProcLabels};
use crate::nfs4::types::Stateid4;
use crate::nfs4::{
    CompoundHeader, Nfs4Status, OP_ILLEGAL, Op4, OpDecodeError, PROC_COMPOUND, encode_compound_res,
};
use crate::shared::Shared;
use crate::xdr::{Decoder, XdrEncode, XdrWrite};
use bytes::{Bytes, BytesMut};
use dittofs_types::Ino;
use dittofs_vfs::{Credentials, Fs, FsError};
use state::{Session, SlotCheck};
use std::sync::Arc;

/// The most operations a COMPOUND may hold.
pub(crate) const MAX_OPS: u32 = 128;
/// Largest READ/WRITE (as for NFSv3).
pub(crate) const MAX_IO: u32 = crate::proc3::MAX_IO;
/// Largest request and reply a session allows: the largest I/O plus room for the rest.
pub(crate) const MAX_MSG: u32 = MAX_IO + 64 * 1024;
/// Largest reply kept for replay in a slot when the client asked for it (`cachethis`).
pub(crate) const MAX_CACHED: u32 = 64 * 1024;

/// The current (or saved) file handle of a COMPOUND.
#[derive(Clone)]
pub(crate) enum Cur {
    /// A pseudo directory (its path).
    Pseudo(Vec<u8>),
    /// An object of a share, with the caller's credentials there.
    File(FileRef),
}

/// An object of a share and who is asking.
#[derive(Clone)]
pub(crate) struct FileRef {
    pub(crate) fs: Arc<Fs>,
    pub(crate) ino: Ino,
    pub(crate) cred: Credentials,
}

/// A failed operation: its status and, for the few operations that have one, the
/// body of the failure (SETATTR's `attrsset`, LOCK's `LOCK4denied`).
#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) status: Nfs4Status,
    pub(crate) body: Vec<u8>,
}

impl From<Nfs4Status> for Fail {
    fn from(status: Nfs4Status) -> Fail {
        Fail {
            status,
            body: Vec::new(),
        }
    }
}

impl From<FsError> for Fail {
    fn from(e: FsError) -> Fail {
        Fail::from(Nfs4Status::from(&e))
    }
}

/// What an operation returns: its encoded result body, or its failure.
pub(crate) type OpResult = Result<Vec<u8>, Fail>;

/// An operation's successful result.
pub(crate) fn ok(v: &impl XdrEncode) -> OpResult {
    Ok(v.to_xdr())
}

/// The state of one COMPOUND as its operations run.
pub(crate) struct Compound<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) ctx: &'a CallCtx,
    pub(crate) minor: u32,
    pub(crate) cur: Option<Cur>,
    pub(crate) saved: Option<Cur>,
    /// The stateid the last OPEN/LOCK/... returned (the "current stateid").
    pub(crate) cur_stateid: Option<Stateid4>,
    pub(crate) session: Option<Arc<Session>>,
    /// NFSv4.0: the client the COMPOUND's operations named last (`cb40::note_client`).
    pub(crate) client40: Option<u64>,
}

impl Compound<'_> {
    /// The current file handle, or NFS4ERR_NOFILEHANDLE.
    pub(crate) fn cur(&self) -> Result<&Cur, Nfs4Status> {
        self.cur.as_ref().ok_or(Nfs4Status::NoFileHandle)
    }

    /// The current file handle as an object of a share (a pseudo directory is
    /// `pseudo_status`: what the operation answers for one).
    pub(crate) fn file(&self, pseudo_status: Nfs4Status) -> Result<FileRef, Nfs4Status> {
        match self.cur()? {
            Cur::File(f) => Ok(f.clone()),
            Cur::Pseudo(_) => Err(pseudo_status),
        }
    }

    /// The client ID of the session (operations needing one run only in a session).
    pub(crate) fn clientid(&self) -> Result<u64, Nfs4Status> {
        self.session
            .as_ref()
            .map(|s| s.client)
            .ok_or(Nfs4Status::OpNotInSession)
    }

    /// The client an operation acts for: the session's, or in NFSv4.0 the client ID
    /// its arguments name (which must be known; its lease is renewed).
    pub(crate) fn client_of(&self, named: u64) -> Result<u64, Nfs4Status> {
        if self.minor == 0 {
            self.shared.nfs4.renew(named)?;
            return Ok(named);
        }
        self.clientid()
    }

    /// Resolves a stateid argument: the current stateid stands for the last one set.
    pub(crate) fn stateid(&self, sid: &Stateid4) -> Result<Stateid4, Nfs4Status> {
        if *sid == Stateid4::CURRENT {
            return self.cur_stateid.clone().ok_or(Nfs4Status::BadStateid);
        }
        Ok(sid.clone())
    }

    /// Whether `sid` is a stateid this server knows: a delegation (a revoked one is
    /// NFS4ERR_DELEG_REVOKED) or an open or lock stateid.
    pub(crate) fn known_stateid(&self, sid: &Stateid4) -> Result<(), Nfs4Status> {
        match self.shared.deleg.lookup(sid) {
            Some(r) => r.map(|_| ()),
            None => self.shared.nfs4.state(sid).map(|_| ()),
        }
    }

    /// Runs one operation and counts it (`nfs4_op` requests and errors by name).
    async fn run(&mut self, op: Op4) -> OpResult {
        let name = op.name();
        if self.minor == 0 {
            cb40::note_client(self, &op);
        }
        let r = self.run_op(op).await;
        let m = &self.shared.metrics;
        let labels = ProcLabels {
            program: "nfs4_op",
            procedure: name,
        };
        m.requests.get_or_create(&labels).inc();
        tracing::trace!(client = %self.ctx.client, minor = self.minor, op = name,
            status = r.as_ref().err().map_or("OK", |f| f.status.name()), "nfs4 op");
        if let Err(f) = &r {
            let labels = ErrorLabels {
                program: "nfs4_op",
                procedure: name,
                status: f.status.name(),
            };
            m.errors.get_or_create(&labels).inc();
        }
        r
    }

    async fn run_op(&mut self, op: Op4) -> OpResult {
        match op {
            Op4::Sequence(_) => Err(Nfs4Status::SequencePos.into()),
            Op4::ExchangeId(a) => session::exchange_id(self, &a).await,
            Op4::CreateSession(a) => session::create_session(self, &a),
            Op4::DestroySession(a) => session::destroy_session(self, &a),
            Op4::DestroyClientid(a) => session::destroy_clientid(self, a).await,
            Op4::ReclaimComplete(a) => session::reclaim_complete(self, a),
            Op4::BindConnToSession(a) => session::bind_conn(self, &a),
            Op4::BackchannelCtl(a) => session::backchannel_ctl(self, &a),
            Op4::Putrootfh | Op4::Putpubfh => fh::putrootfh(self),
            Op4::Putfh(a) => fh::putfh(self, &a).await,
            Op4::Getfh => fh::getfh(self).await,
            Op4::Savefh => fh::savefh(self),
            Op4::Restorefh => fh::restorefh(self),
            Op4::Lookup(a) => fh::lookup(self, &a.0).await,
            Op4::Lookupp => fh::lookupp(self).await,
            Op4::Secinfo(a) => fh::secinfo(self, Some(&a.0)).await,
            Op4::SecinfoNoName(_) => fh::secinfo(self, None).await,
            Op4::Getattr(a) => attr::getattr(self, &a).await,
            Op4::Setattr(a) => attr::setattr(self, &a).await,
            Op4::Access(a) => attr::access(self, a).await,
            Op4::Verify(a) => attr::verify(self, &a, true).await,
            Op4::Nverify(a) => attr::verify(self, &a, false).await,
            Op4::Open(a) => io::open(self, &a).await,
            Op4::Close(a) => io::close(self, &a).await,
            Op4::OpenDowngrade(a) => io::open_downgrade(self, &a),
            Op4::Read(a) => io::read(self, &a).await,
            Op4::Write(a) => io::write(self, a).await,
            Op4::Commit(_) => io::commit(self).await,
            Op4::TestStateid(a) => io::test_stateid(self, &a),
            Op4::FreeStateid(a) => io::free_stateid(self, &a),
            Op4::Delegreturn(a) => io::delegreturn(self, &a),
            Op4::Lock(a) => lock::lock(self, &a).await,
            Op4::Lockt(a) => lock::lockt(self, &a).await,
            Op4::Locku(a) => lock::locku(self, &a),
            Op4::Create(a) => ns::create(self, &a).await,
            Op4::Remove(a) => ns::remove(self, &a.0).await,
            Op4::Rename(a) => ns::rename(self, &a).await,
            Op4::Link(a) => ns::link(self, &a.0).await,
            Op4::Readlink => ns::readlink(self).await,
            Op4::Readdir(a) => dir::readdir(self, &a).await,
            Op4::SetClientId(a) => session::setclientid(self, &a).await,
            Op4::SetClientIdConfirm(a) => session::setclientid_confirm(self, &a),
            Op4::Renew(id) => session::renew(self, id),
            Op4::OpenConfirm(a) => io::open_confirm(self, &a),
            Op4::ReleaseLockowner(a) => lock::release_lockowner(self, &a),
            Op4::Allocate(a) => space::allocate(self, &a).await,
            Op4::Deallocate(a) => space::deallocate(self, &a).await,
            Op4::Copy(a) => space::copy(self, &a).await,
            Op4::Clone(a) => space::clone(self, &a).await,
            Op4::Seek(a) => space::seek(self, &a).await,
            Op4::ReadPlus(a) => space::read_plus(self, &a).await,
            Op4::Getxattr(a) => xattr::getxattr(self, &a.0).await,
            Op4::Setxattr(a) => xattr::setxattr(self, &a).await,
            Op4::Listxattrs(a) => xattr::listxattrs(self, &a).await,
            Op4::Removexattr(a) => xattr::removexattr(self, &a.0).await,
        }
    }
}

/// Bytes the reply of a COMPOUND with arguments `args` can take at most (what its
/// connection reserves of the reply budget before it runs, see `budget`): a few KiB,
/// plus per operation its data (READ's count, READDIR's maxcount, READLINK's path,
/// GETXATTR's largest value, LISTXATTRS's maxcount) or
/// 1 KiB (attributes, handles, stateids), at most the session reply bound. Arguments
/// that do not decode get the small bound (the COMPOUND fails early).
pub(crate) fn reply_bound(args: &Bytes) -> usize {
    const SMALL: usize = 4096;
    let mut d = Decoder::from_bytes(args);
    let Ok(h) = CompoundHeader::decode(&mut d) else {
        return SMALL;
    };
    let mut n = SMALL + h.tag.len();
    for _ in 0..h.nops.min(MAX_OPS) {
        n += match Op4::decode(&mut d) {
            Ok(Op4::Read(a)) => a.count.min(MAX_IO) as usize + 64,
            Ok(Op4::ReadPlus(a)) => a.count.min(MAX_IO) as usize + 64 + space::SEGMENT_BYTES,
            Ok(Op4::Readdir(a)) => a.maxcount.min(MAX_MSG) as usize,
            Ok(Op4::Readlink) => 4096 + 64,
            Ok(Op4::Getxattr(_)) => dittofs_vfs::XATTR_SIZE_MAX + 64,
            Ok(Op4::Listxattrs(a)) => a.maxcount.min(MAX_MSG) as usize,
            Ok(_) => 1024,
            Err(_) => break,
        };
    }
    n.min(MAX_MSG as usize + SMALL)
}

/// The encoded results of a COMPOUND as they accumulate.
struct Results {
    buf: Vec<u8>,
    n: u32,
    last: Nfs4Status,
}

impl Results {
    fn push(&mut self, opnum: u32, r: &OpResult) {
        self.buf.put_xdr_u32(opnum);
        match r {
            Ok(body) => {
                Nfs4Status::Ok.encode(&mut self.buf);
                self.buf.extend_from_slice(body);
                self.last = Nfs4Status::Ok;
            }
            Err(f) => {
                f.status.encode(&mut self.buf);
                self.buf.extend_from_slice(&f.body);
                self.last = f.status;
            }
        }
        self.n += 1;
    }

    fn fail(&mut self, opnum: u32, st: Nfs4Status) {
        self.push(opnum, &Err(st.into()));
    }

    fn encode(&self, tag: &[u8]) -> Bytes {
        let mut b = BytesMut::with_capacity(self.buf.len() + tag.len() + 16);
        encode_compound_res(&mut b, self.last, tag, self.n, &self.buf);
        b.freeze()
    }
}

/// The limits a reply is held to: the session's, or the server's without one.
struct Bounds {
    max_resp: usize,
    cache_limit: Option<usize>,
}

/// Decodes and runs one NFSv4 call (NULL or COMPOUND).
pub(crate) async fn dispatch(
    shared: &Shared,
    ctx: &CallCtx,
    xid: u32,
    proc_num: u32,
    args: Bytes,
) -> Outcome {
    if proc_num != PROC_COMPOUND {
        return Outcome::ok(xid, &());
    }
    let mut dec = Decoder::from_bytes(&args);
    let Ok(hdr) = CompoundHeader::decode(&mut dec) else {
        return garbage_args(xid);
    };
    courtesy::sweep(shared).await;
    let reply = compound(shared, ctx, &hdr, &mut dec).await;
    let status = Nfs4Status::from_u32(u32::from_be_bytes(
        reply
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]),
    ))
    .unwrap_or(Nfs4Status::ServerFault);
    let error = (status != Nfs4Status::Ok).then(|| status.name());
    let mut head = BytesMut::with_capacity(32);
    crate::rpc::encode_success(&mut head, xid);
    Outcome {
        reply: vec![head.freeze(), reply],
        error,
    }
}

/// The COMPOUND4res of a COMPOUND (see the module documentation for the rules).
async fn compound(
    shared: &Shared,
    ctx: &CallCtx,
    hdr: &CompoundHeader,
    dec: &mut Decoder<'_>,
) -> Bytes {
    let mut res = Results {
        buf: Vec::new(),
        n: 0,
        last: Nfs4Status::Ok,
    };
    if hdr.minorversion > 2 {
        res.last = Nfs4Status::MinorVersMismatch;
        return res.encode(&hdr.tag);
    }
    if hdr.nops > MAX_OPS {
        res.last = match hdr.minorversion {
            0 => Nfs4Status::Resource,
            _ => Nfs4Status::TooManyOps,
        };
        return res.encode(&hdr.tag);
    }
    if hdr.nops == 0 {
        return res.encode(&hdr.tag);
    }
    let mut c = Compound {
        shared,
        ctx,
        minor: hdr.minorversion,
        cur: None,
        saved: None,
        cur_stateid: None,
        session: None,
        client40: None,
    };
    if hdr.minorversion == 0 {
        let bounds = Bounds {
            max_resp: MAX_MSG as usize,
            cache_limit: None,
        };
        run_rest(&mut c, &mut res, dec, hdr.nops, &bounds).await;
        return res.encode(&hdr.tag);
    }
    minor1(&mut c, res, hdr, dec).await
}

/// A 4.1/4.2 COMPOUND: SEQUENCE first (its slot's cached reply for a retransmission),
/// else one of the operations allowed without a session.
async fn minor1(
    c: &mut Compound<'_>,
    mut res: Results,
    hdr: &CompoundHeader,
    dec: &mut Decoder<'_>,
) -> Bytes {
    let first = match Op4::decode(dec) {
        Ok(op) => op,
        Err(e) => {
            decode_failure(&mut res, e, hdr.minorversion);
            return res.encode(&hdr.tag);
        }
    };
    let Op4::Sequence(seq) = first else {
        return sessionless(c, &mut res, first, hdr).await;
    };
    let size = dec.position() + dec.remaining();
    let session = match session::sequence(c, &seq, hdr.nops, size) {
        Ok((_, _, SlotCheck::Replay(reply))) => return reply,
        Ok((body, s, SlotCheck::New)) => {
            res.push(53, &Ok(body));
            s
        }
        Err(f) => {
            res.push(53, &Err(f));
            return res.encode(&hdr.tag);
        }
    };
    let mut guard = SlotGuard {
        session: session.clone(),
        slot: seq.slotid,
        reply: None,
    };
    let bounds = Bounds {
        max_resp: session.max_resp as usize,
        cache_limit: seq.cachethis.then(|| cache_limit(&session)),
    };
    c.session = Some(session.clone());
    run_rest(c, &mut res, dec, hdr.nops - 1, &bounds).await;
    let reply = res.encode(&hdr.tag);
    if reply.len() <= cache_limit(&session) {
        guard.reply = Some(reply.clone());
    }
    reply
}

/// Ends a slot's request however the COMPOUND ends (also when its future is dropped:
/// the slot is then free again and a retransmission gets NFS4ERR_RETRY_UNCACHED_REP).
struct SlotGuard {
    session: Arc<Session>,
    slot: u32,
    reply: Option<Bytes>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.session.finish(self.slot, self.reply.take());
    }
}

/// The largest reply a slot keeps: the negotiated cache size, or the server's own bound
/// when the client negotiated none (the Linux client asks for 0 and still sets
/// `cachethis` on its non-idempotent COMPOUNDs).
fn cache_limit(s: &Session) -> usize {
    match s.max_resp_cached {
        0 => MAX_CACHED as usize,
        n => n as usize,
    }
}

/// A COMPOUND without SEQUENCE: one operation that may run outside a session.
async fn sessionless(
    c: &mut Compound<'_>,
    res: &mut Results,
    op: Op4,
    hdr: &CompoundHeader,
) -> Bytes {
    let opnum = op.opnum();
    let allowed = matches!(
        op,
        Op4::ExchangeId(_)
            | Op4::CreateSession(_)
            | Op4::DestroySession(_)
            | Op4::DestroyClientid(_)
            | Op4::BindConnToSession(_)
    );
    if !allowed {
        res.fail(opnum, Nfs4Status::OpNotInSession);
    } else if hdr.nops != 1 {
        res.fail(opnum, Nfs4Status::NotOnlyOp);
    } else {
        let r = c.run(op).await;
        res.push(opnum, &r);
    }
    res.encode(&hdr.tag)
}

/// Runs the operations after SEQUENCE until one fails or the reply outgrows its bounds.
async fn run_rest(
    c: &mut Compound<'_>,
    res: &mut Results,
    dec: &mut Decoder<'_>,
    nops: u32,
    bounds: &Bounds,
) {
    for _ in 0..nops {
        let op = match Op4::decode(dec) {
            Ok(op) => op,
            Err(e) => return decode_failure(res, e, c.minor),
        };
        let opnum = op.opnum();
        if !op.in_minor_version(c.minor) {
            return match c.minor {
                0 => res.fail(OP_ILLEGAL, Nfs4Status::OpIllegal),
                _ => res.fail(opnum, Nfs4Status::NotSupp),
            };
        }
        let r = c.run(op).await;
        let mark = res.buf.len();
        let (n, last) = (res.n, res.last);
        res.push(opnum, &r);
        let size = res.buf.len() + 64;
        let too_big = if size > bounds.max_resp {
            Some(Nfs4Status::RepTooBig)
        } else if bounds.cache_limit.is_some_and(|l| size > l) {
            Some(Nfs4Status::RepTooBigToCache)
        } else {
            None
        };
        if let Some(st) = too_big {
            res.buf.truncate(mark);
            (res.n, res.last) = (n, last);
            return res.fail(opnum, st);
        }
        if r.is_err() {
            return;
        }
    }
}

/// The result of an operation that did not decode (an unimplemented operation of a
/// later minor version is OP_ILLEGAL in 4.0).
fn decode_failure(res: &mut Results, e: OpDecodeError, minor: u32) {
    match e {
        OpDecodeError::Illegal(_) => res.fail(OP_ILLEGAL, Nfs4Status::OpIllegal),
        OpDecodeError::NotSupp(n) if minor == 0 && !crate::nfs4::in_minor_version(n, 0) => {
            res.fail(OP_ILLEGAL, Nfs4Status::OpIllegal)
        }
        OpDecodeError::NotSupp(n) => res.fail(n, Nfs4Status::NotSupp),
        OpDecodeError::Xdr(n, _) => res.fail(n, Nfs4Status::BadXdr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfs4::encode_compound;
    use crate::nfs4::io::ReadArgs;
    use crate::nfs4::types::Bitmap4;

    fn bound(ops: &[Op4]) -> usize {
        reply_bound(&Bytes::from(encode_compound(b"", 1, ops)))
    }

    #[test]
    fn reply_bounds_follow_the_operations() {
        let read = |count| {
            Op4::Read(ReadArgs {
                stateid: Stateid4::ANONYMOUS,
                offset: 0,
                count,
            })
        };
        let small = bound(&[Op4::Putrootfh, Op4::Getattr(Bitmap4::from_bits(&[1]))]);
        assert!(small < 8192, "{small}");
        assert!(bound(&[Op4::Putrootfh, read(1 << 20)]) > 1 << 20);
        let two = bound(&[read(1 << 20), read(1 << 20)]);
        assert_eq!(two, MAX_MSG as usize + 4096, "capped at the session bound");
        assert_eq!(reply_bound(&Bytes::from_static(&[1, 2])), 4096);
    }
}
