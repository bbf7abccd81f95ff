//! Eureka's JSON shapes (stub: written with the HTTP client).
