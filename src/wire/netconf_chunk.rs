//! Network config chunks (section 5.10, 5.11, 7.5) and their bounded assembler (H2.8).
//!
//! A controller sends a netconf dictionary as one or more signed chunks, in
//! `OK(NETWORK_CONFIG_REQUEST)` (payload from offset 37) or in `NETWORK_CONFIG` (from 28):
//!
//! ```text
//! u64 nwid | u16 len | len bytes of dictionary |                       ┐ signed portion
//!   u8 flags (0x01 fast propagate) | u64 update id | u32 total | u32 offset ┘
//!   u8 signature type (1) | u16 signature length (96) | 96 signature
//! ```
//!
//! The legacy form ends right after the chunk bytes and is unsigned. [`ConfigChunk`] is the
//! zero-copy codec (plus signing for the controller); [`ConfigAssembler`] collects verified
//! chunks by byte range and yields the whole dictionary. It never reads a clock: callers pass
//! `now` in milliseconds.

use super::cursor::{Reader, Writer};
use super::dictionary::NETCONF_CAPACITY;
use super::{Address, Error, NetworkId, Result};
use crate::crypto::Identity;
use crate::crypto::c25519::SIGNATURE_LEN;

/// Most dictionary bytes in one chunk: `10024 - (28 + 256)`, what the reference controller
/// uses so a chunk always fits one packet with room for headers.
pub const MAX_CHUNK_LEN: usize = 9740;
/// Signature type 1: the 96-byte C25519 scheme (section 1.6).
pub const SIGNATURE_TYPE_C25519: u8 = 1;
/// Chunk flag: members re-send the chunk to the other members they know.
pub const FLAG_FAST_PROPAGATE: u8 = 0x01;
/// In-progress updates kept at once, as the reference (`ZT_NETWORK_MAX_INCOMING_UPDATES`).
pub const MAX_IN_PROGRESS_UPDATES: usize = 3;
/// Chunks accepted per update (`ZT_NETWORK_MAX_UPDATE_CHUNKS`); a full-size config needs 50.
pub const MAX_CHUNKS_PER_UPDATE: usize = NETCONF_CAPACITY / 1024 + 1;
/// Default time after the last accepted chunk at which an incomplete update is dropped.
pub const DEFAULT_UPDATE_TIMEOUT_MS: u64 = 30_000;

/// Bytes from the chunk data to the signature block: flags, update id, total, offset.
const SIGNED_TRAILER_LEN: usize = 1 + 8 + 4 + 4;

// Field names of the range checks, so the assembler can count them separately.
const FIELD_TOTAL: &str = "config chunk total length (must be below 484,520)";
const FIELD_RANGE: &str = "config chunk range (offset + length beyond total)";

/// What follows the bytes of a signed chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSignature {
    pub flags: u8,
    /// Random id shared by all chunks of one config (non-zero from the reference).
    pub update_id: u64,
    /// Length of the whole dictionary.
    pub total_len: u32,
    /// Where this chunk's bytes go in the dictionary.
    pub offset: u32,
    pub signature: [u8; SIGNATURE_LEN],
}

/// One config chunk. Invariants after [`ConfigChunk::read`]: `data.len() <=`
/// [`MAX_CHUNK_LEN`], and for signed chunks `offset + len <= total < 484,520`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigChunk<'a> {
    pub network_id: NetworkId,
    pub data: &'a [u8],
    /// `None` for the legacy unsigned form (a whole config from an old controller).
    pub signed: Option<ChunkSignature>,
}

impl<'a> ConfigChunk<'a> {
    /// Reads one chunk, consuming exactly its bytes. A chunk whose input ends right after
    /// its data is the legacy unsigned form.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let network_id = NetworkId(r.u64("config chunk network id")?);
        let len = usize::from(r.u16("config chunk length")?);
        if len > MAX_CHUNK_LEN {
            return Err(Error::TooLarge("config chunk (more than 9740 bytes)"));
        }
        let data = r.bytes(len, "config chunk data")?;
        if r.is_empty() {
            return Ok(ConfigChunk {
                network_id,
                data,
                signed: None,
            });
        }
        let flags = r.u8("config chunk flags")?;
        let update_id = r.u64("config chunk update id")?;
        let total_len = r.u32("config chunk total length")?;
        let offset = r.u32("config chunk offset")?;
        check_range(len, total_len, offset)?;
        if r.u8("config chunk signature type")? != SIGNATURE_TYPE_C25519 {
            return Err(Error::Unsupported(
                "config chunk signature type other than 1",
            ));
        }
        if usize::from(r.u16("config chunk signature length")?) != SIGNATURE_LEN {
            return Err(Error::Malformed(
                "config chunk signature length (must be 96)",
            ));
        }
        let signature = r.array("config chunk signature")?;
        Ok(ConfigChunk {
            network_id,
            data,
            signed: Some(ChunkSignature {
                flags,
                update_id,
                total_len,
                offset,
                signature,
            }),
        })
    }

    /// Parses the chunk at the start of a payload; trailing bytes are ignored, as the
    /// reference does.
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        Self::read(&mut Reader::new(payload))
    }

    /// Appends the chunk (legacy form without a signature block).
    pub fn emit(&self, out: &mut Vec<u8>) {
        self.put_signed_portion(out);
        if let Some(s) = &self.signed {
            out.put_u8(SIGNATURE_TYPE_C25519);
            out.put_u16(SIGNATURE_LEN as u16);
            out.put_bytes(&s.signature);
        }
    }

    /// Size of what [`ConfigChunk::emit`] writes.
    pub fn emitted_len(&self) -> usize {
        let signature_block = if self.signed.is_some() {
            3 + SIGNATURE_LEN
        } else {
            0
        };
        self.signed_portion_len() + signature_block
    }

    /// The bytes the controller signs: `nwid ‖ len ‖ data ‖ flags ‖ update id ‖ total ‖
    /// offset` (for a legacy chunk just `nwid ‖ len ‖ data`).
    pub fn signed_portion(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.signed_portion_len());
        self.put_signed_portion(&mut out);
        out
    }

    fn signed_portion_len(&self) -> usize {
        let trailer = if self.signed.is_some() {
            SIGNED_TRAILER_LEN
        } else {
            0
        };
        10 + self.data.len() + trailer
    }

    fn put_signed_portion(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.0);
        // Chunks built here or read are at most MAX_CHUNK_LEN; a hand-built longer one is cut
        // so the output stays parseable.
        let data = self.data.get(..MAX_CHUNK_LEN).unwrap_or(self.data);
        out.put_u16(data.len() as u16);
        out.put_bytes(data);
        if let Some(s) = &self.signed {
            out.put_u8(s.flags);
            out.put_u64(s.update_id);
            out.put_u32(s.total_len);
            out.put_u32(s.offset);
        }
    }

    /// Builds and signs a chunk as a controller does. Fails if `data` is longer than
    /// [`MAX_CHUNK_LEN`], the range is invalid, or `controller` has no secret key.
    pub fn sign(
        network_id: NetworkId,
        data: &'a [u8],
        flags: u8,
        update_id: u64,
        total_len: u32,
        offset: u32,
        controller: &Identity,
    ) -> Result<Self> {
        if data.len() > MAX_CHUNK_LEN {
            return Err(Error::TooLarge("config chunk (more than 9740 bytes)"));
        }
        check_range(data.len(), total_len, offset)?;
        let mut chunk = ConfigChunk {
            network_id,
            data,
            signed: Some(ChunkSignature {
                flags,
                update_id,
                total_len,
                offset,
                signature: [0; SIGNATURE_LEN],
            }),
        };
        let signature = controller
            .sign(&chunk.signed_portion())
            .ok_or(Error::Unsupported(
                "signing a config chunk without the secret key",
            ))?;
        if let Some(s) = &mut chunk.signed {
            s.signature = signature;
        }
        Ok(chunk)
    }

    /// True if this is a signed chunk whose signature verifies with `controller`.
    pub fn verify(&self, controller: &Identity) -> bool {
        match &self.signed {
            Some(s) => controller.verify(&self.signed_portion(), &s.signature),
            None => false,
        }
    }

    pub fn is_signed(&self) -> bool {
        self.signed.is_some()
    }

    /// True if the controller asked members to re-send this chunk to the others.
    pub fn fast_propagate(&self) -> bool {
        self.signed
            .is_some_and(|s| s.flags & FLAG_FAST_PROPAGATE != 0)
    }

    /// The reference's per-chunk dedup id: the first 16 signature bytes folded into 8.
    pub fn signature_id(&self) -> u64 {
        let mut id = [0u8; 8];
        if let Some(s) = &self.signed {
            for (i, b) in s.signature.iter().take(16).enumerate() {
                if let Some(slot) = id.get_mut(i % 8) {
                    *slot ^= b;
                }
            }
        }
        u64::from_be_bytes(id)
    }
}

/// `offset + len <= total < NETCONF_CAPACITY`.
fn check_range(len: usize, total_len: u32, offset: u32) -> Result<()> {
    if total_len as usize >= NETCONF_CAPACITY {
        return Err(Error::TooLarge(FIELD_TOTAL));
    }
    if offset as usize + len > total_len as usize {
        return Err(Error::Malformed(FIELD_RANGE));
    }
    Ok(())
}

/// Splits a whole dictionary into signed chunks of at most [`MAX_CHUNK_LEN`] bytes that share
/// `update_id` (which must be non-zero), as a controller sends them.
pub fn split_and_sign<'a>(
    network_id: NetworkId,
    dictionary: &'a [u8],
    update_id: u64,
    flags: u8,
    controller: &Identity,
) -> Result<Vec<ConfigChunk<'a>>> {
    if update_id == 0 {
        return Err(Error::Malformed("config update id (must be non-zero)"));
    }
    if dictionary.is_empty() {
        return Err(Error::Malformed("config dictionary (empty)"));
    }
    let total = u32::try_from(dictionary.len()).map_err(|_| Error::TooLarge(FIELD_TOTAL))?;
    let mut chunks = Vec::with_capacity(dictionary.len().div_ceil(MAX_CHUNK_LEN));
    for (i, data) in dictionary.chunks(MAX_CHUNK_LEN).enumerate() {
        // i * MAX_CHUNK_LEN < total, which fits u32.
        let offset = (i * MAX_CHUNK_LEN) as u32;
        chunks.push(ConfigChunk::sign(
            network_id, data, flags, update_id, total, offset, controller,
        )?);
    }
    Ok(chunks)
}

/// Options of a [`ConfigAssembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssemblerOptions {
    /// Accept the legacy unsigned form (from the controller's own address only). Off by
    /// default: H2.8.
    pub allow_unsigned_legacy: bool,
    /// An incomplete update with no accepted chunk for this long is dropped.
    pub update_timeout_ms: u64,
}

impl Default for AssemblerOptions {
    fn default() -> Self {
        AssemblerOptions {
            allow_unsigned_legacy: false,
            update_timeout_ms: DEFAULT_UPDATE_TIMEOUT_MS,
        }
    }
}

/// Why a chunk was refused. Each has a counter in [`AssemblerCounters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The payload is not a chunk (framing, lengths, signature block).
    Malformed(Error),
    /// The chunk names another network.
    WrongNetwork,
    /// The identity given as controller is not the network's controller (`nwid >> 24`).
    WrongController,
    /// A signed chunk without bytes.
    Empty,
    /// Total length at or above the netconf capacity.
    TotalTooLarge,
    /// `offset + len > total`.
    OutOfRange,
    /// Another chunk of this update announced a different total.
    TotalMismatch,
    /// The byte range overlaps bytes already received, or repeats a range with other bytes.
    Overlap,
    /// This exact chunk was already received (or its update already completed).
    Duplicate,
    /// The update already has [`MAX_CHUNKS_PER_UPDATE`] chunks.
    TooManyChunks,
    /// The signature does not verify with the controller's identity.
    BadSignature,
    /// An unsigned legacy chunk without the option, or not from the controller itself.
    Unsigned,
}

/// Counts of every outcome; rejections are never silent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssemblerCounters {
    pub accepted_chunks: u64,
    pub completed_updates: u64,
    pub malformed: u64,
    pub wrong_network: u64,
    pub wrong_controller: u64,
    pub empty: u64,
    pub total_too_large: u64,
    pub out_of_range: u64,
    pub total_mismatch: u64,
    pub overlap: u64,
    pub duplicate: u64,
    pub too_many_chunks: u64,
    pub bad_signature: u64,
    pub unsigned_rejected: u64,
    /// In-progress updates dropped to make room for a newer one.
    pub evicted_updates: u64,
    /// In-progress updates dropped by [`AssemblerOptions::update_timeout_ms`].
    pub expired_updates: u64,
}

/// What an accepted chunk achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; `received` of `total` bytes are present.
    Partial {
        update_id: u64,
        received: u32,
        total: u32,
    },
    /// Every byte is present: the whole dictionary (`update_id` 0 for a legacy config).
    Complete { update_id: u64, dictionary: Vec<u8> },
}

#[derive(Clone, Copy, Debug)]
struct ReceivedRange {
    offset: u32,
    len: u32,
    signature_id: u64,
}

#[derive(Debug)]
struct Update {
    update_id: u64,
    total: u32,
    received: u32,
    last_progress_ms: u64,
    /// `total` bytes while in progress; emptied once delivered.
    data: Vec<u8>,
    /// Sorted by offset, never overlapping, at most [`MAX_CHUNKS_PER_UPDATE`].
    ranges: Vec<ReceivedRange>,
    /// Delivered; kept only so re-sent chunks of it count as duplicates.
    complete: bool,
}

impl Update {
    /// Where a new range goes, or why it cannot.
    fn insertion_point(
        &self,
        offset: u32,
        len: u32,
        signature_id: u64,
    ) -> core::result::Result<usize, Rejection> {
        let at = self.ranges.partition_point(|r| r.offset < offset);
        if let Some(next) = self.ranges.get(at)
            && next.offset == offset
            && next.len == len
        {
            return Err(if next.signature_id == signature_id {
                Rejection::Duplicate
            } else {
                Rejection::Overlap
            });
        }
        let end = u64::from(offset) + u64::from(len);
        let overlaps_next = self
            .ranges
            .get(at)
            .is_some_and(|next| u64::from(next.offset) < end);
        let overlaps_prev = at
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .is_some_and(|prev| u64::from(prev.offset) + u64::from(prev.len) > u64::from(offset));
        if overlaps_next || overlaps_prev {
            return Err(Rejection::Overlap);
        }
        Ok(at)
    }
}

/// Reassembles one network's config from verified chunks, by byte range.
///
/// Bounds: [`MAX_IN_PROGRESS_UPDATES`] updates (the least recently progressing one is evicted
/// for a new one), [`MAX_CHUNKS_PER_UPDATE`] chunks each, and a buffer of `total` (< 484,520)
/// bytes per update, allocated only after a chunk's signature verified. Cheap checks run
/// before the signature check, and nothing changes state until it passed.
#[derive(Debug)]
pub struct ConfigAssembler {
    network_id: NetworkId,
    options: AssemblerOptions,
    updates: Vec<Update>,
    counters: AssemblerCounters,
}

impl ConfigAssembler {
    pub fn new(network_id: NetworkId, options: AssemblerOptions) -> Self {
        ConfigAssembler {
            network_id,
            options,
            updates: Vec::with_capacity(MAX_IN_PROGRESS_UPDATES),
            counters: AssemblerCounters::default(),
        }
    }

    pub fn network_id(&self) -> NetworkId {
        self.network_id
    }

    pub fn counters(&self) -> &AssemblerCounters {
        &self.counters
    }

    /// Updates still waiting for bytes.
    pub fn in_progress(&self) -> usize {
        self.updates.iter().filter(|u| !u.complete).count()
    }

    /// Bytes held for incomplete updates.
    pub fn buffered_bytes(&self) -> usize {
        self.updates.iter().map(|u| u.data.len()).sum()
    }

    /// Parses a chunk payload and passes it to [`ConfigAssembler::accept`].
    pub fn accept_payload(
        &mut self,
        payload: &[u8],
        source: Address,
        controller: &Identity,
        now_ms: u64,
    ) -> core::result::Result<Accepted, Rejection> {
        match ConfigChunk::parse(payload) {
            Ok(chunk) => self.accept(&chunk, source, controller, now_ms),
            Err(e) => {
                let rejection = match e {
                    Error::TooLarge(FIELD_TOTAL) => Rejection::TotalTooLarge,
                    Error::Malformed(FIELD_RANGE) => Rejection::OutOfRange,
                    other => Rejection::Malformed(other),
                };
                Err(self.count(rejection))
            }
        }
    }

    /// Offers one chunk received from `source`; `controller` is the network controller's
    /// identity (known via WHOIS before the config was requested).
    pub fn accept(
        &mut self,
        chunk: &ConfigChunk<'_>,
        source: Address,
        controller: &Identity,
        now_ms: u64,
    ) -> core::result::Result<Accepted, Rejection> {
        let outcome = self.try_accept(chunk, source, controller, now_ms);
        match &outcome {
            Ok(accepted) => {
                self.counters.accepted_chunks += 1;
                if matches!(accepted, Accepted::Complete { .. }) {
                    self.counters.completed_updates += 1;
                }
            }
            Err(rejection) => {
                self.count(*rejection);
            }
        }
        outcome
    }

    /// Drops incomplete updates that made no progress for the configured timeout, and
    /// delivered ones after the same time.
    pub fn expire(&mut self, now_ms: u64) {
        let timeout = self.options.update_timeout_ms;
        let before = self.in_progress();
        self.updates
            .retain(|u| now_ms.saturating_sub(u.last_progress_ms) < timeout);
        self.counters.expired_updates += (before - self.in_progress()) as u64;
    }

    fn try_accept(
        &mut self,
        chunk: &ConfigChunk<'_>,
        source: Address,
        controller: &Identity,
        now_ms: u64,
    ) -> core::result::Result<Accepted, Rejection> {
        if chunk.network_id != self.network_id {
            return Err(Rejection::WrongNetwork);
        }
        let controller_address = self.network_id.controller();
        if controller.address() != controller_address {
            return Err(Rejection::WrongController);
        }
        let Some(signed) = &chunk.signed else {
            if !self.options.allow_unsigned_legacy || source != controller_address {
                return Err(Rejection::Unsigned);
            }
            if chunk.data.is_empty() {
                return Err(Rejection::Empty);
            }
            return Ok(Accepted::Complete {
                update_id: 0,
                dictionary: chunk.data.to_vec(),
            });
        };
        self.expire(now_ms);

        // Cheap checks first; nothing below changes state before the signature verified.
        let len = u32::try_from(chunk.data.len()).map_err(|_| Rejection::TotalTooLarge)?;
        if len == 0 {
            return Err(Rejection::Empty);
        }
        if chunk.data.len() > MAX_CHUNK_LEN {
            return Err(Rejection::Malformed(Error::TooLarge(
                "config chunk (more than 9740 bytes)",
            )));
        }
        match check_range(chunk.data.len(), signed.total_len, signed.offset) {
            Err(Error::TooLarge(_)) => return Err(Rejection::TotalTooLarge),
            Err(_) => return Err(Rejection::OutOfRange),
            Ok(()) => {}
        }
        let signature_id = chunk.signature_id();
        let existing = self
            .updates
            .iter()
            .position(|u| u.update_id == signed.update_id);
        let insert_at = match existing.and_then(|i| self.updates.get(i)) {
            Some(update) => {
                if update.total != signed.total_len {
                    return Err(Rejection::TotalMismatch);
                }
                if update.complete {
                    return Err(Rejection::Duplicate);
                }
                let at = update.insertion_point(signed.offset, len, signature_id)?;
                if update.ranges.len() >= MAX_CHUNKS_PER_UPDATE {
                    return Err(Rejection::TooManyChunks);
                }
                at
            }
            None => 0,
        };
        if !chunk.verify(controller) {
            return Err(Rejection::BadSignature);
        }

        let index = match existing {
            Some(i) => i,
            None => self.start_update(signed.update_id, signed.total_len, now_ms),
        };
        let update = self
            .updates
            .get_mut(index)
            .ok_or(Rejection::Malformed(Error::Malformed("config update slot")))?;
        let start = signed.offset as usize;
        let target = update
            .data
            .get_mut(start..start + chunk.data.len())
            .ok_or(Rejection::OutOfRange)?;
        target.copy_from_slice(chunk.data);
        update.ranges.insert(
            insert_at,
            ReceivedRange {
                offset: signed.offset,
                len,
                signature_id,
            },
        );
        update.received += len;
        update.last_progress_ms = now_ms;
        if update.received < update.total {
            return Ok(Accepted::Partial {
                update_id: update.update_id,
                received: update.received,
                total: update.total,
            });
        }
        update.complete = true;
        update.ranges.shrink_to_fit();
        Ok(Accepted::Complete {
            update_id: update.update_id,
            dictionary: std::mem::take(&mut update.data),
        })
    }

    /// Makes room for and adds an update; returns its index.
    fn start_update(&mut self, update_id: u64, total: u32, now_ms: u64) -> usize {
        if self.updates.len() >= MAX_IN_PROGRESS_UPDATES {
            // Prefer forgetting a delivered update; otherwise the one idle the longest.
            let victim = self
                .updates
                .iter()
                .enumerate()
                .min_by_key(|(_, u)| (!u.complete, u.last_progress_ms))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                let evicted = self.updates.swap_remove(i);
                if !evicted.complete {
                    self.counters.evicted_updates += 1;
                }
            }
        }
        self.updates.push(Update {
            update_id,
            total,
            received: 0,
            last_progress_ms: now_ms,
            data: vec![0; total as usize],
            ranges: Vec::new(),
            complete: false,
        });
        self.updates.len() - 1
    }

    fn count(&mut self, rejection: Rejection) -> Rejection {
        let c = &mut self.counters;
        let counter = match rejection {
            Rejection::Malformed(_) => &mut c.malformed,
            Rejection::WrongNetwork => &mut c.wrong_network,
            Rejection::WrongController => &mut c.wrong_controller,
            Rejection::Empty => &mut c.empty,
            Rejection::TotalTooLarge => &mut c.total_too_large,
            Rejection::OutOfRange => &mut c.out_of_range,
            Rejection::TotalMismatch => &mut c.total_mismatch,
            Rejection::Overlap => &mut c.overlap,
            Rejection::Duplicate => &mut c.duplicate,
            Rejection::TooManyChunks => &mut c.too_many_chunks,
            Rejection::BadSignature => &mut c.bad_signature,
            Rejection::Unsigned => &mut c.unsigned_rejected,
        };
        *counter += 1;
        rejection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NWID: NetworkId = NetworkId(0x7c2dfee12c000001);
    // Throw-away controller A (id1) from the reference vectors; its address is nwid >> 24.
    const CONTROLLER: &str = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729:a2687c7d2d487480769f12bff7271929086794cd5a16cab28441f0c72d598c230e141283e4d97a390dff97343b1bb9b90d4e18bd082934dee1bdab9a157bc749";
    const OTHER: &str = "608938c440:0:54903ae4c5e9ba615472670814b8da4fec929a0371ffb46597bcb80ddb46f83ab86f516b474a3a2f1404741b63050f3f31d08dfacd499812ed250876287a46cb:0ef0860f9998c02a904cdbcdf633e093020504ed1d6317d0ed55d9aeb96aad4b295fb28bfb431b4ba06a2a5e585f5c26bf0d10d02db1f1ead2c0647a2bf8cc42";

    fn ids() -> (Identity, Identity) {
        (CONTROLLER.parse().unwrap(), OTHER.parse().unwrap())
    }

    fn dictionary(len: usize) -> Vec<u8> {
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    }

    fn emit(chunk: &ConfigChunk<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        chunk.emit(&mut out);
        out
    }

    fn assembler() -> ConfigAssembler {
        ConfigAssembler::new(NWID, AssemblerOptions::default())
    }

    #[test]
    fn sign_parse_verify() {
        let (a, b) = ids();
        let data = dictionary(100);
        let chunk = ConfigChunk::sign(NWID, &data[..40], 1, 9, 100, 60, &a).unwrap();
        assert!(chunk.verify(&a) && !chunk.verify(&b) && chunk.fast_propagate());
        let bytes = emit(&chunk);
        assert_eq!(bytes.len(), chunk.emitted_len());
        assert_eq!(bytes.len(), 10 + 40 + SIGNED_TRAILER_LEN + 3 + 96);
        assert_eq!(ConfigChunk::parse(&bytes), Ok(chunk));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(ConfigChunk::parse(&trailing), Ok(chunk));
        let mut r = Reader::new(&trailing);
        ConfigChunk::read(&mut r).unwrap();
        assert_eq!(r.remaining(), 1);
        // Every cut is an error except the one right after the data (the legacy form).
        for len in 0..bytes.len() {
            let parsed = ConfigChunk::parse(&bytes[..len]);
            assert_eq!(parsed.is_ok(), len == 50, "{len}");
        }
        let legacy = ConfigChunk::parse(&bytes[..50]).unwrap();
        assert!(!legacy.is_signed() && !legacy.verify(&a));
        assert_eq!(emit(&legacy), &bytes[..50]);
        let mut tampered = bytes.clone();
        tampered[20] ^= 1;
        assert!(!ConfigChunk::parse(&tampered).unwrap().verify(&a));
        let mut other_type = bytes.clone();
        other_type[50 + SIGNED_TRAILER_LEN] = 2;
        assert!(matches!(
            ConfigChunk::parse(&other_type),
            Err(Error::Unsupported(_))
        ));
        let mut short_sig = bytes.clone();
        short_sig[50 + SIGNED_TRAILER_LEN + 2] = 95;
        assert!(matches!(
            ConfigChunk::parse(&short_sig),
            Err(Error::Malformed(_))
        ));
        assert!(ConfigChunk::sign(NWID, &data[..40], 0, 9, 100, 61, &a).is_err());
        assert!(ConfigChunk::sign(NWID, &data, 0, 9, NETCONF_CAPACITY as u32, 0, &a).is_err());
        assert!(ConfigChunk::sign(NWID, &data, 0, 9, 100, 0, &a.to_public()).is_err());
        let mut huge = NWID.0.to_be_bytes().to_vec();
        huge.extend_from_slice(&(MAX_CHUNK_LEN as u16 + 1).to_be_bytes());
        assert!(matches!(ConfigChunk::parse(&huge), Err(Error::TooLarge(_))));
    }

    #[test]
    fn split_chunks_reassemble_in_any_order() {
        let (a, _) = ids();
        let dict = dictionary(2 * MAX_CHUNK_LEN + 123);
        let chunks = split_and_sign(NWID, &dict, 77, 0, &a).unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(
            chunks
                .iter()
                .all(|c| c.data.len() <= MAX_CHUNK_LEN && c.verify(&a))
        );
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut asm = assembler();
            for (n, &i) in order.iter().enumerate() {
                let outcome = asm.accept(&chunks[i], a.address(), &a, 5).unwrap();
                match outcome {
                    Accepted::Complete {
                        update_id,
                        dictionary,
                    } => {
                        assert_eq!((n, update_id), (2, 77));
                        assert_eq!(dictionary, dict);
                    }
                    Accepted::Partial {
                        received, total, ..
                    } => {
                        assert!(n < 2 && received < total);
                    }
                }
            }
            assert_eq!(asm.counters().completed_updates, 1);
            assert_eq!(asm.buffered_bytes(), 0);
        }
        assert!(split_and_sign(NWID, &dict, 0, 0, &a).is_err());
        assert!(split_and_sign(NWID, &[], 1, 0, &a).is_err());
        assert!(split_and_sign(NWID, &vec![b'x'; NETCONF_CAPACITY], 1, 0, &a).is_err());
    }

    #[test]
    fn inconsistent_chunks_are_rejected_at_once_and_counted() {
        let (a, b) = ids();
        let dict = dictionary(300);
        let src = a.address();
        let mut asm = assembler();
        let first = ConfigChunk::sign(NWID, &dict[..100], 0, 5, 300, 0, &a).unwrap();
        assert!(matches!(
            asm.accept(&first, src, &a, 0),
            Ok(Accepted::Partial { received: 100, .. })
        ));
        let cases = [
            (
                ConfigChunk::sign(NWID, &dict[50..150], 0, 5, 300, 50, &a).unwrap(),
                Rejection::Overlap,
            ),
            (
                ConfigChunk::sign(NWID, &dict[..100], 0, 5, 300, 0, &a).unwrap(),
                Rejection::Duplicate,
            ),
            (
                ConfigChunk::sign(NWID, &dict[1..101], 0, 5, 300, 0, &a).unwrap(),
                Rejection::Overlap,
            ),
            (
                ConfigChunk::sign(NWID, &dict[100..200], 0, 5, 301, 100, &a).unwrap(),
                Rejection::TotalMismatch,
            ),
            (
                ConfigChunk::sign(NWID, &dict[100..200], 0, 5, 300, 100, &b).unwrap(),
                Rejection::BadSignature,
            ),
            (
                ConfigChunk::sign(NetworkId(NWID.0 + 1), &dict[..1], 0, 5, 300, 0, &a).unwrap(),
                Rejection::WrongNetwork,
            ),
            (
                ConfigChunk {
                    network_id: NWID,
                    data: &dict[..100],
                    signed: None,
                },
                Rejection::Unsigned,
            ),
        ];
        for (chunk, expected) in &cases {
            assert_eq!(asm.accept(chunk, src, &a, 1), Err(*expected));
        }
        let mut out_of_range = first;
        if let Some(s) = &mut out_of_range.signed {
            s.offset = 250;
        }
        assert_eq!(
            asm.accept(&out_of_range, src, &a, 1),
            Err(Rejection::OutOfRange)
        );
        assert_eq!(
            asm.accept_payload(&emit(&out_of_range), src, &a, 1),
            Err(Rejection::OutOfRange)
        );
        let mut too_big = first;
        if let Some(s) = &mut too_big.signed {
            s.total_len = NETCONF_CAPACITY as u32;
        }
        assert_eq!(
            asm.accept_payload(&emit(&too_big), src, &a, 1),
            Err(Rejection::TotalTooLarge)
        );
        assert!(matches!(
            asm.accept_payload(&[1, 2, 3], src, &a, 1),
            Err(Rejection::Malformed(_))
        ));
        assert_eq!(
            asm.accept(&first, src, &b, 1),
            Err(Rejection::WrongController)
        );
        let c = *asm.counters();
        assert_eq!(
            (c.overlap, c.duplicate, c.total_mismatch, c.bad_signature),
            (2, 1, 1, 1)
        );
        assert_eq!(
            (c.wrong_network, c.unsigned_rejected, c.out_of_range),
            (1, 1, 2)
        );
        assert_eq!(
            (c.total_too_large, c.malformed, c.wrong_controller),
            (1, 1, 1)
        );
        assert_eq!(c.accepted_chunks, 1);
        // The good remainder still completes the update.
        let rest = ConfigChunk::sign(NWID, &dict[100..], 0, 5, 300, 100, &a).unwrap();
        assert_eq!(
            asm.accept(&rest, src, &a, 2),
            Ok(Accepted::Complete {
                update_id: 5,
                dictionary: dict.clone()
            })
        );
    }

    #[test]
    fn legacy_unsigned_needs_the_option_and_the_controller() {
        let (a, b) = ids();
        let dict = dictionary(10);
        let legacy = ConfigChunk {
            network_id: NWID,
            data: &dict,
            signed: None,
        };
        let options = AssemblerOptions {
            allow_unsigned_legacy: true,
            ..AssemblerOptions::default()
        };
        let mut asm = ConfigAssembler::new(NWID, options);
        assert_eq!(
            asm.accept(&legacy, b.address(), &a, 0),
            Err(Rejection::Unsigned)
        );
        assert_eq!(
            asm.accept(&legacy, a.address(), &a, 0),
            Ok(Accepted::Complete {
                update_id: 0,
                dictionary: dict.clone()
            })
        );
        assert_eq!(
            assembler().accept(&legacy, a.address(), &a, 0),
            Err(Rejection::Unsigned)
        );
    }

    #[test]
    fn chunk_count_per_update_is_bounded() {
        let (a, _) = ids();
        let dict = dictionary(MAX_CHUNKS_PER_UPDATE + 1);
        let mut asm = assembler();
        for i in 0..MAX_CHUNKS_PER_UPDATE {
            let chunk =
                ConfigChunk::sign(NWID, &dict[i..=i], 0, 3, dict.len() as u32, i as u32, &a)
                    .unwrap();
            assert!(matches!(
                asm.accept(&chunk, a.address(), &a, 0),
                Ok(Accepted::Partial { .. })
            ));
        }
        let last = MAX_CHUNKS_PER_UPDATE;
        let chunk = ConfigChunk::sign(
            NWID,
            &dict[last..],
            0,
            3,
            dict.len() as u32,
            last as u32,
            &a,
        )
        .unwrap();
        assert_eq!(
            asm.accept(&chunk, a.address(), &a, 0),
            Err(Rejection::TooManyChunks)
        );
        assert_eq!(asm.counters().too_many_chunks, 1);
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_update_ids() {
        let (a, _) = ids();
        let dict = dictionary(2 * MAX_CHUNK_LEN);
        let mut asm = assembler();
        for update_id in 1..=40u64 {
            let chunk = ConfigChunk::sign(
                NWID,
                &dict[..MAX_CHUNK_LEN],
                0,
                update_id,
                dict.len() as u32,
                0,
                &a,
            )
            .unwrap();
            assert!(asm.accept(&chunk, a.address(), &a, update_id).is_ok());
            assert!(asm.in_progress() <= MAX_IN_PROGRESS_UPDATES);
            assert!(asm.buffered_bytes() <= MAX_IN_PROGRESS_UPDATES * dict.len());
        }
        assert_eq!(
            asm.counters().evicted_updates,
            40 - MAX_IN_PROGRESS_UPDATES as u64
        );
        // The newest updates survive and can finish.
        let rest = ConfigChunk::sign(
            NWID,
            &dict[MAX_CHUNK_LEN..],
            0,
            40,
            dict.len() as u32,
            MAX_CHUNK_LEN as u32,
            &a,
        )
        .unwrap();
        assert!(matches!(
            asm.accept(&rest, a.address(), &a, 41),
            Ok(Accepted::Complete { .. })
        ));
    }

    #[test]
    fn stale_updates_expire() {
        let (a, _) = ids();
        let dict = dictionary(20);
        let mut asm = assembler();
        let first = ConfigChunk::sign(NWID, &dict[..10], 0, 8, 20, 0, &a).unwrap();
        asm.accept(&first, a.address(), &a, 1_000).unwrap();
        asm.expire(1_000 + DEFAULT_UPDATE_TIMEOUT_MS - 1);
        assert_eq!(asm.in_progress(), 1);
        asm.expire(1_000 + DEFAULT_UPDATE_TIMEOUT_MS);
        assert_eq!((asm.in_progress(), asm.counters().expired_updates), (0, 1));
        // The second half alone no longer completes anything.
        let second = ConfigChunk::sign(NWID, &dict[10..], 0, 8, 20, 10, &a).unwrap();
        let outcome = asm.accept(&second, a.address(), &a, 40_000);
        assert!(matches!(
            outcome,
            Ok(Accepted::Partial {
                received: 10,
                total: 20,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (a, _) = ids();
            let _ = ConfigChunk::parse(&bytes);
            let _ = assembler().accept_payload(&bytes, a.address(), &a, 0);
            let mut prefixed = NWID.0.to_be_bytes().to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = assembler().accept_payload(&prefixed, a.address(), &a, 0);
        }

        #[test]
        fn chunks_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..64),
            nwid in any::<u64>(),
            signed in proptest::option::of((any::<u8>(), any::<u64>(), 0u32..1000, any::<[u8; 32]>())),
        ) {
            let len = data.len() as u32;
            let chunk = ConfigChunk {
                network_id: NetworkId(nwid),
                data: &data,
                signed: signed.map(|(flags, update_id, extra, sig)| {
                    let mut signature = [0; SIGNATURE_LEN];
                    signature[..32].copy_from_slice(&sig);
                    signature[64..].copy_from_slice(&sig);
                    ChunkSignature { flags, update_id, total_len: len + extra, offset: extra / 2, signature }
                }),
            };
            let bytes = emit(&chunk);
            prop_assert_eq!(ConfigChunk::parse(&bytes), Ok(chunk));
        }
    }
}
