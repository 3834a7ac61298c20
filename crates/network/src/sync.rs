//! The sync request/response protocol `/healthchain/sync/1`: a peer's chain status, ranges
//! of headers, bodies by block hash, and chunks of content-addressed blobs. Frames are a 4-byte big-endian length and
//! an RLP list `[kind, …]`; both are bounded before anything is allocated.

use std::io;

use alloy_primitives::B256;
use alloy_rlp::{Decodable, Encodable, Header as RlpHeader};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use healthchain_primitives::{BlockBody, Header};
use libp2p::StreamProtocol;

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/healthchain/sync/1");

/// Most headers one request may ask for.
pub const MAX_HEADERS: u64 = 512;
/// Most bodies one request may ask for.
pub const MAX_BODIES: usize = 128;
/// Largest blob chunk one request may ask for.
pub const MAX_BLOB_CHUNK: u32 = 1024 * 1024;
/// Longest blob content id, in bytes of its text form.
pub const MAX_CID_BYTES: usize = 128;
/// Most bytes a [`SyncResponse::BlobChunk`] frame adds to its data, so a requester can size
/// chunks to fit its `max_message_bytes` (a full chunk fits the default 10 MiB).
pub const BLOB_CHUNK_OVERHEAD: usize = 32;
/// Largest request frame (every request is far smaller; a blob request is under 200 bytes).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Where a peer's chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStatus {
    /// Its genesis hash: peers on another chain are of no use.
    pub genesis: B256,
    /// Its head's number.
    pub head_number: u64,
    /// Its head's hash.
    pub head_hash: B256,
}

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRequest {
    /// The peer's [`ChainStatus`].
    Status,
    /// Canonical headers `start..start + count` (fewer if the chain is shorter).
    Headers {
        /// First block number.
        start: u64,
        /// How many.
        count: u64,
    },
    /// Bodies of these blocks, in order (missing ones are left out at the end).
    Bodies(Vec<B256>),
    /// Bytes `offset..offset+length` of the blob with content id `cid` (text form).
    Blob {
        /// The blob's content id, at most [`MAX_CID_BYTES`].
        cid: String,
        /// First byte.
        offset: u64,
        /// How many bytes, `1..=`[`MAX_BLOB_CHUNK`].
        length: u32,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResponse {
    /// For [`SyncRequest::Status`].
    Status(ChainStatus),
    /// For [`SyncRequest::Headers`].
    Headers(Vec<Header>),
    /// For [`SyncRequest::Bodies`].
    Bodies(Vec<BlockBody>),
    /// For [`SyncRequest::Blob`]: the blob's full size and the asked bytes (fewer at its
    /// end). A node that lacks the blob answers [`SyncResponse::Refused`].
    BlobChunk {
        /// The blob's full size in bytes.
        total: u64,
        /// The asked bytes.
        data: Vec<u8>,
    },
    /// The request was refused (too large, or the node cannot answer).
    Refused(String),
}

const STATUS: u8 = 0;
const HEADERS: u8 = 1;
const BODIES: u8 = 2;
const REFUSED: u8 = 3;
const BLOB: u8 = 4;

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

fn wrap(items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 5);
    RlpHeader {
        list: true,
        payload_length: items.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(items);
    out
}

fn open_list<'a>(buf: &mut &'a [u8]) -> io::Result<&'a [u8]> {
    let header = RlpHeader::decode(buf).map_err(|e| invalid(e.to_string()))?;
    if !header.list || header.payload_length > buf.len() {
        return Err(invalid("expected an RLP list"));
    }
    let (payload, rest) = buf.split_at(header.payload_length);
    *buf = rest;
    Ok(payload)
}

fn finish(rest: &[u8], payload: &[u8]) -> io::Result<()> {
    if !rest.is_empty() || !payload.is_empty() {
        return Err(invalid("trailing bytes"));
    }
    Ok(())
}

fn rlp<T: Decodable>(buf: &mut &[u8]) -> io::Result<T> {
    T::decode(buf).map_err(|e| invalid(e.to_string()))
}

/// An RLP string, borrowed from the frame (nothing is copied before its length is checked).
fn rlp_bytes<'a>(buf: &mut &'a [u8]) -> io::Result<&'a [u8]> {
    RlpHeader::decode_bytes(buf, false).map_err(|e| invalid(e.to_string()))
}

impl SyncRequest {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut items = Vec::new();
        match self {
            Self::Status => STATUS.encode(&mut items),
            Self::Headers { start, count } => {
                HEADERS.encode(&mut items);
                start.encode(&mut items);
                count.encode(&mut items);
            }
            Self::Bodies(hashes) => {
                BODIES.encode(&mut items);
                hashes.encode(&mut items);
            }
            Self::Blob {
                cid,
                offset,
                length,
            } => {
                BLOB.encode(&mut items);
                cid.as_bytes().encode(&mut items);
                offset.encode(&mut items);
                length.encode(&mut items);
            }
        }
        wrap(&items)
    }

    /// Reads a frame payload, refusing requests over the limits.
    pub fn decode(bytes: &[u8]) -> io::Result<Self> {
        let mut buf = bytes;
        let mut payload = open_list(&mut buf)?;
        let request = match rlp::<u8>(&mut payload)? {
            STATUS => Self::Status,
            HEADERS => {
                let start = rlp(&mut payload)?;
                let count: u64 = rlp(&mut payload)?;
                if count == 0 || count > MAX_HEADERS {
                    return Err(invalid(format!(
                        "header count {count} not in 1..={MAX_HEADERS}"
                    )));
                }
                Self::Headers { start, count }
            }
            BODIES => {
                let hashes: Vec<B256> = rlp(&mut payload)?;
                if hashes.is_empty() || hashes.len() > MAX_BODIES {
                    return Err(invalid(format!(
                        "{} bodies asked, 1..={MAX_BODIES} allowed",
                        hashes.len()
                    )));
                }
                Self::Bodies(hashes)
            }
            BLOB => {
                let cid = rlp_bytes(&mut payload)?;
                if cid.len() > MAX_CID_BYTES {
                    return Err(invalid(format!(
                        "cid of {} bytes exceeds {MAX_CID_BYTES}",
                        cid.len()
                    )));
                }
                let cid = std::str::from_utf8(cid)
                    .map_err(|_| invalid("cid is not UTF-8"))?
                    .to_owned();
                let offset = rlp(&mut payload)?;
                let length: u32 = rlp(&mut payload)?;
                if length == 0 || length > MAX_BLOB_CHUNK {
                    return Err(invalid(format!(
                        "blob chunk length {length} not in 1..={MAX_BLOB_CHUNK}"
                    )));
                }
                Self::Blob {
                    cid,
                    offset,
                    length,
                }
            }
            other => return Err(invalid(format!("unknown request kind {other}"))),
        };
        finish(buf, payload)?;
        Ok(request)
    }
}

impl SyncResponse {
    /// The frame payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut items = Vec::new();
        match self {
            Self::Status(status) => {
                STATUS.encode(&mut items);
                status.genesis.encode(&mut items);
                status.head_number.encode(&mut items);
                status.head_hash.encode(&mut items);
            }
            Self::Headers(headers) => {
                HEADERS.encode(&mut items);
                headers.encode(&mut items);
            }
            Self::Bodies(bodies) => {
                BODIES.encode(&mut items);
                bodies.encode(&mut items);
            }
            Self::Refused(reason) => {
                REFUSED.encode(&mut items);
                reason.as_bytes().encode(&mut items);
            }
            Self::BlobChunk { total, data } => {
                BLOB.encode(&mut items);
                total.encode(&mut items);
                data.as_slice().encode(&mut items);
            }
        }
        wrap(&items)
    }

    /// Reads a frame payload, refusing a blob chunk longer than a request may ask for or
    /// than the blob it claims to be from.
    pub fn decode(bytes: &[u8]) -> io::Result<Self> {
        let mut buf = bytes;
        let mut payload = open_list(&mut buf)?;
        let response = match rlp::<u8>(&mut payload)? {
            STATUS => Self::Status(ChainStatus {
                genesis: rlp(&mut payload)?,
                head_number: rlp(&mut payload)?,
                head_hash: rlp(&mut payload)?,
            }),
            HEADERS => Self::Headers(rlp(&mut payload)?),
            BODIES => Self::Bodies(rlp(&mut payload)?),
            REFUSED => {
                let reason: alloy_primitives::Bytes = rlp(&mut payload)?;
                Self::Refused(String::from_utf8_lossy(&reason).into_owned())
            }
            BLOB => {
                let total: u64 = rlp(&mut payload)?;
                let data = rlp_bytes(&mut payload)?;
                if data.len() > MAX_BLOB_CHUNK as usize || data.len() as u64 > total {
                    return Err(invalid(format!(
                        "blob chunk of {} bytes from a blob of {total}",
                        data.len()
                    )));
                }
                Self::BlobChunk {
                    total,
                    data: data.to_vec(),
                }
            }
            other => return Err(invalid(format!("unknown response kind {other}"))),
        };
        finish(buf, payload)?;
        Ok(response)
    }
}

/// The libp2p codec: length-prefixed frames, bounded.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    /// Largest response accepted.
    pub max_response_bytes: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(invalid(format!("frame of {len} bytes exceeds {max}")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| invalid("frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(payload).await?;
    io.close().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncRequest> {
        SyncRequest::decode(&read_frame(io, MAX_REQUEST_BYTES).await?)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncResponse> {
        SyncResponse::decode(&read_frame(io, self.max_response_bytes).await?)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()> {
        write_frame(io, &request.encode()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()> {
        write_frame(io, &response.encode()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        for request in [
            SyncRequest::Status,
            SyncRequest::Headers { start: 7, count: 3 },
            SyncRequest::Bodies(vec![B256::repeat_byte(1), B256::repeat_byte(2)]),
            SyncRequest::Blob {
                cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku".into(),
                offset: 3 * u64::from(MAX_BLOB_CHUNK),
                length: MAX_BLOB_CHUNK,
            },
            SyncRequest::Blob {
                cid: "é".repeat(MAX_CID_BYTES / 2),
                offset: 0,
                length: 1,
            },
        ] {
            assert_eq!(SyncRequest::decode(&request.encode()).unwrap(), request);
        }
        let header = Header {
            number: 9,
            ..Default::default()
        };
        for response in [
            SyncResponse::Status(ChainStatus {
                genesis: B256::repeat_byte(3),
                head_number: 12,
                head_hash: B256::repeat_byte(4),
            }),
            SyncResponse::Headers(vec![header.clone(), header]),
            SyncResponse::Bodies(vec![BlockBody::default()]),
            SyncResponse::Refused("busy".into()),
            SyncResponse::BlobChunk {
                total: 5,
                data: vec![1, 2, 3],
            },
            SyncResponse::BlobChunk {
                total: 0,
                data: Vec::new(),
            },
        ] {
            assert_eq!(SyncResponse::decode(&response.encode()).unwrap(), response);
        }
    }

    #[test]
    fn oversized_and_malformed_requests_are_refused() {
        let too_many = SyncRequest::Headers {
            start: 0,
            count: MAX_HEADERS + 1,
        };
        assert!(SyncRequest::decode(&too_many.encode()).is_err());
        let bodies = SyncRequest::Bodies(vec![B256::ZERO; MAX_BODIES + 1]);
        assert!(SyncRequest::decode(&bodies.encode()).is_err());
        assert!(SyncRequest::decode(&SyncRequest::Bodies(vec![]).encode()).is_err());
        let good = SyncRequest::Headers { start: 1, count: 1 }.encode();
        for len in 0..good.len() {
            assert!(SyncRequest::decode(&good[..len]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(SyncRequest::decode(&trailing).is_err());
        assert!(SyncResponse::decode(&[0xc1, 0x09]).is_err());
    }

    fn blob(cid: &str, length: u32) -> SyncRequest {
        SyncRequest::Blob {
            cid: cid.into(),
            offset: 0,
            length,
        }
    }

    #[test]
    fn blob_requests_over_the_limits_are_refused() {
        assert!(SyncRequest::decode(&blob("cid", 0).encode()).is_err());
        assert!(SyncRequest::decode(&blob("cid", MAX_BLOB_CHUNK + 1).encode()).is_err());
        let longest = "c".repeat(MAX_CID_BYTES);
        assert!(SyncRequest::decode(&blob(&longest, 1).encode()).is_ok());
        let long = "c".repeat(MAX_CID_BYTES + 1);
        assert!(SyncRequest::decode(&blob(&long, 1).encode()).is_err());
        // A cid that is not UTF-8: the same frame with its text bytes replaced.
        let mut not_utf8 = blob("ab", 1).encode();
        let at = not_utf8.windows(2).position(|w| w == b"ab").unwrap();
        not_utf8[at] = 0xff;
        assert!(SyncRequest::decode(&not_utf8).is_err());
        let good = blob("cid", 1).encode();
        for len in 0..good.len() {
            assert!(SyncRequest::decode(&good[..len]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(SyncRequest::decode(&trailing).is_err());
        // Trailing items inside the list, too.
        let mut items = Vec::new();
        BLOB.encode(&mut items);
        b"cid".as_slice().encode(&mut items);
        0u64.encode(&mut items);
        1u32.encode(&mut items);
        0u8.encode(&mut items);
        assert!(SyncRequest::decode(&wrap(&items)).is_err());
    }

    #[test]
    fn blob_chunks_longer_than_asked_or_than_their_blob_are_refused() {
        let over = SyncResponse::BlobChunk {
            total: u64::MAX,
            data: vec![0; MAX_BLOB_CHUNK as usize + 1],
        };
        assert!(SyncResponse::decode(&over.encode()).is_err());
        let past_total = SyncResponse::BlobChunk {
            total: 2,
            data: vec![0; 3],
        };
        assert!(SyncResponse::decode(&past_total.encode()).is_err());
        let mut trailing = SyncResponse::BlobChunk {
            total: 1,
            data: vec![7],
        }
        .encode();
        trailing.push(0);
        assert!(SyncResponse::decode(&trailing).is_err());
    }

    #[test]
    fn the_largest_blob_frames_fit_the_codec_bounds() {
        let request = SyncRequest::Blob {
            cid: "c".repeat(MAX_CID_BYTES),
            offset: u64::MAX,
            length: MAX_BLOB_CHUNK,
        };
        assert!(request.encode().len() < 200);
        assert!(request.encode().len() <= MAX_REQUEST_BYTES);
        let chunk = SyncResponse::BlobChunk {
            total: u64::MAX,
            data: vec![0; MAX_BLOB_CHUNK as usize],
        };
        let len = chunk.encode().len();
        assert!(
            len <= MAX_BLOB_CHUNK as usize + BLOB_CHUNK_OVERHEAD,
            "{len}"
        );
        assert!(len <= crate::NetworkConfig::default().max_message_bytes);
    }
}
