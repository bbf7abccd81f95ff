//! `Factory` turns an instance into an endpoint; `Closer` releases it.

use crate::{Instance, Result};

/// Releases what a [`Factory`] built for one instance (a connection pool, a client).
///
/// The endpointer calls it exactly once: when the instance leaves the set, when the
/// endpoints are invalidated, or when the endpointer closes. Any `FnOnce() + Send` is a
/// `Closer`.
pub trait Closer: Send {
    /// Releases the endpoint's resources.
    fn close(self: Box<Self>);
}

impl<F: FnOnce() + Send> Closer for F {
    fn close(self: Box<Self>) {
        (*self)()
    }
}

/// What a [`Factory`] returns: the endpoint, and optionally how to close it.
pub type Made<E> = (E, Option<Box<dyn Closer>>);

/// Builds the endpoint for one instance.
///
/// Called on the endpointer's own thread, once per instance that joins the set; never
/// for instances already cached. An error leaves that instance out (it is logged, and
/// tried again with the next change of the set). Any
/// `Fn(&Instance) -> Result<(E, Option<Box<dyn Closer>>)> + Send + 'static` is a factory.
///
/// ```
/// use waypost::{Error, Factory, Instance};
/// let factory = |instance: &Instance| -> waypost::Result<_> {
///     let port = instance.port().ok_or_else(|| Error::factory("no port"))?;
///     Ok((port, None))
/// };
/// let (port, closer) = factory.make(&Instance::new("10.0.0.1:8080")).unwrap();
/// assert_eq!(port, 8080);
/// assert!(closer.is_none());
/// ```
pub trait Factory<E>: Send + 'static {
    /// The endpoint for `instance`, and its closer if it needs one.
    fn make(&self, instance: &Instance) -> Result<Made<E>>;
}

impl<E, F> Factory<E> for F
where
    F: Fn(&Instance) -> Result<Made<E>> + Send + 'static,
{
    fn make(&self, instance: &Instance) -> Result<Made<E>> {
        self(instance)
    }
}
