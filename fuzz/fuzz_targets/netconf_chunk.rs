//! Fuzz target: netconf chunks and the chunk assembler.
//!
//! Invariants: no panic; a chunk that parses re-emits exactly the bytes it was read from and
//! reparses equal; the assembler never panics and never holds more than its bounds, whatever
//! sequence of payloads (the input split at each `0xfe` byte) it is offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::crypto::Identity;
use ztrs::wire::NetworkId;
use ztrs::wire::cursor::Reader;
use ztrs::wire::netconf_chunk::{
    AssemblerOptions, ConfigAssembler, ConfigChunk, MAX_IN_PROGRESS_UPDATES,
};

// Throw-away test controller (id1 of the reference vectors), public part only.
const CONTROLLER: &str = "7c2dfee12c:0:d623960e382e4ae2d7fd262e9165f1da3326a51fe526e1cfc2cec972731f04336a279b088ec51c8b5a6dbb0583c157e2afc73fce77e293c69b7627b319b82729";

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    if let Ok(chunk) = ConfigChunk::read(&mut r) {
        let consumed = r.position();
        let mut out = Vec::new();
        chunk.emit(&mut out);
        assert_eq!(out[..], data[..consumed], "chunk encoding is canonical");
        assert_eq!(out.len(), chunk.emitted_len());
        assert_eq!(ConfigChunk::parse(&out), Ok(chunk));
        let portion = chunk.signed_portion();
        assert!(out.starts_with(&portion));
    }

    let controller: Identity = CONTROLLER.parse().expect("test identity");
    let nwid = NetworkId(0x7c2dfee12c000001);
    let options = AssemblerOptions {
        allow_unsigned_legacy: data.first().is_some_and(|b| b & 1 == 1),
        ..AssemblerOptions::default()
    };
    let mut assembler = ConfigAssembler::new(nwid, options);
    for (now, payload) in data.split(|&b| b == 0xfe).enumerate() {
        let _ = assembler.accept_payload(payload, controller.address(), &controller, now as u64);
        assert!(assembler.in_progress() <= MAX_IN_PROGRESS_UPDATES);
    }
});
