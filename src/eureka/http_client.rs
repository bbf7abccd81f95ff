//! The HTTP client (stub: the agreed API, filled in by the client work).

/// A Eureka client over HTTP (stub).
#[derive(Debug)]
pub struct HttpClient;

/// Builds an [`HttpClient`] (stub).
#[derive(Debug)]
pub struct HttpClientBuilder;
