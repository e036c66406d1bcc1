//! Fuzz target: the parsers of the kernel's multicast membership files (`/proc/net/igmp`,
//! `/proc/net/igmp6`), read for every interface the daemon owns. No panic, and never more
//! entries than the cap, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs_platform::netlink::{MAX_MULTICAST_ENTRIES, parse_igmp, parse_igmp6};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for interface in ["zt0", "eth0", ""] {
        assert!(parse_igmp(&text, interface).len() <= MAX_MULTICAST_ENTRIES);
        assert!(parse_igmp6(&text, interface).len() <= MAX_MULTICAST_ENTRIES);
    }
});
