//! DNS wire format on simple-dns (stub).
