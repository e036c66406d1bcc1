//! Fuzz target: identity string and binary parsers.
//!
//! Invariants: no panic; whatever parses re-emits to a form that parses to the same identity
//! (the binary form byte-exactly). The proof of work (`locally_validate`) is deliberately not
//! run: 2 MiB of Salsa20 per input would make the fuzzer useless.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::crypto::Identity;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<Identity>()
    {
        let secret_string = id.to_secret_string();
        let again: Identity = secret_string.parse().expect("emitted string reparses");
        assert_eq!(again, id);
        assert_eq!(again.to_secret_string(), secret_string);
        assert_eq!(again.has_secret(), id.has_secret());
        let public: Identity = id
            .to_public_string()
            .parse()
            .expect("public string reparses");
        assert_eq!(public, id);
    }

    if let Ok((id, consumed)) = Identity::parse_binary(data) {
        let mut out = Vec::new();
        id.emit_binary_with_secret(&mut out);
        assert_eq!(out[..], data[..consumed], "binary form is canonical");
        let (again, n) = Identity::parse_binary(&out).expect("emitted binary reparses");
        assert_eq!(n, out.len());
        assert_eq!(again, id);
        assert_eq!(again.to_secret_string(), id.to_secret_string());
    }
});
