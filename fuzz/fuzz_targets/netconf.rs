//! Fuzz target: `NetworkConfig` from a netconf dictionary.
//!
//! Invariants: no panic; a config that parses writes a dictionary that parses to the same
//! config and is written again byte for byte (the writer is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::netconf::NetworkConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = NetworkConfig::from_dictionary(data) {
        let bytes = config.to_dictionary();
        let again = NetworkConfig::from_dictionary(&bytes).expect("our dictionary reparses");
        assert_eq!(again, config);
        assert_eq!(again.to_dictionary(), bytes);
    }
});
