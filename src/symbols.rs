//! The catalogue's symbols, remembered by the instance so that checking a symbol (as every
//! `priceUpdated` subscribe does) costs no round trip. One query loads them all; a symbol
//! the copy lacks reloads it, at most once per `MIN_RELOAD` however many requests
//! ask, so a flood of subscribes, known symbols or not, cannot queue on the PostgreSQL
//! pool. Copies older than `MAX_AGE` are reloaded on their next use.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use crate::{error::Error, store::Stores};

/// How long a loaded copy is trusted.
const MAX_AGE: Duration = Duration::from_secs(30);
/// The least time between two reloads caused by unknown symbols.
const MIN_RELOAD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SymbolDirectory {
    copy: RwLock<Option<(Instant, Arc<HashSet<String>>)>>,
    reloading: tokio::sync::Mutex<()>,
}

impl SymbolDirectory {
    /// The position of the first of `wanted` that is not in the catalogue, if any.
    pub async fn first_unknown(
        &self,
        stores: &Stores,
        wanted: &[String],
    ) -> Result<Option<usize>, Error> {
        let missing = |set: &HashSet<String>| wanted.iter().position(|s| !set.contains(s));
        if let Some((at, set)) = self.current() {
            if at.elapsed() < MAX_AGE && missing(&set).is_none() {
                return Ok(None);
            }
        }
        let _one_at_a_time = self.reloading.lock().await;
        // Another request may have reloaded while this one waited.
        if let Some((at, set)) = self.current() {
            let fresh = at.elapsed() < MAX_AGE;
            if fresh && (missing(&set).is_none() || at.elapsed() < MIN_RELOAD) {
                return Ok(missing(&set));
            }
        }
        let symbols = stores.postgres().catalogued_symbols().await?;
        let set: Arc<HashSet<String>> = Arc::new(symbols.into_iter().collect());
        let found = missing(&set);
        *self.copy.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), set));
        Ok(found)
    }

    /// Drops the copy, so the next check reloads (for writers that add to the catalogue).
    pub fn forget(&self) {
        *self.copy.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn current(&self) -> Option<(Instant, Arc<HashSet<String>>)> {
        self.copy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
