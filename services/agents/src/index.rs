//! The active strategies, held in memory and indexed by what they match: the player's id (a
//! strategy that names no players is under "any player") and a set of rarities. A listing finds
//! its strategies by two lookups instead of a call to the strategy service. What is held is
//! checked against the strategy service's revision before each use (one small call), and read
//! again whole when the revision moved on.

use std::collections::HashMap;
use std::sync::Arc;

use fastbreak_proto::marketplace::v1 as market;
use fastbreak_proto::strategy::v1 as strategy;
use tokio::sync::Mutex;

/// The strategies that were active at one revision, highest priority first.
#[derive(Debug, Default)]
pub(crate) struct Indexed {
    /// The revision they were read at.
    pub revision: i64,
    /// Every active strategy except arbitrage mode's, highest priority first (then by id).
    pub strategies: Vec<strategy::Strategy>,
    /// Places in `strategies` of those that name a player, by player, ascending.
    by_player: HashMap<String, Vec<u32>>,
    /// Places of those that name no player, ascending.
    any_player: Vec<u32>,
    /// Per strategy, the rarities it buys as bits (`1 << rarity`); 0 means every rarity.
    rarities: Vec<u32>,
}

/// The players a strategy names (empty: every player) and its rarities.
fn filters(strategy: &strategy::Strategy) -> (&[String], &[i32]) {
    match &strategy.parameters {
        Some(strategy::strategy::Parameters::PostGameSpike(p)) => (&p.player_ids, &p.rarities),
        Some(strategy::strategy::Parameters::RookieRisers(p)) => (&[], &p.rarities),
        _ => (&[], &[]),
    }
}

impl Indexed {
    /// Indexes `strategies` read at `revision` (arbitrage mode's are left out: they act on
    /// arbitrage opportunities, not listings).
    pub(crate) fn new(revision: i64, mut strategies: Vec<strategy::Strategy>) -> Self {
        strategies.retain(|s| !matches!(s.parameters, Some(strategy::strategy::Parameters::ArbitrageMode(_))));
        strategies.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.strategy_id.cmp(&b.strategy_id)));
        let mut indexed = Self { revision, ..Self::default() };
        for (place, strategy) in strategies.iter().enumerate() {
            let place = u32::try_from(place).unwrap_or(u32::MAX);
            let (players, rarities) = filters(strategy);
            if players.is_empty() {
                indexed.any_player.push(place);
            } else {
                for player in players {
                    let places = indexed.by_player.entry(player.clone()).or_default();
                    if places.last() != Some(&place) {
                        places.push(place);
                    }
                }
            }
            indexed.rarities.push(rarities.iter().filter(|r| (0..32).contains(*r)).fold(0, |bits, r| bits | 1 << r));
        }
        indexed.strategies = strategies;
        indexed
    }

    /// The strategies a listing of `moment` may be bought by, highest priority first: those that
    /// name its player or none, and its rarity or none. Without a moment, every strategy.
    pub(crate) fn matching(&self, moment: Option<&market::Moment>) -> Vec<&strategy::Strategy> {
        let Some(moment) = moment else { return self.strategies.iter().collect() };
        let named = self.by_player.get(&moment.player_id).map_or(&[][..], Vec::as_slice);
        let bit = if (0..32).contains(&moment.rarity) { 1u32 << moment.rarity } else { 0 };
        let fits = |place: u32| {
            let bits = self.rarities[place as usize];
            bits == 0 || bits & bit != 0
        };
        // Both lists ascend: merged, they keep the priority order.
        let (mut a, mut b) = (named.iter().peekable(), self.any_player.iter().peekable());
        let mut found = Vec::new();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            if let Some(&place) = next
                && fits(place)
            {
                found.push(&self.strategies[place as usize]);
            }
        }
        found
    }
}

/// What the engine holds of the active strategies, shared by its clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrategyIndex {
    held: Arc<Mutex<Option<Arc<Indexed>>>>,
}

impl StrategyIndex {
    /// The strategies held, if they were read at `revision`.
    pub(crate) async fn at(&self, revision: i64) -> Option<Arc<Indexed>> {
        self.held.lock().await.as_ref().filter(|held| held.revision == revision).cloned()
    }

    /// Holds `indexed` (unless what is held is newer).
    pub(crate) async fn hold(&self, indexed: Arc<Indexed>) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_none_or(|h| h.revision <= indexed.revision) {
            *held = Some(indexed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spike(id: &str, priority: i32, players: &[&str], rarities: &[i32]) -> strategy::Strategy {
        strategy::Strategy {
            strategy_id: id.to_owned(),
            priority,
            parameters: Some(strategy::strategy::Parameters::PostGameSpike(strategy::PostGameSpikeParameters {
                player_ids: players.iter().map(|p| (*p).to_owned()).collect(),
                rarities: rarities.to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn moment(player: &str, rarity: i32) -> market::Moment {
        market::Moment { player_id: player.to_owned(), rarity, ..Default::default() }
    }

    #[test]
    fn a_listing_finds_the_strategies_of_its_player_and_rarity_by_priority() {
        let rookies = strategy::Strategy {
            strategy_id: "r".to_owned(),
            priority: 60,
            parameters: Some(strategy::strategy::Parameters::RookieRisers(strategy::RookieRisersParameters {
                rarities: vec![2],
                ..Default::default()
            })),
            ..Default::default()
        };
        let arbitrage = strategy::Strategy {
            strategy_id: "x".to_owned(),
            priority: 100,
            parameters: Some(strategy::strategy::Parameters::ArbitrageMode(Default::default())),
            ..Default::default()
        };
        let indexed = Indexed::new(
            7,
            vec![
                spike("a", 10, &["lebron"], &[]),
                spike("b", 90, &["lebron", "curry"], &[1]),
                spike("c", 50, &[], &[]),
                rookies,
                arbitrage,
                spike("d", 50, &["curry"], &[]),
                spike("e", 10, &["lebron"], &[]),
            ],
        );
        let ids = |found: Vec<&strategy::Strategy>| found.iter().map(|s| s.strategy_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(indexed.matching(Some(&moment("lebron", 1)))), ["b", "c", "a", "e"]);
        assert_eq!(ids(indexed.matching(Some(&moment("lebron", 2)))), ["r", "c", "a", "e"]);
        assert_eq!(ids(indexed.matching(Some(&moment("curry", 2)))), ["r", "c", "d"]);
        assert_eq!(ids(indexed.matching(Some(&moment("nobody", 3)))), ["c"]);
        assert_eq!(ids(indexed.matching(None)), ["b", "r", "c", "d", "a", "e"]);
        assert_eq!(indexed.revision, 7);
    }
}
