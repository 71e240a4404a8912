//! The Lethe service's protobuf codec: prost's, except for requests that do
//! not decode.
//!
//! prost rejects a string field that is not valid UTF-8 (and any malformed
//! message) while decoding, before a handler runs, and tonic's codec answers
//! that with INTERNAL, as the gRPC status-code guide lists for parse errors.
//! For Lethe a request that does not decode is the client's mistake, and
//! INTERNAL would tell the client (and the alerting) that the server failed;
//! so this decoder answers INVALID_ARGUMENT with the field prost names (see
//! `status::undecodable`). A codec, rather than a layer that rewrites
//! statuses on the way out, sees the typed decode error and nothing else:
//! no INTERNAL of the server's own can be mistaken for one. `build.rs`
//! generates the Lethe server and client with it (a client that cannot
//! decode a response gets INVALID_ARGUMENT too). Health and reflection keep
//! tonic's codec.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// prost's encoding; decode errors as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct LetheCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LetheCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for LetheCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = LetheDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        LetheDecoder(PhantomData)
    }
}

/// Decodes a `U`; a message that does not decode is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct LetheDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for LetheDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| super::status::undecodable(&e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
