//! What the flood knows about each target and the key material it derives once per target:
//! the identity pool's keys (real identities the target may learn), made-up identities that
//! fail the proof of work, and impostors claiming the addresses of the target's peers.

use std::net::SocketAddr;

use super::rng::FloodRng;
use crate::crypto::c25519::SecretKey;
use crate::crypto::{Identity, SymmetricKey};
use crate::wire::{Address, NetworkId};

/// Made-up identities per target for [`super::Kind::HelloInvalid`]: they never become
/// peers, so a small set reused round-robin costs the target as much as fresh ones.
const INVALID_IDENTITIES: usize = 16;

/// A node to flood.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its UDP endpoint.
    pub endpoint: SocketAddr,
    /// Its public identity (address for headers, public key for authenticated kinds).
    pub identity: Identity,
    /// Addresses it knows (a root, the other members): claimed as sources by
    /// [`super::Kind::BadMac`] and [`super::Kind::Spoofed`].
    pub known_peers: Vec<Address>,
    /// A network it belongs to (its NETWORK_CONFIG chunks); a random id without one.
    pub network: Option<NetworkId>,
    /// It relays for others (a root): only changes which counters [`super::Kind::Random`]
    /// lands in.
    pub relays: bool,
}

impl Target {
    /// A target known by endpoint and identity only.
    pub fn new(endpoint: SocketAddr, identity: Identity) -> Target {
        Target {
            endpoint,
            identity: identity.to_public(),
            known_peers: Vec::new(),
            network: None,
            relays: false,
        }
    }
}

/// Real identities (valid proof of work) the flood sends as. Generating one costs a
/// memory-hard hash per candidate (~13 ms optimised), so a flood makes a few and reuses them.
#[derive(Clone)]
pub struct IdentityPool {
    identities: Vec<Identity>,
}

impl IdentityPool {
    /// Generates `size` identities (slow: see the type doc).
    pub fn generate(size: usize) -> IdentityPool {
        IdentityPool {
            identities: (0..size).map(|_| Identity::generate()).collect(),
        }
    }

    /// A pool of given identities (they must carry their secrets).
    pub fn from_identities(identities: Vec<Identity>) -> IdentityPool {
        IdentityPool {
            identities: identities
                .into_iter()
                .filter(Identity::has_secret)
                .collect(),
        }
    }

    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The addresses of the pool (to wait until a target learned them).
    pub fn addresses(&self) -> Vec<Address> {
        self.identities.iter().map(Identity::address).collect()
    }
}

/// An identity the flood holds the secret of, with the key it shares with one target.
pub(crate) struct Keyed {
    pub identity: Identity,
    pub key: SymmetricKey,
}

impl Keyed {
    fn with(identity: Identity, target: &Identity) -> Option<Keyed> {
        let shared = identity.agree(target)?;
        Some(Keyed {
            key: SymmetricKey::new(&shared),
            identity,
        })
    }
}

/// A made-up identity: a fresh key pair under `address` (which its key does not derive, so
/// it fails the proof of work).
fn made_up(address: Address) -> Identity {
    let (public, secret): ([u8; 64], SecretKey) = crate::crypto::c25519::generate_keypair();
    Identity::from_parts(address, public, Some(secret))
}

/// A random address that is not reserved and not `avoid`.
pub(crate) fn random_address(rng: &mut FloodRng, avoid: &[Address]) -> Address {
    loop {
        let address = Address::from_u64(rng.next_u64());
        if !address.is_reserved() && !avoid.contains(&address) {
            return address;
        }
    }
}

/// Everything derived once per target.
pub(crate) struct TargetMaterial {
    pub target: Target,
    /// Index-aligned with the flood's [`IdentityPool`].
    pub pool: Vec<Keyed>,
    pub invalid: Vec<Keyed>,
    /// One per known peer: its address with another key.
    pub impostors: Vec<Keyed>,
    /// Fragment-bomb datagrams built but not sent yet (one group at a time).
    pub pending_fragments: std::collections::VecDeque<Vec<u8>>,
    /// Which fragment-bomb group comes next.
    pub next_group: usize,
    pub network: NetworkId,
}

impl TargetMaterial {
    pub fn new(target: Target, pool: &IdentityPool, rng: &mut FloodRng) -> TargetMaterial {
        let them = &target.identity;
        let mut avoid = target.known_peers.clone();
        avoid.push(them.address());
        avoid.extend(pool.addresses());
        let invalid = (0..INVALID_IDENTITIES)
            .filter_map(|_| Keyed::with(made_up(random_address(rng, &avoid)), them))
            .collect();
        let impostors = target
            .known_peers
            .iter()
            .filter(|a| **a != them.address())
            .filter_map(|a| Keyed::with(made_up(*a), them))
            .collect();
        let network = target.network.unwrap_or_else(|| NetworkId(rng.next_u64()));
        TargetMaterial {
            pool: pool
                .identities()
                .iter()
                .filter_map(|i| Keyed::with(i.clone(), them))
                .collect(),
            invalid,
            impostors,
            pending_fragments: std::collections::VecDeque::new(),
            next_group: 0,
            network,
            target,
        }
    }
}
