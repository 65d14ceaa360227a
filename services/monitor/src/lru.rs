//! A bounded map that forgets its least recently used entries, so that a flood of
//! high-cardinality services, operations or fingerprints cannot exhaust memory.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A map with at most `cap` entries; beyond it the least recently touched eighth goes.
#[derive(Debug, Clone)]
pub struct Lru<K, V> {
    map: HashMap<K, (u64, V)>,
    tick: u64,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V> Lru<K, V> {
    /// An empty map holding at most `cap` entries (at least one).
    pub fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::new(),
            tick: 0,
            cap: cap.max(1),
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The value for `k`, marking it used.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let t = self.next_tick();
        self.map.get_mut(k).map(|(tick, v)| {
            *tick = t;
            v
        })
    }

    /// The value for `k` without marking it used.
    pub fn peek<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.get(k).map(|(_, v)| v)
    }

    /// Whether `k` is present (does not mark it used).
    pub fn contains<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.contains_key(k)
    }

    /// Inserts or replaces `k`, evicting the least recently used entries when full.
    pub fn insert(&mut self, k: K, v: V) {
        let t = self.next_tick();
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            self.evict();
        }
        self.map.insert(k, (t, v));
    }

    /// The value for `k`, created with `f` when absent; marks it used.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        let t = self.next_tick();
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            self.evict();
        }
        let slot = self.map.entry(k).or_insert_with(|| (t, f()));
        slot.0 = t;
        &mut slot.1
    }

    /// Removes `k`.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.remove(k).map(|(_, v)| v)
    }

    /// Keeps only the entries for which `f` is true.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|k, (_, v)| f(k, v));
    }

    /// Entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (_, v))| (k, v))
    }

    /// Mutable values in no particular order (not marked used).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.map.values_mut().map(|(_, v)| v)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops the least recently used eighth (at least one entry), so that eviction's
    /// linear scan is paid once per many inserts.
    fn evict(&mut self) {
        let n = (self.cap / 8).max(1);
        let mut ticks: Vec<u64> = self.map.values().map(|(t, _)| *t).collect();
        if ticks.is_empty() {
            return;
        }
        let idx = (n - 1).min(ticks.len() - 1);
        let (_, cut, _) = ticks.select_nth_unstable(idx);
        let cut = *cut;
        self.map.retain(|_, (t, _)| *t > cut);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut l = Lru::new(8);
        for i in 0..8 {
            l.insert(i, i);
        }
        // Touch 0 so that 1 is the oldest.
        assert_eq!(l.get_mut(&0), Some(&mut 0));
        l.insert(100, 100);
        assert_eq!(l.len(), 8);
        assert!(l.contains(&0));
        assert!(!l.contains(&1));
        assert!(l.contains(&100));
        *l.get_or_insert_with(200, || 5) += 1;
        assert_eq!(l.peek(&200), Some(&6));
        assert_eq!(l.len(), 8);
    }
}
