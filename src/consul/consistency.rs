//! [`Consistency`]: which Consul server may answer a health query, and how old its
//! answer may be.

use std::time::Duration;

use crate::{Error, Result};

/// Which Consul server may answer a health query: the leader, or any server.
///
/// Set it with [`InstancerBuilder::consistency`](super::InstancerBuilder::consistency)
/// (or in [`HealthQuery::consistency`](super::HealthQuery::consistency)).
///
/// The trade-off:
/// - [`Default`](Consistency::Default): the agent forwards the query to the leader,
///   which answers from the state it has committed. The set is as current as Consul
///   knows it, but every query costs the leader, and without a leader (an election,
///   a lost quorum) queries fail, so watchers get error events and keep their last set.
/// - [`Stale`](Consistency::Stale) (`?stale`): any server answers from its own copy.
///   Reads spread over every server, are cheaper and faster, and go on while the
///   cluster has no leader. The price: a server may lag behind the leader, usually by
///   well under 100 ms, arbitrarily during a partition, so the set may miss recent
///   changes. `max_stale` bounds that lag: each answer carries
///   `X-Consul-LastContact`, the milliseconds since the answering server last heard
///   from the leader; an answer older than the bound is asked again in default mode
///   (what consul-template's `max_stale` does), which then costs a second request and
///   fails like a default query when there is no leader.
///
/// A dev agent, or a single-server cluster, is its own leader: both modes give the same
/// answers there.
///
/// ```
/// use std::time::Duration;
/// use waypost::consul::Consistency;
/// let any_server = Consistency::Stale { max_stale: None };
/// let at_most_5s_behind = Consistency::Stale { max_stale: Some(Duration::from_secs(5)) };
/// assert_eq!(Consistency::default(), Consistency::Default);
/// # let _ = (any_server, at_most_5s_behind);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// The leader answers (Consul's default mode). The default.
    #[default]
    Default,
    /// Any server answers (`?stale`).
    Stale {
        /// The most an answer may lag behind the leader (`X-Consul-LastContact`)
        /// before it is asked again in default mode; `None` takes any answer. An
        /// answer without the header (a proxy that drops it) is taken as it is.
        ///
        /// - `Some(Duration::ZERO)` is refused by
        ///   [`InstancerBuilder::build`](super::InstancerBuilder::build) with
        ///   [`Error::InvalidConfig`] (`max_stale`): it would ask again whenever a
        ///   server other than the leader answers, which is
        ///   [`Consistency::Default`] at twice the cost. (Given straight to
        ///   [`Client::health_service`](super::Client::health_service), it does just
        ///   that.)
        /// - `Some(Duration::MAX)`, like any bound longer than a server can lag, never
        ///   asks again: the same as `None`.
        max_stale: Option<Duration>,
    },
}

impl Consistency {
    /// True for [`Stale`](Consistency::Stale): the query may go to any server.
    pub(crate) fn is_stale(self) -> bool {
        matches!(self, Consistency::Stale { .. })
    }

    /// True when an answer whose server last heard from the leader `last_contact` ago
    /// (`None`: not said) must be asked again in default mode.
    pub(crate) fn too_stale(self, last_contact: Option<Duration>) -> bool {
        match (self, last_contact) {
            (
                Consistency::Stale {
                    max_stale: Some(bound),
                },
                Some(last_contact),
            ) => last_contact > bound,
            _ => false,
        }
    }

    /// Refuses a zero bound (see [`Consistency::Stale::max_stale`]).
    pub(crate) fn validate(self) -> Result<()> {
        match self {
            Consistency::Stale {
                max_stale: Some(Duration::ZERO),
            } => Err(Error::invalid_config(
                "max_stale",
                "must be more than zero (Consistency::Default asks the leader)",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bounded_stale_answer_past_its_bound_is_asked_again() {
        let second = Duration::from_secs(1);
        let bounded = Consistency::Stale {
            max_stale: Some(second),
        };
        assert!(bounded.too_stale(Some(second + Duration::from_millis(1))));
        assert!(!bounded.too_stale(Some(second)));
        assert!(!bounded.too_stale(None), "no header: taken as it is");
        let unbounded = Consistency::Stale { max_stale: None };
        assert!(!unbounded.too_stale(Some(Duration::from_secs(3600))));
        assert!(!Consistency::Default.too_stale(Some(Duration::from_secs(3600))));
        let max = Consistency::Stale {
            max_stale: Some(Duration::MAX),
        };
        assert!(!max.too_stale(Some(Duration::from_millis(u64::MAX))));
    }

    #[test]
    fn a_zero_bound_is_refused() {
        let zero = Consistency::Stale {
            max_stale: Some(Duration::ZERO),
        };
        assert!(matches!(
            zero.validate(),
            Err(Error::InvalidConfig {
                field: "max_stale",
                ..
            })
        ));
        for fine in [
            Consistency::Default,
            Consistency::Stale { max_stale: None },
            Consistency::Stale {
                max_stale: Some(Duration::MAX),
            },
        ] {
            assert!(fine.validate().is_ok(), "{fine:?}");
        }
    }
}
