//! The worlds a node trusts (protocol 6): its planet, the moons it orbits and the moons it
//! wants (orbit by seed), and the upstream set derived from them (every root of the planet
//! and of each moon). World updates follow the 6.1 rule through `World::should_replace`.

use std::net::SocketAddr;

use crate::crypto::Identity;
use crate::wire::Address;
use crate::wire::world::{World, WorldType};

/// The role of a peer, as `PeerInfo` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// An ordinary node.
    Leaf,
    /// A root of a moon we orbit.
    Moon,
    /// A root of our planet.
    Planet,
}

/// One upstream: a root of the planet or of a moon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) identity: Identity,
    /// Stable endpoints from the world, canonical (IPv4-mapped -> IPv4).
    pub(crate) endpoints: Vec<SocketAddr>,
    pub(crate) role: PeerRole,
}

/// A moon we asked for by seed and do not have yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Orbit {
    pub(crate) moon_id: u64,
    pub(crate) seed: Address,
}

/// Outcome of offering a world received in OK(HELLO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorldOffer {
    /// Accepted (new or newer); the upstream set may have changed.
    Accepted {
        id: u64,
        timestamp: u64,
        is_moon: bool,
    },
    /// Refused (not ours, not newer, bad signature, or not from the right sender).
    Refused,
}

#[derive(Debug)]
pub(crate) struct Topology {
    planet: World,
    moons: Vec<World>,
    orbits: Vec<Orbit>,
    upstreams: Vec<Upstream>,
    me: Address,
    max_moons: usize,
}

impl Topology {
    pub(crate) fn new(me: Address, planet: World, moons: Vec<World>, max_moons: usize) -> Topology {
        let max_moons = max_moons.max(1);
        let mut kept: Vec<World> = Vec::new();
        for m in moons {
            if m.world_type == WorldType::Moon
                && kept.len() < max_moons
                && !kept.iter().any(|k| k.id == m.id)
            {
                kept.push(m);
            }
        }
        let mut t = Topology {
            planet,
            moons: kept,
            orbits: Vec::new(),
            upstreams: Vec::new(),
            me,
            max_moons,
        };
        t.rebuild();
        t
    }

    /// Recomputes the upstream set; a root listed in both the planet and a moon is a planet
    /// root. We are never our own upstream.
    fn rebuild(&mut self) {
        let mut ups: Vec<Upstream> = Vec::new();
        let worlds = std::iter::once((&self.planet, PeerRole::Planet))
            .chain(self.moons.iter().map(|m| (m, PeerRole::Moon)));
        for (world, role) in worlds {
            for root in &world.roots {
                let address = root.identity.address();
                if address == self.me {
                    continue;
                }
                let endpoints: Vec<SocketAddr> = root
                    .stable_endpoints
                    .iter()
                    .filter_map(|e| e.socket_addr())
                    .map(crate::wire::inet_address::canonical_socket_addr)
                    .collect();
                if let Some(existing) = ups.iter_mut().find(|u| u.identity.address() == address) {
                    for e in endpoints {
                        if !existing.endpoints.contains(&e) {
                            existing.endpoints.push(e);
                        }
                    }
                    continue;
                }
                ups.push(Upstream {
                    identity: root.identity.to_public(),
                    endpoints,
                    role,
                });
            }
        }
        self.upstreams = ups;
    }

    pub(crate) fn planet(&self) -> &World {
        &self.planet
    }

    pub(crate) fn moons(&self) -> &[World] {
        &self.moons
    }

    pub(crate) fn orbits(&self) -> &[Orbit] {
        &self.orbits
    }

    pub(crate) fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    pub(crate) fn upstream(&self, address: &Address) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .find(|u| u.identity.address() == *address)
    }

    pub(crate) fn is_upstream(&self, address: &Address) -> bool {
        self.upstream(address).is_some()
    }

    pub(crate) fn role(&self, address: &Address) -> PeerRole {
        self.upstream(address).map_or(PeerRole::Leaf, |u| u.role)
    }

    /// Whether we are a root of our planet or of a moon we hold.
    pub(crate) fn am_root(&self) -> bool {
        std::iter::once(&self.planet)
            .chain(self.moons.iter())
            .any(|w| w.roots.iter().any(|r| r.identity.address() == self.me))
    }

    /// Whether `address` is the seed of a moon we asked for.
    pub(crate) fn is_pending_seed(&self, address: &Address) -> bool {
        self.orbits.iter().any(|o| o.seed == *address)
    }

    /// A root may only be reached at its world stable endpoints (IP compared, not port),
    /// unless it has none (8.4). Non-roots are never prohibited here.
    pub(crate) fn is_prohibited_endpoint(&self, address: &Address, remote: &SocketAddr) -> bool {
        match self.upstream(address) {
            Some(u) if !u.endpoints.is_empty() => {
                !u.endpoints.iter().any(|e| e.ip() == remote.ip())
            }
            _ => false,
        }
    }

    /// Asks for moon `moon_id` from `seed`; returns false if already held or wanted (or the
    /// moon limit is reached).
    pub(crate) fn orbit(&mut self, moon_id: u64, seed: Address) -> bool {
        if self.moons.iter().any(|m| m.id == moon_id)
            || self.orbits.iter().any(|o| o.moon_id == moon_id)
            || self.moons.len() + self.orbits.len() >= self.max_moons
        {
            return false;
        }
        self.orbits.push(Orbit { moon_id, seed });
        true
    }

    /// Forgets moon `moon_id` (held or wanted); returns whether anything changed.
    pub(crate) fn deorbit(&mut self, moon_id: u64) -> bool {
        let before = self.moons.len() + self.orbits.len();
        self.moons.retain(|m| m.id != moon_id);
        self.orbits.retain(|o| o.moon_id != moon_id);
        let changed = before != self.moons.len() + self.orbits.len();
        if changed {
            self.rebuild();
        }
        changed
    }

    /// Offers a world received in OK(HELLO) from `sender` (6.1, 6.3). The caller has checked
    /// that `sender` is an upstream or a pending seed.
    pub(crate) fn offer(&mut self, world: World, sender: &Address) -> WorldOffer {
        if world.validate().is_err() {
            return WorldOffer::Refused;
        }
        let (id, timestamp) = (world.id, world.timestamp);
        let is_moon = world.world_type == WorldType::Moon;
        match world.world_type {
            WorldType::Planet => {
                if world.id != self.planet.id || !world.should_replace(Some(&self.planet)) {
                    return WorldOffer::Refused;
                }
                self.planet = world;
            }
            WorldType::Moon => {
                if let Some(i) = self.moons.iter().position(|m| m.id == world.id) {
                    let replace = self
                        .moons
                        .get(i)
                        .is_some_and(|current| world.should_replace(Some(current)));
                    if !replace {
                        return WorldOffer::Refused;
                    }
                    if let Some(slot) = self.moons.get_mut(i) {
                        *slot = world;
                    }
                } else {
                    // A new moon only from the seed we asked, and only if the seed is one of
                    // its roots (trust on first use, as the reference).
                    let Some(i) = self
                        .orbits
                        .iter()
                        .position(|o| o.moon_id == world.id && o.seed == *sender)
                    else {
                        return WorldOffer::Refused;
                    };
                    if !world.roots.iter().any(|r| r.identity.address() == *sender) {
                        return WorldOffer::Refused;
                    }
                    self.orbits.remove(i);
                    self.moons.push(world);
                }
            }
        }
        self.rebuild();
        WorldOffer::Accepted {
            id,
            timestamp,
            is_moon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::c25519::{SIGNATURE_LEN, SecretKey, generate_keypair};
    use crate::wire::InetAddress;
    use crate::wire::world::Root;

    fn ident(addr: u64, fill: u8) -> Identity {
        Identity::from_parts(Address::from_u64(addr), [fill; 64], None)
    }

    fn world(kind: WorldType, id: u64, ts: u64, roots: &[(u64, &str)], key: &SecretKey) -> World {
        let mut w = World {
            world_type: kind,
            id,
            timestamp: ts,
            updates_must_be_signed_by: key.public_key(),
            signature: [0; SIGNATURE_LEN],
            roots: roots
                .iter()
                .map(|(a, ep)| Root {
                    identity: ident(*a, *a as u8),
                    stable_endpoints: vec![InetAddress::from_socket_addr(ep.parse().unwrap())],
                })
                .collect(),
        };
        w.sign(key);
        w
    }

    #[test]
    fn upstreams_come_from_planet_and_moons_without_me() {
        let (_, key) = generate_keypair();
        let planet = world(
            WorldType::Planet,
            1,
            10,
            &[(0x11, "10.0.0.1:9993"), (0x22, "[::ffff:10.0.0.2]:9993")],
            &key,
        );
        let moon = world(WorldType::Moon, 0x33, 5, &[(0x33, "10.0.0.3:9993")], &key);
        let t = Topology::new(Address::from_u64(0x22), planet, vec![moon], 4);
        let ups: Vec<u64> = t
            .upstreams()
            .iter()
            .map(|u| u.identity.address().to_u64())
            .collect();
        assert_eq!(ups, vec![0x11, 0x33]);
        assert!(t.am_root());
        assert_eq!(t.role(&Address::from_u64(0x33)), PeerRole::Moon);
        assert_eq!(t.role(&Address::from_u64(0x11)), PeerRole::Planet);
        assert_eq!(t.role(&Address::from_u64(0x44)), PeerRole::Leaf);
        let a11 = Address::from_u64(0x11);
        assert!(!t.is_prohibited_endpoint(&a11, &"10.0.0.1:1234".parse().unwrap()));
        assert!(t.is_prohibited_endpoint(&a11, &"10.0.0.9:9993".parse().unwrap()));
        assert!(
            !t.is_prohibited_endpoint(&Address::from_u64(0x44), &"10.0.0.9:1".parse().unwrap())
        );
    }

    #[test]
    fn planet_updates_follow_the_update_rule() {
        let (_, key) = generate_keypair();
        let (_, other) = generate_keypair();
        let planet = world(WorldType::Planet, 1, 10, &[(0x11, "10.0.0.1:9993")], &key);
        let mut t = Topology::new(Address::from_u64(0x99), planet, vec![], 4);
        let sender = Address::from_u64(0x11);
        let newer = world(WorldType::Planet, 1, 20, &[(0x12, "10.0.0.2:9993")], &key);
        let forged = world(WorldType::Planet, 1, 30, &[(0x13, "10.0.0.3:9993")], &other);
        let other_id = world(WorldType::Planet, 2, 40, &[(0x13, "10.0.0.3:9993")], &key);
        assert_eq!(t.offer(forged, &sender), WorldOffer::Refused);
        assert_eq!(t.offer(other_id, &sender), WorldOffer::Refused);
        assert_eq!(
            t.offer(newer.clone(), &sender),
            WorldOffer::Accepted {
                id: 1,
                timestamp: 20,
                is_moon: false
            }
        );
        assert_eq!(t.offer(newer, &sender), WorldOffer::Refused);
        assert!(t.is_upstream(&Address::from_u64(0x12)));
        assert!(!t.is_upstream(&Address::from_u64(0x11)));
    }

    #[test]
    fn moons_are_accepted_from_their_seed_only() {
        let (_, key) = generate_keypair();
        let planet = world(WorldType::Planet, 1, 10, &[(0x11, "10.0.0.1:9993")], &key);
        let mut t = Topology::new(Address::from_u64(0x99), planet, vec![], 4);
        let moon = world(WorldType::Moon, 0x33, 5, &[(0x33, "10.0.0.3:9993")], &key);
        // Not asked for.
        assert_eq!(
            t.offer(moon.clone(), &Address::from_u64(0x33)),
            WorldOffer::Refused
        );
        assert!(t.orbit(0x33, Address::from_u64(0x33)));
        assert!(!t.orbit(0x33, Address::from_u64(0x33)));
        assert!(t.is_pending_seed(&Address::from_u64(0x33)));
        // From another sender.
        assert_eq!(
            t.offer(moon.clone(), &Address::from_u64(0x11)),
            WorldOffer::Refused
        );
        assert_eq!(
            t.offer(moon, &Address::from_u64(0x33)),
            WorldOffer::Accepted {
                id: 0x33,
                timestamp: 5,
                is_moon: true
            }
        );
        assert!(t.is_upstream(&Address::from_u64(0x33)));
        assert!(t.orbits().is_empty());
        assert!(t.deorbit(0x33));
        assert!(!t.is_upstream(&Address::from_u64(0x33)));
        assert!(!t.deorbit(0x33));
    }
}
