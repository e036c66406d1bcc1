//! Fuzz target: the daemon's hand-edited settings files, `local.conf` (JSON) and
//! `networks.d/<nwid>.local.conf` (key=value lines), plus the `ZTRS_IMPAIR` syntax. No
//! panic; per-network settings survive their own round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::service::impair::Impairment;
use ztrs::service::local_conf::LocalConf;
use ztrs::store::NetworkSettings;

fuzz_target!(|data: &[u8]| {
    let _ = LocalConf::parse(data);
    let text = String::from_utf8_lossy(data);
    let settings = NetworkSettings::parse(&text);
    assert_eq!(NetworkSettings::parse(&settings.to_text()), settings);
    let _ = Impairment::parse(&text);
});
