//! Fuzzes the world (planet/moon) parser, both as a whole file and as an embedded prefix:
//! never panics, and whatever parses re-parses equal after emit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztrs::wire::cursor::Reader;
use ztrs::wire::world::World;

fuzz_target!(|data: &[u8]| {
    if let Ok(world) = World::parse(data) {
        assert_eq!(World::parse(&world.to_bytes()), Ok(world));
    }
    let mut r = Reader::new(data);
    if let Ok(world) = World::read(&mut r) {
        assert_eq!(World::parse(&world.to_bytes()), Ok(world));
    }
});
