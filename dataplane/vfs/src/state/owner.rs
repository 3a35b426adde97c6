//! Who holds state: protocols, clients and owners.
//!
//! Every lock, open, waiter and lease names an [`Owner`]: the protocol it came through,
//! the client (the unit that is cleaned up together: an NLM host, an NFSv4 client ID, an
//! SMB session) and an opaque owner key inside that client. Two owners are the same
//! owner only when all three parts are equal, so identical keys from different clients
//! or protocols never merge.
//!
//! How each protocol maps in:
//! - NLM v4 (Open Group XNFS "Protocols for Interworking: XNFS", NLM chapter; RFC 1813
//!   leaves locking to NLM): client = the caller's host name, key = `svid` (4 bytes,
//!   big-endian) followed by the `oh` bytes.
//! - NFSv4 (RFC 8881 section 9.1.1 "State-Owner Definition"; RFC 7530 section 9.1.1):
//!   client = the 64-bit client ID, key = the open-owner or lock-owner opaque bytes.
//!   Delegations are held per client: key is empty.
//! - SMB2/3 (MS-SMB2 3.3.5.14: locks belong to an open): client = the session ID, key =
//!   the 16-byte FileId of the open; a lease holder's key is the 16-byte lease key
//!   (MS-SMB2 3.3.1.4).
//! - Local: operations of the server itself (maintenance, the recycle bin).
//!
//! Invariant: [`Protocol`] alone decides whether I/O is checked against byte-range
//! locks (mandatory for SMB, advisory for NLM and NFSv4); see
//! [`Protocol::mandatory_locks`].

use std::fmt;
use std::sync::Arc;

/// The protocol a piece of state came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// NFSv3 clients through the Network Lock Manager (advisory locks).
    Nlm,
    /// NFSv4.x (advisory byte-range locks, mandatory share reservations).
    Nfs4,
    /// SMB2/3 (mandatory byte-range locks and share modes).
    Smb,
    /// The server itself.
    Local,
}

impl Protocol {
    /// Whether reads and writes through this protocol must honour other owners'
    /// byte-range locks ([`crate::state::LockManager::check_io`]).
    pub fn mandatory_locks(self) -> bool {
        matches!(self, Protocol::Smb)
    }
}

/// A client of one protocol: the unit released together by
/// [`crate::state::LockManager::release_client`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientId {
    /// A numeric identity (NFSv4 client ID, SMB session ID).
    Num(u64),
    /// A named identity (NLM caller name).
    Name(Arc<str>),
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientId::Num(n) => write!(f, "{n:#x}"),
            ClientId::Name(s) => f.write_str(s),
        }
    }
}

/// One lock owner, open owner or lease holder. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub protocol: Protocol,
    pub client: ClientId,
    /// Opaque key within the client (see the module header for each protocol).
    pub key: Arc<[u8]>,
}

impl Owner {
    pub fn new(protocol: Protocol, client: ClientId, key: &[u8]) -> Owner {
        Owner {
            protocol,
            client,
            key: Arc::from(key),
        }
    }

    /// Whether this owner belongs to `client` of `protocol`.
    pub fn is_of_client(&self, protocol: Protocol, client: &ClientId) -> bool {
        self.protocol == protocol && &self.client == client
    }

    /// Whether both owners belong to the same client of the same protocol.
    pub fn same_client(&self, other: &Owner) -> bool {
        self.is_of_client(other.protocol, &other.client)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{}/", self.protocol, self.client)?;
        for b in self.key.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
