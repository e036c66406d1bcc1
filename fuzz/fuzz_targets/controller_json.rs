//! Fuzz target: the controller's JSON loaders (`controller.d` network and member files, which
//! may come from another controller or be edited by hand). No panic; whatever loads
//! serialises and loads again to the same object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::controller::store::{Member, Network};

fuzz_target!(|data: &[u8]| {
    if let Ok(network) = Network::from_json(data) {
        let again = serde_json::to_vec(&network).expect("a loaded network serialises");
        let reloaded = Network::from_json(&again).expect("a serialised network loads");
        assert_eq!(reloaded, network);
    }
    if let Ok(member) = Member::from_json(data) {
        let again = serde_json::to_vec(&member).expect("a loaded member serialises");
        let reloaded = Member::from_json(&again).expect("a serialised member loads");
        assert_eq!(reloaded, member);
    }
});
