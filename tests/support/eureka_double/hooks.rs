//! What tests see of the double and script into it: logged requests, registered
//! instances, broken answers.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::time::Duration;

use super::registry::Entry;
use super::routes::Reply;
use crate::support::fake_http::Seen;

/// A request as the double saw it, with its answer's status and when it came.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seen: Seen,
    /// The status answered; 0 when the connection was closed instead.
    pub status: u16,
    /// Since the double started.
    pub at: Duration,
}

impl Deref for Logged {
    type Target = Seen;
    fn deref(&self) -> &Seen {
        &self.seen
    }
}

/// An instance in the registry, as a test looks at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    pub app: String,
    pub id: String,
    pub host: String,
    pub ip: String,
    pub port: u16,
    /// What reads show.
    pub status: String,
    /// The override in force, or UNKNOWN.
    pub overridden: String,
    pub vip: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub last_dirty: u64,
    /// Renewals since it was (last) registered.
    pub renewals: u64,
    pub lease: Duration,
}

/// A broken answer for [`EurekaDouble::script_reads`] and `script_writes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// 200, `application/json`, a body cut mid-object.
    MalformedJson,
    /// This status with a servlet container's HTML error page.
    Html(u16),
    /// 200, valid JSON of the wrong shape (no `applications`).
    WrongShape,
    /// Anything.
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// No answer: the connection is closed.
    Close,
}

pub fn registered(e: &Entry) -> Registered {
    Registered {
        app: e.info.app.clone(),
        id: e.info.id().to_owned(),
        host: e.info.host_name.clone(),
        ip: e.info.ip_addr.clone(),
        port: e.info.port,
        status: e.info.status.clone(),
        overridden: e.info.overridden.clone(),
        vip: e.info.vip_address.clone(),
        metadata: e.info.metadata.clone(),
        last_dirty: e.info.last_dirty,
        renewals: e.lease.renewals,
        lease: e.lease.duration,
    }
}

pub fn broken_reply(broken: Broken) -> Option<Reply> {
    Some(match broken {
        Broken::MalformedJson => Reply::text(
            200,
            "application/json",
            r#"{"applications":{"versions__delta":"1","application":[{"name":"#,
        ),
        Broken::Html(status) => Reply::html_error(status),
        Broken::WrongShape => Reply::text(200, "application/json", r#"{"registry":[]}"#),
        Broken::Raw {
            status,
            content_type,
            body,
        } => Reply::text(status, &content_type, body),
        Broken::Close => return None,
    })
}
