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
}
