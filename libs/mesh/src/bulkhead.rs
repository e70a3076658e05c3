//! Bulkheads: what one key (a client address, an email, a user) may hold at once, so that one
//! caller's load is bounded by what it is entitled to.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A number of units (bytes, calls) each key may hold at once.
#[derive(Debug)]
pub struct PerKey<K> {
    each: usize,
    held: Arc<Mutex<HashMap<K, Arc<Semaphore>>>>,
}

/// Units a key holds; given back when dropped (and the key forgotten once it holds nothing).
#[derive(Debug)]
pub struct Held<K: Hash + Eq> {
    permit: Option<OwnedSemaphorePermit>,
    held: Arc<Mutex<HashMap<K, Arc<Semaphore>>>>,
    key: K,
    each: usize,
}

impl<K: Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(&self.key).is_some_and(|s| s.available_permits() == self.each && Arc::strong_count(s) == 1) {
            held.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    /// Each key may hold `each` units.
    pub fn new(each: usize) -> Self {
        Self { each, held: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Takes `units` for `key` now, or None when it holds too many already.
    pub fn try_take(&self, key: &K, units: u32) -> Option<Held<K>> {
        let semaphore = {
            let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
            held.entry(key.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.each))).clone()
        };
        let permit = semaphore.try_acquire_many_owned(units).ok();
        let held = Held { permit, held: self.held.clone(), key: key.clone(), each: self.each };
        // A refusal gives nothing back but still forgets a key that holds nothing.
        held.permit.is_some().then_some(held)
    }

    /// How many keys hold something.
    pub fn keys(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// One turn at a time per key (a user) in this process: a key's callers wait here, cheaply
/// and in order, rather than all at once on a lock in the database, where a long queue slows
/// every holder and takes pooled connections from other keys. A lock in the database still
/// orders callers across processes. Keys share a fixed number of stripes, so two keys now and
/// then wait for each other; nothing is kept per key.
#[derive(Debug)]
pub struct Turns {
    stripes: Box<[tokio::sync::Mutex<()>]>,
}

impl Turns {
    /// Stripes by default.
    pub const STRIPES: usize = 256;

    /// Turns over `stripes` stripes (at least one).
    pub fn new(stripes: usize) -> Self {
        Self { stripes: (0..stripes.max(1)).map(|_| tokio::sync::Mutex::new(())).collect() }
    }

    /// Waits for the key's turn; it lasts as long as the guard.
    pub async fn take<K: Hash + ?Sized>(&self, key: &K) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        self.stripes[(hash % self.stripes.len() as u64) as usize].lock().await
    }
}

impl Default for Turns {
    fn default() -> Self {
        Self::new(Self::STRIPES)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share_gets_it_back_and_is_forgotten_when_it_holds_nothing() {
        let limits = PerKey::new(10);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = limits.try_take(&a, 6).expect("within the share");
        assert!(limits.try_take(&a, 5).is_none(), "past a's share");
        let other = limits.try_take(&b, 10).expect("b has its own");
        drop(first);
        assert!(limits.try_take(&a, 10).is_some());
        assert_eq!(limits.keys(), 1, "a holds nothing and is forgotten; b still holds");
        drop(other);
        assert_eq!(limits.keys(), 0, "nothing held, nothing kept");
    }

    #[tokio::test]
    async fn a_keys_next_turn_waits_until_the_one_before_ends() {
        let turns = Turns::new(4);
        let first = turns.take("user").await;
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), turns.take("user")).await;
        assert!(waited.is_err(), "the second turn waits for the first");
        drop(first);
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take("user")).await;
        assert!(next.is_ok(), "the turn is free once the first ends");
    }
}
