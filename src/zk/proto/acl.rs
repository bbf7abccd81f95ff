//! ACLs: who may do what to a node. An [`Acl`] grants [`perms`] to an [`Id`], a scheme
//! and an identity in it.

use super::codec::{Decode, Encode, Reader, Writer};
use super::error::ProtoError;
use super::sha1::sha1;
use crate::internal::base64::base64_encode;

/// The permission bits of an [`Acl`].
pub(crate) mod perms {
    pub(crate) const READ: i32 = 1;
    pub(crate) const WRITE: i32 = 2;
    pub(crate) const CREATE: i32 = 4;
    pub(crate) const DELETE: i32 = 8;
    pub(crate) const ADMIN: i32 = 16;
    pub(crate) const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// An identity in an authentication scheme: `world:anyone`, `digest:user:hash`,
/// `ip:10.0.0.0/8`, `auth:` (whoever the creating session authenticated as).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Id {
    pub(crate) scheme: String,
    pub(crate) id: String,
}

impl Id {
    pub(crate) fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// Everyone, authenticated or not.
    pub(crate) fn world_anyone() -> Self {
        Self::new("world", "anyone")
    }

    /// Whatever identities the session creating the node has added with `addauth`.
    pub(crate) fn creator() -> Self {
        Self::new("auth", "")
    }

    /// The `digest` identity of `user` with `password`:
    /// `user:base64(sha1("user:password"))`, which the server compares with the hash of
    /// what a session sends with `addauth digest user:password`. The server splits
    /// that at the first `:`, so a user name must not contain one.
    pub(crate) fn digest(user: &str, password: &str) -> Self {
        let hash = sha1(format!("{user}:{password}").as_bytes());
        Self::new("digest", format!("{user}:{}", base64_encode(&hash)))
    }
}

impl Encode for Id {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.scheme);
        w.write_ustring(&self.id);
    }
}

impl Decode for Id {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            scheme: r.read_str()?,
            id: r.read_str()?,
        })
    }
}

/// [`perms`] granted to an [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Acl {
    pub(crate) perms: i32,
    pub(crate) id: Id,
}

impl Acl {
    /// The fewest bytes an ACL takes: perms and two empty strings.
    pub(crate) const MIN_SIZE: usize = 12;

    pub(crate) fn new(perms: i32, id: Id) -> Self {
        Self { perms, id }
    }

    /// Everything, to everyone (the Java client's `OPEN_ACL_UNSAFE`).
    pub(crate) fn open() -> Vec<Self> {
        vec![Self::new(perms::ALL, Id::world_anyone())]
    }
}

impl Encode for Acl {
    fn encode(&self, w: &mut Writer) {
        w.write_int(self.perms);
        self.id.encode(w);
    }
}

impl Decode for Acl {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtoError> {
        Ok(Self {
            perms: r.read_int()?,
            id: Id::decode(r)?,
        })
    }
}

/// A `vector<ACL>`.
pub(crate) fn write_acls(w: &mut Writer, acls: &[Acl]) {
    w.write_vec(acls, |w, acl| acl.encode(w));
}

/// A `vector<ACL>`, null read as empty.
pub(crate) fn read_acls(r: &mut Reader<'_>) -> Result<Vec<Acl>, ProtoError> {
    Ok(r.read_vec(Acl::MIN_SIZE, Acl::decode)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::proto::codec::decode_exact;

    #[test]
    fn perms_have_zookeepers_values() {
        assert_eq!(
            [
                perms::READ,
                perms::WRITE,
                perms::CREATE,
                perms::DELETE,
                perms::ADMIN
            ],
            [1, 2, 4, 8, 16]
        );
        assert_eq!(perms::ALL, 31);
    }

    /// Made with ZooKeeper 3.8.0's own generator:
    /// `java -cp zookeeper.jar org.apache.zookeeper.server.auth.DigestAuthenticationProvider user:pass`.
    #[test]
    fn digest_ids_match_zookeepers() {
        assert_eq!(
            Id::digest("user", "pass"),
            Id::new("digest", "user:smGaoVKd/cQkjm7b88GyorAUz20=")
        );
        // The password is everything after the first colon.
        assert_eq!(
            Id::digest("bob", "s3cr3t:x").id,
            "bob:9nLDdUIfjop4jVqUOoYm9CX0Wq0="
        );
    }

    #[test]
    fn an_acl_is_perms_then_two_strings() {
        let mut w = Writer::new();
        Acl::new(perms::ALL, Id::world_anyone()).encode(&mut w);
        let bytes = w.into_bytes();
        let mut expected = vec![0, 0, 0, 31, 0, 0, 0, 5];
        expected.extend_from_slice(b"world");
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"anyone");
        assert_eq!(bytes, expected);
        assert_eq!(decode_exact::<Acl>(&bytes), Ok(Acl::open().remove(0)));
    }
}
