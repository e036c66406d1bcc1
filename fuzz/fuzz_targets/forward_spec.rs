//! Fuzz target: the `-L` / `-R` forward-spec syntax and `host:port` targets.
//!
//! Invariants: no panic; every accepted spec or target displays as text that parses back
//! to the same value, and an accepted target's port is never 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::netstack::front::{ForwardSpec, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        ForwardSpec::parse_local(text),
        ForwardSpec::parse_remote(text),
        text.parse::<ForwardSpec>(),
    ] {
        if let Ok(spec) = parsed {
            assert_ne!(spec.target().port(), 0);
            assert_eq!(spec.to_string().parse::<ForwardSpec>(), Ok(spec));
        }
    }
    if let Ok(target) = text.parse::<Target>() {
        assert_ne!(target.port(), 0);
        assert_eq!(target.to_string().parse::<Target>(), Ok(target));
    }
});
