//! The table of host-pair tunnels, keyed by the pair as one integer (IPv4: the pair's 8 bytes as
//! the wire carries them, `Family::key` in `policy.rs`).
//!
//! Cuckoo hashing with two hash functions and one key per slot (Pagh and Rodler, "Cuckoo
//! Hashing", 2001): every key sits in one of its two slots, so a lookup reads both slots,
//! compares both keys and picks the one that matches — a fixed amount of work with no loop and
//! no branch on what it finds. The classifier's straight path relies on that: a frame of an
//! unknown tunnel costs the same as a frame of a known one, and the branch predictor is not
//! asked to guess which it is. Inserting (when a policy is built, never per frame) moves keys
//! between their two slots until one lands in a vacant slot; when that runs in a circle, the
//! table is rebuilt under fresh hash seeds, or at twice the size.
//!
//! A vacant slot holds a key whose two slots are both other slots ([`Vacancy`]), so no lookup
//! can match it there and a lookup never has to ask whether a slot is in use. The table is never
//! empty of slots, so a lookup never has to ask that either.

/// A key of the host-pair table.
pub(crate) trait HostKey: Copy + Eq {
    /// The key's hash under `seed` (two 64-bit words).
    fn hash(self, seed: [u64; 2]) -> u64;
    /// The `n`-th candidate key for vacant slots (see [`Vacancy`]).
    fn candidate(n: u64) -> Self;
}

/// The folded multiply of foldhash and wyhash: the 128-bit product's halves XORed, so every bit
/// of either factor reaches the low bits the table indexes by.
#[inline(always)]
// The two halves of the 128-bit product are taken apart on purpose.
#[allow(clippy::cast_possible_truncation)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl HostKey for u64 {
    #[inline(always)]
    fn hash(self, seed: [u64; 2]) -> u64 {
        folded_multiply(self ^ seed[0], seed[1])
    }
    fn candidate(n: u64) -> u64 {
        n
    }
}

impl HostKey for (u128, u128) {
    #[inline(always)]
    // Each address is hashed as its two 64-bit halves.
    #[allow(clippy::cast_possible_truncation)]
    fn hash(self, seed: [u64; 2]) -> u64 {
        let (peer, local) = self;
        let h = folded_multiply((peer as u64) ^ seed[0], ((peer >> 64) as u64) ^ seed[1]);
        let h = folded_multiply((local as u64) ^ h, ((local >> 64) as u64) ^ seed[1]);
        folded_multiply(h ^ seed[0], seed[1])
    }
    fn candidate(n: u64) -> (u128, u128) {
        (u128::from(n), 0)
    }
}

/// One slot: a key and its value, or a vacancy.
#[derive(Clone, Copy, Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
}

/// The fewest slots a table has (a power of two).
const MIN_SLOTS: usize = 8;
/// The most keys a table holds per 16 slots. Two-choice cuckoo hashing places every key with
/// high probability below half full; 7/16 leaves room.
const LOAD_PER_16: usize = 7;
/// Cuckoo moves tried for one insertion before the table is rebuilt.
const MAX_MOVES: usize = 128;
/// Fresh seeds tried at one size before the table doubles.
const SEED_TRIES: u64 = 8;
/// Candidate keys looked at for the two vacancy keys before the seeds are given up.
const VACANCY_CANDIDATES: u64 = 256;

/// The keys `slots` slots hold within the load limit.
fn capacity(slots: usize) -> usize {
    slots / 16 * LOAD_PER_16 + slots % 16 * LOAD_PER_16 / 16
}

/// The smallest power-of-two slot count that holds `keys` within the load limit.
fn slots_for(keys: usize) -> usize {
    keys.saturating_mul(16)
        .div_ceil(LOAD_PER_16)
        .max(MIN_SLOTS)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX / 2 + 1)
}

/// The `n`-th hash seed: splitmix64 over `n`, so every table is built the same way from the
/// same keys.
fn seeds(n: u64) -> [u64; 2] {
    let mut state = n.wrapping_mul(4).wrapping_add(0x243F_6A88_85A3_08D3);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    // The multiplier is odd, so the product keeps every bit of the key.
    [next(), next() | 1]
}

/// The low bits of a hash, as many as an index has (a table has fewer than 2^32 slots).
#[inline(always)]
// Only the low bits are wanted.
#[allow(clippy::cast_possible_truncation)]
fn low_bits(h: u64) -> usize {
    h as usize
}

/// The hashing of one table: its seed and its size.
#[derive(Clone, Copy, Debug)]
struct Hashing {
    seed: [u64; 2],
    mask: usize,
}

impl Hashing {
    /// The two slots `key` may sit in: the low and the high half of one hash (a table has
    /// fewer than 2^32 slots).
    #[inline(always)]
    fn slots<K: HostKey>(&self, key: K) -> (usize, usize) {
        let h = key.hash(self.seed);
        (low_bits(h) & self.mask, low_bits(h >> 32) & self.mask)
    }

    /// True when `key` may sit in slot `at`.
    fn may_sit<K: HostKey>(&self, key: K, at: usize) -> bool {
        let (a, b) = self.slots(key);
        a == at || b == at
    }
}

/// The keys vacant slots hold: two keys whose slots are four different ones, so every slot is
/// the slot of at most one of them and the other can stand in it without ever being found there.
#[derive(Clone, Copy, Debug)]
struct Vacancy<K> {
    keys: [K; 2],
}

impl<K: HostKey> Vacancy<K> {
    /// The first two candidate keys with four different slots under `h`, if found soon.
    fn find(h: &Hashing) -> Option<Vacancy<K>> {
        let slots_of = |n| {
            let (a, b) = h.slots(K::candidate(n));
            (a != b).then_some([a, b])
        };
        let mut first: Option<(K, [usize; 2])> = None;
        for n in 0..VACANCY_CANDIDATES {
            let Some(s) = slots_of(n) else { continue };
            match first {
                None => first = Some((K::candidate(n), s)),
                Some((k, f)) if !f.contains(&s[0]) && !f.contains(&s[1]) => {
                    return Some(Vacancy {
                        keys: [k, K::candidate(n)],
                    })
                }
                Some(_) => {}
            }
        }
        None
    }

    /// The key a vacant slot `at` holds.
    fn key_for(&self, h: &Hashing, at: usize) -> K {
        if h.may_sit(self.keys[0], at) {
            self.keys[1]
        } else {
            self.keys[0]
        }
    }
}

/// A map from host-pair keys to values, for the hot path.
#[derive(Clone, Debug)]
pub(crate) struct HostTable<K, V> {
    /// A power of two of them, never fewer than [`MIN_SLOTS`].
    slots: Vec<Slot<K, V>>,
    hashing: Hashing,
    vacancy: Vacancy<K>,
    /// The seed number of `hashing` (see [`seeds`]).
    seed_no: u64,
    len: usize,
    /// Keys announced by [`HostTable::reserve`]: the next growth makes room for them at once.
    planned: usize,
    /// The value vacant slots hold.
    blank: V,
}

impl<K: HostKey, V: Copy + Default> Default for HostTable<K, V> {
    fn default() -> Self {
        let mut t = HostTable {
            slots: Vec::new(),
            hashing: Hashing {
                seed: seeds(0),
                mask: MIN_SLOTS - 1,
            },
            vacancy: Vacancy {
                keys: [K::candidate(0); 2],
            },
            seed_no: 0,
            len: 0,
            planned: 0,
            blank: V::default(),
        };
        let _placed = t.rebuild(MIN_SLOTS, &[]);
        t
    }
}

impl<K: HostKey, V: Copy + Default> HostTable<K, V> {
    /// The value for `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        let (v, hit) = self.probe(key);
        hit.then_some(v)
    }

    /// One probe for `key`: both of its slots are read and compared, and the value of the one
    /// that holds it is returned with `true` — without a loop or a branch on the outcome. When
    /// neither holds it, some slot's value is returned with `false`, for the caller to weigh
    /// without a branch either.
    #[inline(always)]
    pub(crate) fn probe(&self, key: K) -> (&V, bool) {
        // The slot count is a power of two: masked by it, both indices are in bounds. The test
        // of 0 (never true) lets the compiler see that, so no bounds check is left.
        let n = self.slots.len();
        if n == 0 {
            return (&self.blank, false);
        }
        let h = key.hash(self.hashing.seed);
        let (Some(a), Some(b)) = (
            self.slots.get(low_bits(h) & (n - 1)),
            self.slots.get(low_bits(h >> 32) & (n - 1)),
        ) else {
            return (&self.blank, false);
        };
        let found = if a.key == key { a } else { b };
        (&found.value, found.key == key)
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every key and its value, in slot order: the slots whose key hashes to them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &V)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(at, s)| self.hashing.may_sit(s.key, *at))
            .map(|(_, s)| (s.key, &s.value))
    }

    /// Removes every key, keeping the memory.
    pub(crate) fn clear(&mut self) {
        let (h, v, blank) = (self.hashing, self.vacancy, self.blank);
        for (at, s) in self.slots.iter_mut().enumerate() {
            *s = Slot {
                key: v.key_for(&h, at),
                value: blank,
            };
        }
        self.len = 0;
    }

    /// Makes room for `room` more keys unless `need` more fit already. Only address space is
    /// taken now; the slots are written when the keys come (a family without host pairs never
    /// writes them).
    pub(crate) fn reserve(&mut self, need: usize, room: usize) {
        if capacity(self.slots.len()).saturating_sub(self.len) < need {
            self.planned = self.len.saturating_add(room);
            let slots = slots_for(self.planned);
            self.slots
                .reserve_exact(slots.saturating_sub(self.slots.len()));
        }
    }

    /// The value for `key`, inserting `fresh` first when absent.
    pub(crate) fn get_or_insert(&mut self, key: K, fresh: V) -> &mut V {
        if self.get(key).is_none() {
            self.insert_new(key, fresh);
        }
        let (a, b) = self.hashing.slots(key);
        let at = if self.slots.get(a).is_some_and(|s| s.key == key) {
            a
        } else {
            b
        };
        match self.slots.get_mut(at) {
            Some(s) => &mut s.value,
            // Unreachable: `key` was just placed in one of its slots (only a table past half the
            // address space could not grow to take it). Rather than panic, hand out the value
            // of vacant slots, which a probe only returns with `false`.
            None => &mut self.blank,
        }
    }

    /// Inserts a key that is not in the table.
    fn insert_new(&mut self, key: K, value: V) {
        let want = (self.len + 1).max(self.planned);
        if want > capacity(self.slots.len()) {
            self.planned = 0;
            self.rebuild(slots_for(want), &[Slot { key, value }]);
            return;
        }
        if let Some(homeless) = self.place(Slot { key, value }) {
            let slots = self.slots.len();
            self.rebuild(slots, &[homeless]);
        } else {
            self.len += 1;
        }
    }

    /// Cuckoo insertion: puts `slot` in its first slot, moves what was there to that key's
    /// other slot, and so on until a vacant slot takes a key. Returns the key left without a
    /// slot when that takes too long.
    fn place(&mut self, mut slot: Slot<K, V>) -> Option<Slot<K, V>> {
        let h = self.hashing;
        let mut at = h.slots(slot.key).0;
        for _ in 0..MAX_MOVES {
            let Some(here) = self.slots.get_mut(at) else {
                return Some(slot);
            };
            std::mem::swap(here, &mut slot);
            if !h.may_sit(slot.key, at) {
                // The slot was vacant: what came out is its vacancy key.
                return None;
            }
            let (a, b) = h.slots(slot.key);
            at = if a == at { b } else { a };
        }
        Some(slot)
    }

    /// Rebuilds the table with `slots` slots (or more) holding its keys and `extra`, under the
    /// next seeds that place them all; doubles the size after [`SEED_TRIES`] seeds fail.
    fn rebuild(&mut self, mut slots: usize, extra: &[Slot<K, V>]) -> bool {
        let mut keys: Vec<Slot<K, V>> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(at, s)| self.hashing.may_sit(s.key, *at))
            .map(|(_, s)| *s)
            .collect();
        keys.extend_from_slice(extra);
        loop {
            for _ in 0..SEED_TRIES {
                self.seed_no = self.seed_no.wrapping_add(1);
                if self.try_build(slots, &keys) {
                    return true;
                }
            }
            match slots.checked_mul(2) {
                Some(s) => slots = s,
                None => return false,
            }
        }
    }

    /// Fills `slots` vacant slots under seed number `self.seed_no` and places `keys`; false
    /// (and the table left to be built again) when one does not fit.
    fn try_build(&mut self, slots: usize, keys: &[Slot<K, V>]) -> bool {
        let hashing = Hashing {
            seed: seeds(self.seed_no),
            mask: slots - 1,
        };
        let Some(vacancy) = Vacancy::find(&hashing) else {
            return false;
        };
        self.hashing = hashing;
        self.vacancy = vacancy;
        self.slots.clear();
        let blank = self.blank;
        self.slots.extend((0..slots).map(|at| Slot {
            key: vacancy.key_for(&hashing, at),
            value: blank,
        }));
        self.len = 0;
        for s in keys {
            if self.place(*s).is_some() {
                return false;
            }
            self.len += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_nothing_else_through_growth() {
        let mut t: HostTable<u64, u32> = HostTable::default();
        for i in 0..20_000u64 {
            let key = (0x6440_0000 + i) << 32 | 0xC633_640A;
            *t.get_or_insert(key, 0) = u32::try_from(i).unwrap() + 1;
        }
        assert_eq!(t.len(), 20_000);
        for i in 0..20_000u64 {
            let key = (0x6440_0000 + i) << 32 | 0xC633_640A;
            assert_eq!(t.get(key), Some(&(u32::try_from(i).unwrap() + 1)));
            assert_eq!(t.get(key + 1), None);
        }
        // Vacant slots match nothing, whatever key is asked for.
        for n in 0..1000 {
            assert_eq!(t.get(n), None);
        }
        let mut all: Vec<u32> = t.iter().map(|(_, v)| *v).collect();
        all.sort_unstable();
        assert_eq!(all, (1..=20_000).collect::<Vec<_>>());
        t.clear();
        assert_eq!((t.len(), t.iter().count()), (0, 0));
        assert_eq!(t.get((0x6440_0000 << 32) | 0xC633_640A), None);
    }

    #[test]
    fn small_keys_that_vacancies_are_made_of_are_found_too() {
        let mut t: HostTable<u64, u8> = HostTable::default();
        for k in 0..300u64 {
            *t.get_or_insert(k, 0) = 1;
        }
        assert!((0..300u64).all(|k| t.get(k) == Some(&1)));
        assert!((300..600u64).all(|k| t.get(k).is_none()));
        let mut v6: HostTable<(u128, u128), u8> = HostTable::default();
        for k in 0..300u128 {
            *v6.get_or_insert((k, k), 0) = 2;
            *v6.get_or_insert((k, 0), 0) = 3;
        }
        assert!((0..300u128).all(|k| v6.get((k, 0)) == Some(&3)));
        assert!((1..300u128).all(|k| v6.get((k, k)) == Some(&2)));
        assert_eq!(v6.get((0, 1)), None);
        assert_eq!(v6.iter().count(), 599);
    }

    #[test]
    fn reserve_takes_no_slots_until_keys_come() {
        let mut t: HostTable<(u128, u128), u32> = HostTable::default();
        t.reserve(100_000, 110_000);
        assert_eq!(t.slots.len(), MIN_SLOTS);
        *t.get_or_insert((1, 2), 0) = 7;
        assert!(t.slots.len() >= slots_for(110_000));
        assert_eq!(t.get((1, 2)), Some(&7));
    }
}
