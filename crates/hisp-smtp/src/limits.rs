//! Limits that keep one client from taking what every client shares: the
//! connection slots of a listener, counted per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// The address a client is counted under: an IPv4 address as it is (also
/// when it comes IPv4-mapped), an IPv6 address by its /64 prefix, since a
/// single host is commonly given a whole /64 and could otherwise rotate
/// through it.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The open sessions of one listener by client address ([`client_key`]).
#[derive(Debug, Default)]
pub(crate) struct AddressSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One session's place in [`AddressSlots`], given back when dropped (also
/// when the session task panics or is aborted).
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<AddressSlots>,
    key: IpAddr,
}

impl AddressSlots {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert or remove.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a session from `ip`, unless `max` sessions from its
    /// address are already open.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let key = client_key(ip);
        let mut open = self.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }

    /// How many sessions from `ip`'s address are open.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        self.lock().get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn an_address_gets_at_most_max_slots_and_a_dropped_slot_is_free_again() {
        let slots = Arc::new(AddressSlots::default());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let mut held: Vec<Slot> = (0..3).map(|_| slots.take(one, 3).unwrap()).collect();
        assert!(slots.take(one, 3).is_none());
        let other = slots.take(two, 3);
        assert!(other.is_some());
        drop(held.pop());
        assert_eq!(slots.open(one), 2);
        assert!(slots.take(one, 3).is_some());
        drop(other);
        assert_eq!(slots.open(two), 0);
    }
}
