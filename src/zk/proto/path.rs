//! ZooKeeper paths: the rules a path must follow, a chroot prefixed to every path the
//! client sends and taken off every path the server names, and parents.

use std::fmt;

/// Why a string is not a ZooKeeper path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidPath {
    pub(crate) path: String,
    pub(crate) reason: &'static str,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ZooKeeper path {:?}: {}", self.path, self.reason)
    }
}

impl std::error::Error for InvalidPath {}

/// Checks `path` against the rules ZooKeeper 3.8.0's server applies (a path breaking
/// them is answered `BadArguments`): absolute; no trailing `/` except for the root; no
/// empty, `.` or `..` segment; no NUL, no control character (U+0001 to U+001F, U+007F
/// to U+009F), no private-use character (U+E000 to U+F8FF), nothing from U+FFF0 on.
/// The last rule includes every character past U+FFFF: the server checks UTF-16
/// units, and such a character is two surrogates, which it refuses.
pub(crate) fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let fail = |reason| {
        Err(InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    let Some(rest) = path.strip_prefix('/') else {
        return fail(match path.is_empty() {
            true => "it is empty",
            false => "it does not start with /",
        });
    };
    if rest.is_empty() {
        return Ok(());
    }
    for segment in rest.split('/') {
        match segment {
            "" => return fail("it has an empty segment or ends with /"),
            "." | ".." => return fail("it has a . or .. segment"),
            _ => {}
        }
    }
    if path.contains('\0') {
        return fail("it contains NUL");
    }
    if path.chars().any(refused_char) {
        return fail("it contains a control, private-use or non-BMP character");
    }
    Ok(())
}

/// [`validate_path`] for a create. The server appends a sequential node's number
/// before it checks the path, so such a path may end with `/` (`/jobs/` makes
/// `/jobs/0000000007`) or `.`.
pub(crate) fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if !sequential {
        return validate_path(path);
    }
    validate_path(&format!("{path}1")).map_err(|e| InvalidPath {
        path: path.to_owned(),
        ..e
    })
}

fn refused_char(c: char) -> bool {
    matches!(
        c,
        '\u{1}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{E000}'..='\u{F8FF}' | '\u{FFF0}'..
    )
}

/// The parent of a valid path; `None` for the root.
pub(crate) fn parent(path: &str) -> Option<&str> {
    match path.rfind('/')? {
        0 if path.len() > 1 => Some("/"),
        0 => None,
        at => Some(&path[..at]),
    }
}

/// The path of `name` under the valid path `parent`.
pub(crate) fn child(parent: &str, name: &str) -> String {
    match parent {
        "/" => format!("/{name}"),
        _ => format!("{parent}/{name}"),
    }
}

/// A subtree the client works in as if it were the root: `/` in the client's paths is
/// the chroot's path on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chroot {
    /// A valid path other than `/`; `None` for no chroot.
    prefix: Option<String>,
}

impl Chroot {
    /// A chroot at `root`, a valid path; `/` or an empty string is none.
    pub(crate) fn new(root: &str) -> Result<Self, InvalidPath> {
        if root.is_empty() || root == "/" {
            return Ok(Self::default());
        }
        validate_path(root)?;
        Ok(Self {
            prefix: Some(root.to_owned()),
        })
    }

    /// The chroot's path on the server: `/` for none.
    pub(crate) fn root(&self) -> &str {
        self.prefix.as_deref().unwrap_or("/")
    }

    /// The server's path for the client's valid `path`.
    pub(crate) fn join(&self, path: &str) -> String {
        match (&self.prefix, path) {
            (None, _) => path.to_owned(),
            (Some(prefix), "/") => prefix.clone(),
            (Some(prefix), _) => format!("{prefix}{path}"),
        }
    }

    /// The client's path for a path the server names (a created node, a watch event);
    /// `None` if it lies outside the chroot, which a server never sends for a request
    /// of this client.
    pub(crate) fn strip<'a>(&self, server_path: &'a str) -> Option<&'a str> {
        let Some(prefix) = &self.prefix else {
            return Some(server_path);
        };
        match server_path.strip_prefix(prefix.as_str())? {
            "" => Some("/"),
            rest if rest.starts_with('/') => Some(rest),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths() {
        for path in [
            "/",
            "/a",
            "/a/b",
            "/services/api-1",
            "/a/.b",
            "/a/..b",
            "/é/ü",
            "/a b",
        ] {
            assert_eq!(validate_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn invalid_paths_and_why() {
        for (path, reason) in [
            ("", "it is empty"),
            ("a/b", "it does not start with /"),
            ("/a/", "it has an empty segment or ends with /"),
            ("/a//b", "it has an empty segment or ends with /"),
            ("//", "it has an empty segment or ends with /"),
            ("/a/.", "it has a . or .. segment"),
            ("/../a", "it has a . or .. segment"),
            ("/a\0b", "it contains NUL"),
            (
                "/a\u{7}",
                "it contains a control, private-use or non-BMP character",
            ),
            (
                "/a\u{85}",
                "it contains a control, private-use or non-BMP character",
            ),
            (
                "/\u{E000}",
                "it contains a control, private-use or non-BMP character",
            ),
            (
                "/\u{FFFE}",
                "it contains a control, private-use or non-BMP character",
            ),
            (
                "/\u{1F600}",
                "it contains a control, private-use or non-BMP character",
            ),
        ] {
            assert_eq!(
                validate_path(path),
                Err(InvalidPath {
                    path: path.to_owned(),
                    reason
                }),
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_sequential_create_may_end_with_a_slash() {
        assert_eq!(validate_create_path("/jobs/", true), Ok(()));
        assert_eq!(validate_create_path("/jobs/e-", true), Ok(()));
        assert!(validate_create_path("/jobs/", false).is_err());
        assert!(validate_create_path("/jobs//", true).is_err());
        assert!(validate_create_path("/./", true).is_err());
        assert_eq!(
            validate_create_path("/.", true),
            Ok(()),
            "it will be /.0000000001"
        );
        assert_eq!(validate_create_path("/", true), Ok(()));
        assert_eq!(
            validate_create_path("jobs", true),
            Err(InvalidPath {
                path: "jobs".to_owned(),
                reason: "it does not start with /"
            })
        );
    }

    #[test]
    fn parents_and_children() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(child("/", "a"), "/a");
        assert_eq!(child("/a/b", "c"), "/a/b/c");
    }

    #[test]
    fn a_chroot_is_prefixed_and_stripped() {
        let none = Chroot::new("/").unwrap();
        assert_eq!(none, Chroot::new("").unwrap());
        assert_eq!(none.root(), "/");
        assert_eq!(none.join("/a"), "/a");
        assert_eq!(none.strip("/a"), Some("/a"));

        let chroot = Chroot::new("/apps/web").unwrap();
        assert_eq!(chroot.root(), "/apps/web");
        assert_eq!(chroot.join("/"), "/apps/web");
        assert_eq!(chroot.join("/services/api"), "/apps/web/services/api");
        assert_eq!(chroot.join("/jobs/"), "/apps/web/jobs/");
        assert_eq!(chroot.strip("/apps/web"), Some("/"));
        assert_eq!(
            chroot.strip("/apps/web/services/api"),
            Some("/services/api")
        );
        assert_eq!(chroot.strip("/apps/webs"), None);
        assert_eq!(chroot.strip("/apps"), None);
        assert_eq!(chroot.strip("/other"), None);

        assert!(Chroot::new("apps").is_err());
        assert!(Chroot::new("/apps/").is_err());
    }
}
