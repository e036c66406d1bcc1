//! The controller store: the reference `controller.d/` of the 1.14.1 capture loads and
//! re-serialises without losing a field; the directory store writes atomically, refuses
//! oversized files, symlinks and bad names, and survives a restart.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use ztrs::controller::store::{MAX_OBJECT_FILE_LEN, StoreError};
use ztrs::controller::{Controller, DirectoryStore, Member, Network, Store};
use ztrs::crypto::Identity;
use ztrs::wire::{Address, NetworkId};

const NWID: NetworkId = NetworkId(0x2821_0c94_e2a0_b81a);

fn reference_dir() -> PathBuf {
    let dir = common::vectors_dir().join("zerotierone-1.14.1-capture/root/controller.d");
    assert!(dir.is_dir(), "missing vector {}", dir.display());
    dir
}

/// A fresh directory under the system temp dir (never under the vectors).
fn temp_dir(tag: &str) -> PathBuf {
    let mut r = [0u8; 8];
    ztrs::crypto::c25519::random_bytes(&mut r);
    let dir = std::env::temp_dir().join(format!("ztrs-controller-{tag}-{}", ztrs::hex::encode(&r)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_superset(original: &Value, reserialised: &Value, path: &str) {
    let (Some(o), Some(r)) = (original.as_object(), reserialised.as_object()) else {
        panic!("{path}: not objects");
    };
    for (k, v) in o {
        assert_eq!(r.get(k), Some(v), "{path}: field {k}");
    }
}

#[test]
fn reference_store_loads_and_round_trips_every_field() {
    let dir = reference_dir();
    let store = DirectoryStore::open_existing(&dir).unwrap();
    assert_eq!(store.network_ids().unwrap(), vec![NWID]);
    let network = store.get_network(NWID).unwrap().unwrap();
    assert_eq!(network.name, "rig");
    assert!(!network.private);
    assert!(network.v4_assign_mode.zt);
    let members = store.member_addresses(NWID).unwrap();
    assert_eq!(members.len(), 2);

    let original: Value =
        serde_json::from_slice(&std::fs::read(dir.join("network/28210c94e2a0b81a.json")).unwrap())
            .unwrap();
    assert_superset(
        &original,
        &serde_json::to_value(&network).unwrap(),
        "network",
    );
    for a in members {
        let member = store.get_member(NWID, a).unwrap().unwrap();
        assert!(member.authorized);
        let original: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("network/28210c94e2a0b81a/member/{a}.json"))).unwrap(),
        )
        .unwrap();
        assert_superset(&original, &serde_json::to_value(&member).unwrap(), "member");
        // Parsing our own output gives the same object back.
        let again = Member::from_json(&serde_json::to_vec(&member).unwrap()).unwrap();
        assert_eq!(again, member);
    }
    let again = Network::from_json(&serde_json::to_vec(&network).unwrap()).unwrap();
    assert_eq!(again, network);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn directory_store_survives_a_restart_and_bumps_revisions() {
    let dir = temp_dir("restart");
    copy_tree(&reference_dir(), &dir);
    let root: Identity = std::fs::read_to_string(
        common::vectors_dir().join("zerotierone-1.14.1-capture/root/identity.secret"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let mut controller =
        Controller::new(root.clone(), Box::new(DirectoryStore::open(&dir).unwrap()));
    let before = controller.get_network(NWID).unwrap().revision;
    let updated = controller
        .update_network(1, NWID, &json!({"name": "renamed", "mtu": 1400}))
        .unwrap();
    assert_eq!(updated.revision, before + 1);
    let created = controller
        .create_network(2, json!({"name": "second"}))
        .unwrap();
    let second = created.network_id().unwrap();
    let addr = Address::from_u64(0x1234567890);
    controller
        .update_member(
            3,
            second,
            addr,
            &json!({"authorized": true, "ipAssignments": ["10.0.0.1"]}),
        )
        .unwrap();
    drop(controller);

    // Restart: everything is read back from the directory.
    let controller = Controller::new(root, Box::new(DirectoryStore::open(&dir).unwrap()));
    let mut ids = controller.list_networks().unwrap();
    ids.sort();
    let mut expected = vec![NWID, second];
    expected.sort();
    assert_eq!(ids, expected);
    let n = controller.get_network(NWID).unwrap();
    assert_eq!(
        (n.name.as_str(), n.mtu, n.revision),
        ("renamed", 1400, before + 1)
    );
    let m = controller.get_member(second, addr).unwrap();
    assert!(m.authorized);
    assert_eq!(m.ip_assignments, vec!["10.0.0.1".to_string()]);
    assert_eq!(m.revision, 1);
    // No temporary files are left behind by the atomic writes.
    for entry in std::fs::read_dir(dir.join("network")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".tmp"), "leftover {name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directory_store_refuses_oversized_symlinked_and_misnamed_files() {
    let dir = temp_dir("hostile");
    let mut store = DirectoryStore::open(&dir).unwrap();
    let network = Network::new(NWID, 1);
    store.put_network(&network).unwrap();
    assert_eq!(store.get_network(NWID).unwrap().unwrap(), network);

    // Oversized.
    let big = NetworkId(0x2821_0c94_e200_0001);
    let path = dir.join(format!("network/{big}.json"));
    std::fs::write(&path, vec![b' '; MAX_OBJECT_FILE_LEN as usize + 1]).unwrap();
    assert!(matches!(
        store.get_network(big),
        Err(StoreError::TooLarge(_))
    ));
    std::fs::remove_file(&path).unwrap();

    // Symlink, for reading and for writing through.
    let outside = dir.join("outside.json");
    std::fs::write(&outside, serde_json::to_vec(&Network::new(big, 1)).unwrap()).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    assert!(matches!(
        store.get_network(big),
        Err(StoreError::Symlink(_))
    ));
    assert!(matches!(
        store.put_network(&Network::new(big, 2)),
        Err(StoreError::Symlink(_))
    ));
    let untouched: Network = serde_json::from_slice(&std::fs::read(&outside).unwrap()).unwrap();
    assert_eq!(untouched.creation_time, 1);
    std::fs::remove_file(&path).unwrap();

    // Bad names are not listed; bad ids are not written.
    std::fs::write(dir.join("network/28210C94E2A0B81A.json"), b"{}").unwrap();
    std::fs::write(dir.join("network/28210c94e2a0b81.json"), b"{}").unwrap();
    std::fs::write(dir.join("network/junk.json"), b"{}").unwrap();
    assert_eq!(store.network_ids().unwrap(), vec![NWID]);
    let mut bad = Network::new(NWID, 1);
    bad.id = "../../escape".into();
    assert!(matches!(
        store.put_network(&bad),
        Err(StoreError::BadName(_))
    ));
    let mut bad_member = Member::new(NWID, Address::from_u64(1), 1);
    bad_member.id = "../x".into();
    assert!(matches!(
        store.put_member(&bad_member),
        Err(StoreError::BadName(_))
    ));

    // A file whose content names another network is refused.
    std::fs::write(
        dir.join(format!("network/{big}.json")),
        serde_json::to_vec(&network).unwrap(),
    )
    .unwrap();
    assert!(store.get_network(big).is_err());

    // Delete removes members too.
    let member = Member::new(NWID, Address::from_u64(0x66cb7c1800), 1);
    store.put_member(&member).unwrap();
    assert_eq!(store.member_addresses(NWID).unwrap().len(), 1);
    assert!(store.delete_network(NWID).unwrap());
    assert!(store.get_network(NWID).unwrap().is_none());
    assert!(store.member_addresses(NWID).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
