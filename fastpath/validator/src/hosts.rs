//! The table of host-pair tunnels, keyed by the pair as one integer (IPv4: peer << 32 | local)
//! so hashing it is a single round of foldhash. hashbrown's dense control bytes stay cached even
//! when the table itself does not, which measured faster than a flat open-addressing table with
//! 32-byte slots at 100 000 tunnels.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// A key of the host-pair table.
pub(crate) trait HostKey: Copy + Eq + Default + std::hash::Hash {}

impl HostKey for u64 {}
impl HostKey for (u128, u128) {}

/// A map from host-pair keys to values, for the hot path.
#[derive(Clone, Debug)]
pub(crate) struct HostTable<K, V> {
    map: HashMap<K, V, RandomState>,
}

impl<K: HostKey, V: Copy> Default for HostTable<K, V> {
    fn default() -> Self {
        HostTable {
            map: HashMap::default(),
        }
    }
}

impl<K: HostKey, V: Copy> HostTable<K, V> {
    /// The value for `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        self.map.get(&key)
    }

    /// Removes every key, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Makes room for `room` more keys unless `need` more fit already.
    pub(crate) fn reserve(&mut self, need: usize, room: usize) {
        if self.map.capacity() - self.map.len() < need {
            self.map.reserve(room);
        }
    }

    /// The value for `key`, inserting `fresh` first when absent.
    pub(crate) fn get_or_insert(&mut self, key: K, fresh: V) -> &mut V {
        self.map.entry(key).or_insert(fresh)
    }

    /// Every key and its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.map.iter().map(|(k, v)| (*k, v))
    }
}
