//! What a node gossips on the blob topic when it stores something new, so its peers can
//! replicate it: a blob's CID and size (peers then fetch it by CID), or a key wrap (small
//! enough to travel whole).

use alloy_primitives::{Address, Bytes};
use serde::{Deserialize, Serialize};

use crate::{Cid, WrappedKey};

/// The largest announcement accepted, bytes.
pub const MAX_ANNOUNCEMENT: usize = 1024;

/// A blob-topic message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Announcement {
    /// A blob the sender now holds.
    Stored {
        /// Its CID.
        cid: Cid,
        /// Its size in bytes.
        size: u64,
    },
    /// A key wrap the sender stored.
    Key {
        /// The blob.
        cid: Cid,
        /// Whose wrap.
        reader: Address,
        /// The wrap.
        wrap: Bytes,
    },
}

/// Why an announcement is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad blob announcement: {0}")]
pub struct AnnouncementError(String);

impl Announcement {
    /// A key announcement.
    pub fn key(cid: Cid, reader: Address, wrap: &WrappedKey) -> Self {
        Self::Key {
            cid,
            reader,
            wrap: Bytes::copy_from_slice(&wrap.0),
        }
    }

    /// The gossip payload.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("announcements serialize")
    }

    /// Reads a payload, refusing oversized or malformed ones (and key wraps of the wrong
    /// length).
    pub fn decode(bytes: &[u8]) -> Result<Self, AnnouncementError> {
        if bytes.len() > MAX_ANNOUNCEMENT {
            return Err(AnnouncementError(format!("{} bytes", bytes.len())));
        }
        let announcement: Self =
            serde_json::from_slice(bytes).map_err(|e| AnnouncementError(e.to_string()))?;
        if let Self::Key { wrap, .. } = &announcement {
            WrappedKey::from_slice(wrap).map_err(|e| AnnouncementError(e.to_string()))?;
        }
        Ok(announcement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_payloads() {
        let stored = Announcement::Stored {
            cid: Cid::of(b"x"),
            size: 9,
        };
        let key = Announcement::key(Cid::of(b"x"), Address::repeat_byte(3), &WrappedKey([5; 81]));
        for a in [&stored, &key] {
            assert_eq!(&Announcement::decode(&a.encode()).unwrap(), a);
        }
        let short = Announcement::Key {
            cid: Cid::of(b"x"),
            reader: Address::ZERO,
            wrap: Bytes::from_static(&[1, 2]),
        };
        assert!(Announcement::decode(&short.encode()).is_err());
        assert!(Announcement::decode(b"{}").is_err());
        assert!(Announcement::decode(br#"{"stored":{"cid":"Qm","size":1}}"#).is_err());
        assert!(Announcement::decode(&vec![b' '; 2000]).is_err());
    }
}
