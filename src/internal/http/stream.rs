//! [`Http::call_json`]: a JSON answer decoded as it arrives. The body passes through a
//! small buffer straight into serde, under the same limit as a body read whole, so
//! decoding a large answer holds what it decodes into, never the body itself.

use std::io::{self, BufReader, Read};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use ureq::Body;
use ureq::http::Response;

use super::error::{Site, excerpt_window};
use super::{Call, Http, Outcome, Reply};
use crate::{Error, Result};

/// The read buffer between the connection and the decoder.
const BUFFER: usize = 64 << 10;

impl Http {
    /// Sends `call` as [`call`](Http::call) does (fail-over, a renewed credential); a
    /// 2xx answer is decoded into `T` as its body arrives, and returned with its head
    /// (status and headers; the [`Reply`]'s body is empty). Any other answer is a
    /// [`Status`](crate::HttpErrorKind::Status) error and a content type that is not
    /// JSON a [`Decode`](crate::HttpErrorKind::Decode) error, each quoting the body, as
    /// from [`Reply::success`] and [`Reply::json`]. A body that does not decode is a
    /// `Decode` error quoting its first bytes; one over the body limit, cut short or
    /// timed out while it is read is the same error as from `call`.
    #[cfg_attr(not(test), allow(dead_code))] // Consul decodes with state; etcd will not
    pub(crate) fn call_json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<(Reply, T)> {
        self.call_decode(call, &mut PhantomData::<T>)
    }

    /// [`call_json`](Self::call_json) with a decoder that keeps state across the
    /// answer (e.g. turns each element of an array into something smaller as it is
    /// read).
    pub(crate) fn call_decode<D: Decode>(
        &self,
        call: &Call<'_>,
        decoder: &mut D,
    ) -> Result<(Reply, D::Value)> {
        match self.call_json_once(call, decoder) {
            Err(Error::Http(h)) if self.renewable_error(&h) && self.renew()? => {
                self.call_json_once(call, decoder)
            }
            other => other,
        }
    }

    fn call_json_once<D: Decode>(
        &self,
        call: &Call<'_>,
        decoder: &mut D,
    ) -> Result<(Reply, D::Value)> {
        self.exchange(call, None, |site, mut response, last| {
            let mut reply = self.head(&site, &mut response);
            if reply.is_success() && reply.json_type().is_ok() {
                return (self.decode(&site, response, reply, decoder)).map(Outcome::Answer);
            }
            // Read whole (under the limit) for the error's excerpt.
            reply.body = self.read_body(&site, &mut response)?;
            if reply.is_success() {
                return Err(reply.json_type().expect_err("checked above"));
            }
            Err(match !last && self.unavailable(&reply) {
                true => return Ok(Outcome::MoveOn(reply.status_error())),
                false => reply.status_error(),
            })
        })
    }

    fn decode<D: Decode>(
        &self,
        site: &Site<'_>,
        mut response: Response<Body>,
        reply: Reply,
        decoder: &mut D,
    ) -> Result<(Reply, D::Value)> {
        let body = response
            .body_mut()
            .with_config()
            .limit(self.settings.body_limit)
            .reader();
        let mut start = Start::new(body, excerpt_window(site.secrets, site.token) + 1);
        let buffered = BufReader::with_capacity(BUFFER, &mut start);
        let mut json = serde_json::Deserializer::from_reader(buffered);
        // `end` reads to the end of the body: only whitespace may follow, and the
        // connection goes back to the pool.
        let decoded = decoder
            .decode(&mut json)
            .and_then(|value| json.end().map(|()| value));
        drop(json);
        log::trace!(target: "waypost::http", "{} {} {} -> {}, {} bytes decoded as read",
            site.backend, site.method, site.path, reply.status, start.read);
        match decoded {
            Ok(value) => Ok((reply, value)),
            Err(err) if err.is_io() => {
                let err = ureq::Error::from(io::Error::from(err));
                Err(self.body_error(site, err, reply.status))
            }
            Err(err) => Err(reply.decode_error(&start.bytes, Box::new(err))),
        }
    }
}

/// How [`Http::call_decode`] turns a JSON body into a value, reading it from the
/// stream: [`PhantomData<T>`] decodes a `T`; a stateful decoder may consume the answer
/// piece by piece.
pub(crate) trait Decode {
    type Value;
    fn decode<R: io::Read>(
        &mut self,
        json: &mut serde_json::Deserializer<serde_json::de::IoRead<R>>,
    ) -> serde_json::Result<Self::Value>;
}

impl<T: DeserializeOwned> Decode for PhantomData<T> {
    type Value = T;
    fn decode<R: io::Read>(
        &mut self,
        json: &mut serde_json::Deserializer<serde_json::de::IoRead<R>>,
    ) -> serde_json::Result<T> {
        T::deserialize(json)
    }
}

/// A reader that keeps the first bytes it passes on (what an error's excerpt reads),
/// and counts them all.
struct Start<R> {
    inner: R,
    keep: usize,
    bytes: Vec<u8>,
    read: u64,
}

impl<R> Start<R> {
    fn new(inner: R, keep: usize) -> Start<R> {
        Start {
            inner,
            keep,
            bytes: Vec::new(),
            read: 0,
        }
    }
}

impl<R: Read> Read for Start<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let keep = self.keep.saturating_sub(self.bytes.len()).min(n);
        self.bytes.extend_from_slice(&buf[..keep]);
        self.read += n as u64;
        Ok(n)
    }
}
