//! `ZonePreference`: calls stay in the local zone while it has enough instances.

use std::fmt;
use std::sync::Arc;

use crate::lb::{Balancer, Pick, Usable};
use crate::{DeriveAny, Derived, Endpoints, Error, Result};

/// Which endpoints of one snapshot are in the local zone.
struct Local {
    local: Box<[bool]>,
    count: usize,
}

/// Wraps any [`Balancer`] so that calls go to instances in the local zone while it has
/// enough of them, and spill to every zone otherwise.
///
/// # Algorithm
/// An instance's zone is its metadata's [`zone`](crate::Metadata::zone) (Eureka's
/// zone, a `zone` tag or key set by the backend's decoder). While the current set has
/// at least `min_instances` instances in the local zone (default 1), a pick asks the
/// inner balancer for a local one ([`Balancer::pick_if`]). The pick spills to every
/// zone when the local zone has fewer instances than the minimum, or when it is in
/// *panic*: under an [`OutlierEjection`](crate::lb::OutlierEjection) (put it outside,
/// see below) that has set instances aside, fewer than `min_instances`, or fewer than
/// half (Envoy's panic threshold), of the local instances are in service. Instances
/// with no zone are in no zone, never local.
///
/// Envoy's zone-aware routing, for comparison, only routes locally when the cluster
/// has at least `min_cluster_size` (6) instances and spreads the overflow by zone
/// sizes; this is the simpler "prefer local, spill when short" of gRPC's and Spring
/// Cloud's zone preference. Set `min_instances(6)` for Envoy's threshold.
///
/// Put outlier ejection *outside* the zone preference,
/// `OutlierEjection::new(ZonePreference::new(inner, "eu-1")?)?`, so that ejected
/// instances count as unusable when the local zone is chosen.
///
/// # Zones and registries
/// Consul answers one health query per datacenter, and its instances carry that
/// datacenter as their zone, so all instances of one Consul query are in one zone:
/// give each service instance its zone in its `Meta` (`Meta = { zone = "eu-1a" }`)
/// and read it with [`zone_key("zone")`](ZonePreferenceBuilder::zone_key). Eureka's
/// instances carry their zone in `metadata.zone`, which waypost reads as the zone.
///
/// ```
/// use waypost::{FixedEndpointer, Instance};
/// use waypost::lb::{Balancer, RoundRobin, ZonePreference};
///
/// let endpointer = FixedEndpointer::with_instances([
///     (Instance::builder("10.0.0.1:80").zone("eu-1").build(), "near"),
///     (Instance::builder("10.1.0.1:80").zone("us-1").build(), "far"),
/// ]);
/// let lb = ZonePreference::new(RoundRobin::new(endpointer), "eu-1")?;
/// assert!((0..10).all(|_| *lb.pick().unwrap() == "near"));
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct ZonePreference<B> {
    inner: B,
    zone: Arc<str>,
    min_instances: usize,
    table: Derived<Local>,
}

/// Configures a [`ZonePreference`]; made by [`ZonePreference::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct ZonePreferenceBuilder<B> {
    inner: B,
    zone: Arc<str>,
    min_instances: usize,
    key: Option<Arc<str>>,
}

impl<B> ZonePreferenceBuilder<B> {
    /// How many instances the local zone needs in the set for calls to stay in it.
    /// Default: 1. Must be at least 1.
    pub fn min_instances(mut self, n: usize) -> Self {
        self.min_instances = n;
        self
    }

    /// Reads each instance's zone from its metadata value `key` instead of its
    /// [`zone`](crate::Metadata::zone): for Consul, whose instances of one query all
    /// have their datacenter as zone, put the zone in the service's `Meta` (say
    /// `zone = "eu-1a"`) and read it with `zone_key("zone")`. Default: the zone.
    pub fn zone_key(mut self, key: &str) -> Self {
        self.key = Some(Arc::from(key));
        self
    }

    /// The balancer, or [`Error::InvalidConfig`] for an empty zone, a zero minimum or
    /// an inner balancer that cannot attach state to its endpointer.
    pub fn build<E: 'static>(self) -> Result<ZonePreference<B>>
    where
        B: Balancer<E>,
    {
        if self.zone.is_empty() {
            return Err(Error::invalid_config("zone", "must not be empty"));
        }
        if self.min_instances == 0 {
            return Err(Error::invalid_config("min_instances", "must be at least 1"));
        }
        let derive = crate::snapshot::DeriveFn::new(local_in::<E>(self.zone.clone(), self.key));
        let derive: Arc<dyn DeriveAny<E>> = Arc::new(derive);
        let table = Derived::new(self.inner.attach(derive)?);
        Ok(ZonePreference {
            inner: self.inner,
            zone: self.zone,
            min_instances: self.min_instances,
            table,
        })
    }
}

/// Marks the endpoints of each snapshot in `zone`.
#[allow(clippy::type_complexity)]
fn local_in<E>(
    zone: Arc<str>,
    key: Option<Arc<str>>,
) -> impl Fn(&Endpoints<E>, Option<(&Endpoints<E>, &Local)>) -> Local + Send + Sync + 'static {
    move |new, _| {
        let zone_of = |m: &crate::Metadata| match &key {
            Some(key) => m.get(key).map(str::to_owned),
            None => m.zone().map(str::to_owned),
        };
        let local: Box<[bool]> = (new.instances().iter())
            .map(|i| i.metadata().and_then(zone_of).as_deref() == Some(&*zone))
            .collect();
        let count = local.iter().filter(|&&l| l).count();
        Local { local, count }
    }
}

impl<B> ZonePreference<B> {
    /// Prefers instances in `zone`, with at least one of them in the set.
    pub fn new<E: 'static>(inner: B, zone: &str) -> Result<Self>
    where
        B: Balancer<E>,
    {
        ZonePreference::builder(inner, zone).build()
    }

    /// A builder starting from the defaults of [`new`](ZonePreference::new).
    pub fn builder(inner: B, zone: &str) -> ZonePreferenceBuilder<B> {
        ZonePreferenceBuilder {
            inner,
            zone: Arc::from(zone),
            min_instances: 1,
            key: None,
        }
    }

    /// The balancer that picks.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The local zone.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    fn pick_local<E: 'static>(&self, usable: Option<&Usable<'_, E>>) -> Result<Pick<E>>
    where
        B: Balancer<E>,
    {
        let any = || match usable {
            None => self.inner.pick(),
            Some(usable) => self.inner.pick_if(usable),
        };
        // A first pick from every zone: kept when it is local, or when the local zone
        // is short (then it is the spill), so that a spilling or all-local set costs
        // one inner pick.
        let first = any()?;
        let Some(table) = first.snapshot().derived(&self.table) else {
            return Ok(first);
        };
        if table.count < self.min_instances
            || table.local[first.index()]
            || self.local_panic(&first, usable)
        {
            return Ok(first);
        }
        drop(first);
        let local = |snapshot: &Endpoints<E>, i: usize| {
            let here = snapshot.derived(&self.table).is_none_or(|t| t.local[i]);
            here && usable.is_none_or(|u| u(snapshot, i))
        };
        let pick = self.inner.pick_if(&local)?;
        if local(pick.snapshot(), pick.index()) {
            return Ok(pick);
        }
        drop(pick); // no usable local instance after all: spill
        any()
    }
}

impl<B> ZonePreference<B> {
    /// Whether the local zone of `pick`'s snapshot is in panic: under a wrapper that
    /// sets instances aside (`usable`), fewer than `min_instances`, or fewer than half,
    /// of its instances are usable. Counts them: `O(local instances)`, only while the
    /// wrapper skips some.
    fn local_panic<E>(&self, pick: &Pick<E>, usable: Option<&Usable<'_, E>>) -> bool {
        let (Some(usable), Some(table)) = (usable, pick.snapshot().derived(&self.table)) else {
            return false;
        };
        let snapshot = pick.snapshot();
        let in_service = (table.local.iter().enumerate())
            .filter(|&(i, &local)| local && usable(snapshot, i))
            .count();
        in_service < self.min_instances || in_service * 2 < table.count
    }
}

impl<E: 'static, B: Balancer<E>> Balancer<E> for ZonePreference<B> {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        self.pick_local(None)
    }

    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        self.pick_local(Some(usable))
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        self.inner.attach(derive)
    }
}

impl<B: fmt::Debug> fmt::Debug for ZonePreference<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZonePreference")
            .field("inner", &self.inner)
            .field("zone", &self.zone)
            .field("min_instances", &self.min_instances)
            .finish()
    }
}
