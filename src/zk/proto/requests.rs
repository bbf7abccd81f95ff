//! The operations' bodies: what follows the request header, and what follows a
//! successful reply's header. Which body a reply has is known from the request its
//! xid answers.

use super::acl::{Acl, read_acls, write_acls};
use super::codec::{Decode, Encode, Reader, Writer};
use super::codes::CreateMode;
use super::error::ProtoError;
use super::records::Stat;

/// A version that matches any: delete or set whatever the node's version is.
pub(crate) const ANY_VERSION: i32 = -1;

/// create (opcode 1) and create2 (15): the same body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateRequest {
    /// The node's path; for a sequential node, the prefix its number is appended to.
    pub(crate) path: String,
    pub(crate) data: Vec<u8>,
    pub(crate) acl: Vec<Acl>,
    pub(crate) mode: CreateMode,
}

impl Encode for CreateRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
        w.write_buffer(&self.data);
        write_acls(w, &self.acl);
        w.write_int(self.mode.code());
    }
}

impl Decode for CreateRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
            data: r.read_bytes()?,
            acl: read_acls(r)?,
            mode: CreateMode::from_code(r.read_int()?)?,
        })
    }
}

/// create's reply: the path the node got (with its sequence number, if sequential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateResponse {
    pub(crate) path: String,
}

impl Encode for CreateResponse {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
    }
}

impl Decode for CreateResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
        })
    }
}

/// create2's reply: the path and the new node's `Stat` (its `ephemeral_owner` is the
/// session's id for an ephemeral node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Create2Response {
    pub(crate) path: String,
    pub(crate) stat: Stat,
}

impl Encode for Create2Response {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
        self.stat.encode(w);
    }
}

impl Decode for Create2Response {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
            stat: Stat::decode(r)?,
        })
    }
}

/// delete (opcode 2). Its reply has no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeleteRequest {
    pub(crate) path: String,
    /// The version the node must have, or [`ANY_VERSION`].
    pub(crate) version: i32,
}

impl Encode for DeleteRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
        w.write_int(self.version);
    }
}

impl Decode for DeleteRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
            version: r.read_int()?,
        })
    }
}

/// A path and whether to leave a watch on it: the body of exists (3), getData (4),
/// getChildren (8) and getChildren2 (12). exists with a watch on a missing node
/// answers `NoNode` and still leaves a watch that fires when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathWatchRequest {
    pub(crate) path: String,
    pub(crate) watch: bool,
}

/// exists: replies with the node's [`Stat`].
pub(crate) type ExistsRequest = PathWatchRequest;
/// getData: replies with a [`GetDataResponse`].
pub(crate) type GetDataRequest = PathWatchRequest;
/// getChildren and getChildren2: reply with a [`GetChildrenResponse`] or
/// [`GetChildren2Response`].
pub(crate) type GetChildrenRequest = PathWatchRequest;

impl Encode for PathWatchRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
        w.write_bool(self.watch);
    }
}

impl Decode for PathWatchRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
            watch: r.read_bool()?,
        })
    }
}

/// setData (opcode 5): replies with the node's new [`Stat`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetDataRequest {
    pub(crate) path: String,
    pub(crate) data: Vec<u8>,
    /// The version the node must have, or [`ANY_VERSION`].
    pub(crate) version: i32,
}

impl Encode for SetDataRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.path);
        w.write_buffer(&self.data);
        w.write_int(self.version);
    }
}

impl Decode for SetDataRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            path: r.read_str()?,
            data: r.read_bytes()?,
            version: r.read_int()?,
        })
    }
}

/// getData's reply. Data stored as null reads as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetDataResponse {
    pub(crate) data: Vec<u8>,
    pub(crate) stat: Stat,
}

impl Encode for GetDataResponse {
    fn encode(&self, w: &mut Writer) {
        w.write_buffer(&self.data);
        self.stat.encode(w);
    }
}

impl Decode for GetDataResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            data: r.read_bytes()?,
            stat: Stat::decode(r)?,
        })
    }
}

/// getChildren's reply: the children's names (not paths), in no particular order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetChildrenResponse {
    pub(crate) children: Vec<String>,
}

impl Encode for GetChildrenResponse {
    fn encode(&self, w: &mut Writer) {
        w.write_strings(&self.children);
    }
}

impl Decode for GetChildrenResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            children: r.read_strings()?,
        })
    }
}

/// getChildren2's reply: the children's names and the parent's `Stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetChildren2Response {
    pub(crate) children: Vec<String>,
    pub(crate) stat: Stat,
}

impl Encode for GetChildren2Response {
    fn encode(&self, w: &mut Writer) {
        w.write_strings(&self.children);
        self.stat.encode(w);
    }
}

impl Decode for GetChildren2Response {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            children: r.read_strings()?,
            stat: Stat::decode(r)?,
        })
    }
}
