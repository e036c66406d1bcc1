//! Linux interface configuration by index: link settings (MTU, up/down, transmit queue,
//! IPv6 address generation), addresses and routes through rtnetlink, plus the few settings
//! that live in `/proc` (per-interface `disable_ipv6`, kernel multicast memberships).
//!
//! Every change is idempotent so that a reconciler can apply the desired state repeatedly:
//! adds use `NLM_F_REPLACE` (an existing entry is not an error) and removals of missing
//! entries succeed. Everything acts in the network namespace of the thread that called
//! [`Netlink::connect`] (the netlink socket is bound to it at creation) or, for the `/proc`
//! functions, of the calling thread (see [`crate::netns`]).
//!
//! All netlink code of ztrs is here: the rtnetlink API changes often, so it stays in one
//! place, pinned to one minor version.

mod address;
mod proc_files;
mod route;

use std::io;

use futures_util::TryStreamExt;
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute};

pub use proc_files::{
    MAX_MULTICAST_ENTRIES, MAX_PROC_FILE_BYTES, disable_ipv6, multicast_memberships, parse_igmp,
    parse_igmp6, set_interface_flag,
};
pub use route::Route;

use crate::tun::validate_interface_name;

/// Most entries one dump may return for one interface; more is treated as an error rather
/// than buffered without bound.
pub const MAX_DUMP_ENTRIES: usize = 4096;

/// A connection to the kernel's routing netlink socket. Cheap to clone; all clones share the
/// connection task, which ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens the netlink socket in the calling thread's network namespace and spawns its
    /// connection task on the current tokio runtime (an error outside a runtime).
    pub fn connect() -> io::Result<Netlink> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("netlink needs a tokio runtime to run its connection task")
        })?;
        let (connection, handle, _unsolicited) = rtnetlink::new_connection()?;
        runtime.spawn(connection);
        Ok(Netlink { handle })
    }

    /// The index of the interface `name`, or `None` when there is none.
    pub async fn link_index(&self, name: &str) -> io::Result<Option<u32>> {
        validate_interface_name(name)?;
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|link| link.header.index)),
            Err(err) if errno(&err) == Some(libc::ENODEV) => Ok(None),
            Err(err) => Err(failure(format!("looking up interface {name:?}"), err)),
        }
    }

    /// Sets the MTU of interface `index`.
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        let request = self.handle.link().set(message).execute();
        request
            .await
            .map_err(|err| failure(format!("setting MTU {mtu} on interface {index}"), err))
    }

    /// Brings interface `index` up or down.
    pub async fn set_up(&self, index: u32, up: bool) -> io::Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        let request = self.handle.link().set(message).execute();
        let state = if up { "up" } else { "down" };
        request
            .await
            .map_err(|err| failure(format!("setting interface {index} {state}"), err))
    }

    /// Sets the transmit queue length (packets) of interface `index`.
    pub async fn set_tx_queue_len(&self, index: u32, len: u32) -> io::Result<()> {
        let message = LinkUnspec::new_with_index(index).txqueuelen(len).build();
        let request = self.handle.link().set(message).execute();
        request.await.map_err(|err| {
            failure(
                format!("setting transmit queue {len} on interface {index}"),
                err,
            )
        })
    }

    /// Sets `IFLA_INET6_ADDR_GEN_MODE` to none on interface `index`: the kernel then creates no
    /// IPv6 link-local address when the interface comes up, so it sends no router
    /// solicitations or MLD reports from one, while explicitly added IPv6 addresses still work.
    /// Call it before [`Netlink::set_up`]; it does not remove an existing link-local address.
    pub async fn set_ipv6_addr_gen_none(&self, index: u32) -> io::Result<()> {
        let mode = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
        let message = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![mode]))
            .build();
        let request = self.handle.link().set(message).execute();
        request.await.map_err(|err| {
            failure(
                format!("turning off IPv6 address generation on interface {index}"),
                err,
            )
        })
    }
}

/// The errno carried by a netlink error answer, if it is one.
fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}

/// An I/O error saying what failed: the kind comes from the kernel's errno when there is one.
fn failure(what: String, err: rtnetlink::Error) -> io::Error {
    match errno(&err) {
        Some(code) => {
            let os = io::Error::from_raw_os_error(code);
            io::Error::new(os.kind(), format!("{what}: {os}"))
        }
        None => io::Error::other(format!("{what}: {err}")),
    }
}

/// The error for a dump that matched more than [`MAX_DUMP_ENTRIES`] entries.
fn too_many(what: &str, index: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("interface {index} has more than {MAX_DUMP_ENTRIES} {what}"),
    )
}
