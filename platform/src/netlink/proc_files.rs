//! Interface settings and state that Linux exposes in `/proc` rather than over netlink: the
//! per-interface `disable_ipv6` switch and the multicast groups the kernel has joined
//! (`/proc/net/igmp`, `/proc/net/igmp6`), with bounded reads and tolerant parsers.
//!
//! The files are opened through `/proc/thread-self/net/...`, not `/proc/net/...`: the latter
//! follows the main thread's network namespace, whereas a thread that entered another
//! namespace (see [`crate::netns`]) must see its own. `/proc/sys/net` already follows the
//! calling thread.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::tun::validate_interface_name;

/// Most bytes read from one `/proc` file; a longer file is cut at its last complete line.
pub const MAX_PROC_FILE_BYTES: u64 = 1 << 20;

/// Most multicast groups reported per family and interface.
pub const MAX_MULTICAST_ENTRIES: usize = 1024;

const IGMP_PATH: &str = "/proc/thread-self/net/igmp";
const IGMP6_PATH: &str = "/proc/thread-self/net/igmp6";

/// Turns IPv6 off (`true`) or on for interface `name` in the calling thread's namespace by
/// writing `/proc/sys/net/ipv6/conf/<name>/disable_ipv6`. With IPv6 off the interface has no
/// IPv6 address (adding one fails) and emits no router solicitations or MLD reports.
pub fn disable_ipv6(name: &str, disabled: bool) -> io::Result<()> {
    set_interface_flag("ipv6", name, "disable_ipv6", disabled)
}

/// Sets the per-interface boolean sysctl `/proc/sys/net/<family>/conf/<name>/<key>`, where
/// `family` is `ipv4` or `ipv6` and `key` is one of a fixed set of names (so no input can
/// reach another path): `disable_ipv6`, `accept_ra`, `accept_redirects`, `send_redirects`,
/// `rp_filter`.
pub fn set_interface_flag(family: &str, name: &str, key: &str, value: bool) -> io::Result<()> {
    validate_interface_name(name)?;
    const KEYS: [&str; 5] = [
        "disable_ipv6",
        "accept_ra",
        "accept_redirects",
        "send_redirects",
        "rp_filter",
    ];
    if !matches!(family, "ipv4" | "ipv6") || !KEYS.contains(&key) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a supported interface setting: {family}/{key}"),
        ));
    }
    let path = format!("/proc/sys/net/{family}/conf/{name}/{key}");
    let value: &[u8] = if value { b"1\n" } else { b"0\n" };
    File::options()
        .write(true)
        .open(&path)
        .and_then(|mut file| file.write_all(value))
        .map_err(|err| io::Error::new(err.kind(), format!("writing {path}: {err}")))
}

/// The multicast groups the kernel has joined on interface `name` (IPv4 then IPv6, each in
/// file order, at most [`MAX_MULTICAST_ENTRIES`] per family), in the calling thread's
/// namespace. A family whose file does not exist (no IPv6 in the kernel) contributes nothing.
pub fn multicast_memberships(name: &str) -> io::Result<Vec<IpAddr>> {
    validate_interface_name(name)?;
    let mut groups: Vec<IpAddr> = Vec::new();
    if let Some(text) = read_bounded(IGMP_PATH)? {
        groups.extend(parse_igmp(&text, name).into_iter().map(IpAddr::V4));
    }
    if let Some(text) = read_bounded(IGMP6_PATH)? {
        groups.extend(parse_igmp6(&text, name).into_iter().map(IpAddr::V6));
    }
    Ok(groups)
}

/// Parses `/proc/net/igmp`: interface lines (`idx<TAB>name : count querier`) each followed by
/// tab-indented group lines whose first field is the group as the kernel's in-memory `__be32`
/// printed with `%08X` (so little-endian-looking hex on little-endian hosts: `010000E0` is
/// 224.0.0.1). Returns the groups of `interface`; malformed lines are skipped.
pub fn parse_igmp(text: &str, interface: &str) -> Vec<Ipv4Addr> {
    let mut groups = Vec::new();
    let mut in_interface = false;
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            if !in_interface {
                continue;
            }
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if hex.len() != 8 {
                continue;
            }
            let Ok(raw) = u32::from_str_radix(hex, 16) else {
                continue;
            };
            if groups.len() == MAX_MULTICAST_ENTRIES {
                break;
            }
            // The value printed is the network-order address read as a native integer.
            groups.push(Ipv4Addr::from(raw.to_ne_bytes()));
        } else {
            in_interface = igmp_interface_of(line) == Some(interface);
        }
    }
    groups
}

/// The interface name of an igmp interface line (`None` for the header or garbage).
fn igmp_interface_of(line: &str) -> Option<&str> {
    let (head, _) = line.split_once(':')?;
    let mut fields = head.split_whitespace();
    fields.next()?.parse::<u32>().ok()?;
    fields.next()
}

/// Parses `/proc/net/igmp6`: one line per group, `idx name group users flags timer`, the group
/// as 32 hex digits in network order. Returns the groups of `interface`; malformed lines are
/// skipped.
pub fn parse_igmp6(text: &str, interface: &str) -> Vec<Ipv6Addr> {
    let mut groups = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(index), Some(name), Some(hex)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if name != interface || index.parse::<u32>().is_err() || hex.len() != 32 {
            continue;
        }
        let Ok(raw) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        if groups.len() == MAX_MULTICAST_ENTRIES {
            break;
        }
        groups.push(Ipv6Addr::from(raw));
    }
    groups
}

/// Reads at most [`MAX_PROC_FILE_BYTES`] of `path`, dropping a final partial line when the cap
/// was hit (a cut hex field could otherwise parse as a wrong value). `None` when the file does
/// not exist.
fn read_bounded(path: &str) -> io::Result<Option<String>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io::Error::new(err.kind(), format!("opening {path}: {err}"))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_PROC_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|err| io::Error::new(err.kind(), format!("reading {path}: {err}")))?;
    if bytes.len() as u64 == MAX_PROC_FILE_BYTES {
        let complete = bytes
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |at| at + 1);
        bytes.truncate(complete);
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IGMP: &str = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\
        1\tlo        :     1      V3\n\
        \t\t\t\t010000E0     1 0:00000000\t\t0\n\
        5\tztplat0   :     2      V3\n\
        \t\t\t\t030201EF     1 0:00000000\t\t0\n\
        \t\t\t\tnothex!!     1 0:00000000\t\t0\n\
        \t\t\t\t010000E0     1 0:00000000\t\t0\n\
        6\tother     :     1      V3\n\
        \t\t\t\tFB0000E0     1 0:00000000\t\t0\n";

    const IGMP6: &str = "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
        5    ztplat0         ff0200000000000000000001ff000001     1 00000004 0\n\
        5    ztplat0         ff020000000000000000000000000001     1 0000000C 0\n\
        5    ztplat0         ff02short                            1 0000000C 0\n\
        garbage\n\
        6    other           ff020000000000000000000000000002     1 00000004 0\n";

    #[cfg(target_endian = "little")]
    #[test]
    fn igmp_groups_of_one_interface() {
        assert_eq!(
            parse_igmp(IGMP, "ztplat0"),
            [Ipv4Addr::new(239, 1, 2, 3), Ipv4Addr::new(224, 0, 0, 1)]
        );
        assert_eq!(parse_igmp(IGMP, "lo"), [Ipv4Addr::new(224, 0, 0, 1)]);
        assert!(parse_igmp(IGMP, "missing").is_empty());
        assert!(parse_igmp("", "lo").is_empty());
    }

    #[test]
    fn igmp6_groups_of_one_interface() {
        let expected: [Ipv6Addr; 2] = [
            "ff02::1:ff00:1".parse().unwrap(),
            "ff02::1".parse().unwrap(),
        ];
        assert_eq!(parse_igmp6(IGMP6, "ztplat0"), expected);
        assert_eq!(
            parse_igmp6(IGMP6, "other"),
            ["ff02::2".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(parse_igmp6(IGMP6, "zt").is_empty());
    }

    #[test]
    fn entry_count_is_capped() {
        let mut text = String::from("1\tzt0       :     1      V3\n");
        let mut text6 = String::new();
        for _ in 0..MAX_MULTICAST_ENTRIES + 10 {
            text.push_str("\t\t\t\t010000E0     1 0:00000000\t\t0\n");
            text6.push_str("1 zt0 ff020000000000000000000000000001 1 0 0\n");
        }
        assert_eq!(parse_igmp(&text, "zt0").len(), MAX_MULTICAST_ENTRIES);
        assert_eq!(parse_igmp6(&text6, "zt0").len(), MAX_MULTICAST_ENTRIES);
    }

    #[test]
    fn disable_ipv6_rejects_path_tricks() {
        let err = disable_ipv6("../../x", true).expect_err("bad name");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = multicast_memberships("a/b").expect_err("bad name");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
