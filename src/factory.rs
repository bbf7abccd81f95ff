//! Factories turn an instance into an endpoint; `Made` carries an endpoint with its
//! closer; `Closer` releases it.

use std::fmt;

use crate::{BoxError, Instance};

/// Releases what a factory built for one instance (a connection pool, a client).
///
/// The endpointer calls it exactly once, once the endpoint is out of service: its
/// instance left the set (or the endpoints were invalidated, or the endpointer closed)
/// and no snapshot holding it is alive. Any `FnOnce() + Send + 'static` is a `Closer`.
pub trait Closer: Send {
    /// Releases the endpoint's resources.
    fn close(self: Box<Self>);
}

impl<F: FnOnce() + Send> Closer for F {
    fn close(self: Box<Self>) {
        (*self)()
    }
}

/// An endpoint with a closer, as a factory returns it when the endpoint holds
/// something to release.
///
/// A factory is any closure `Fn(&Instance) -> Result<T, BoxError>` where `T` is the
/// endpoint itself, or a `Made` of it when it needs a closer; neither needs a type
/// annotation, and `?` turns any error into the [`BoxError`]:
///
/// ```
/// use waypost::{DefaultEndpointer, FixedInstancer, Made};
/// // The bare endpoint:
/// let urls = DefaultEndpointer::new(FixedInstancer::new(["10.0.0.1:80"]), |i| {
///     Ok(format!("http://{i}/"))
/// })?;
/// // With a closer, and `?` on the factory's own errors:
/// let ports = DefaultEndpointer::new(FixedInstancer::new(["10.0.0.1:80"]), |i| {
///     let port: u16 = i.addr().rsplit(':').next().unwrap_or("").parse()?;
///     Ok(Made::new(port).on_close(move || println!("closing {port}")))
/// })?;
/// # Ok::<(), waypost::Error>(())
/// ```
///
/// A factory runs on the endpointer's factory thread (`waypost-factory`), once per
/// instance that joins the set (never for an instance already cached), one call at a
/// time. An error leaves that instance out: it is
/// logged, and tried again with the next set that contains it.
pub struct Made<E> {
    pub(crate) endpoint: E,
    pub(crate) closer: Option<Box<dyn Closer>>,
}

impl<E> Made<E> {
    /// `endpoint`, with no closer yet.
    pub fn new(endpoint: E) -> Made<E> {
        Made {
            endpoint,
            closer: None,
        }
    }

    /// Runs `closer` once the endpoint is out of service (see [`Closer`]).
    pub fn on_close(mut self, closer: impl FnOnce() + Send + 'static) -> Made<E> {
        self.closer = Some(Box::new(closer));
        self
    }
}

impl<E: fmt::Debug> fmt::Debug for Made<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Made")
            .field("endpoint", &self.endpoint)
            .field("closer", &self.closer.is_some())
            .finish()
    }
}

/// What a factory may return: an endpoint `E` (any `Clone` type), or a [`Made<E>`]
/// with its closer. Implemented for both; there is nothing to implement.
///
/// (`Made` is not `Clone`, so a `Made<E>` is never taken for an endpoint of its own:
/// that keeps the endpoint type inferred from the closure.)
pub trait IntoMade<E> {
    /// The endpoint and its closer, if any.
    fn into_made(self) -> Made<E>;
}

impl<E> IntoMade<E> for Made<E> {
    fn into_made(self) -> Made<E> {
        self
    }
}

impl<E: Clone> IntoMade<E> for E {
    fn into_made(self) -> Made<E> {
        Made::new(self)
    }
}

/// The factory as the endpointer keeps it.
pub(crate) trait Factory<E>: Send + 'static {
    fn make(&self, instance: &Instance) -> Result<Made<E>, BoxError>;
}

/// A closure as a factory.
pub(crate) struct FnFactory<F, M> {
    f: F,
    _made: std::marker::PhantomData<fn() -> M>,
}

impl<F, M> FnFactory<F, M> {
    pub(crate) fn new(f: F) -> FnFactory<F, M> {
        FnFactory {
            f,
            _made: std::marker::PhantomData,
        }
    }
}

impl<E, F, M> Factory<E> for FnFactory<F, M>
where
    F: Fn(&Instance) -> Result<M, BoxError> + Send + 'static,
    M: IntoMade<E> + 'static,
    E: 'static,
{
    fn make(&self, instance: &Instance) -> Result<Made<E>, BoxError> {
        (self.f)(instance).map(IntoMade::into_made)
    }
}
