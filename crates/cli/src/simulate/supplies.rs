//! One supply slot of a simulated printer: pages printed with the installed supply, the level
//! and state derived from them, and replacement.

use super::models::SupplySpec;
use printfleet_protocol::messages::{Supply, SupplyState};

/// At or below this level a supply is `low`.
const LOW_PERCENT: u8 = 15;
/// At or below this level a supply is `very_low`.
const VERY_LOW_PERCENT: u8 = 5;

#[derive(Debug, Clone)]
pub struct SimSupply {
    pub spec: &'static SupplySpec,
    /// Pages printed with the supply now installed.
    pages: u64,
}

impl SimSupply {
    pub fn new(spec: &'static SupplySpec, pages: u64) -> Self {
        Self { spec, pages }
    }

    #[cfg(test)]
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Percent left, rounded up: 0 only when the rated pages are used up.
    pub fn level(&self) -> u8 {
        let capacity = self.spec.capacity_pages.max(1);
        let left = capacity.saturating_sub(self.pages);
        u8::try_from(left.saturating_mul(100).div_ceil(capacity)).unwrap_or(100)
    }

    pub fn state(&self) -> SupplyState {
        match self.level() {
            0 => SupplyState::Empty,
            l if l <= VERY_LOW_PERCENT => SupplyState::VeryLow,
            l if l <= LOW_PERCENT => SupplyState::Low,
            _ => SupplyState::Ok,
        }
    }

    /// Prints `pages` with the supply; returns the new state when it changed.
    pub fn consume(&mut self, pages: u64) -> Option<SupplyState> {
        let before = self.state();
        self.pages = self.pages.saturating_add(pages);
        let after = self.state();
        (after != before).then_some(after)
    }

    /// A new supply goes in: full again, its page count restarts.
    pub fn replace(&mut self) {
        self.pages = 0;
    }

    pub fn report(&self) -> Supply {
        Supply {
            id: self.spec.id.to_string(),
            kind: self.spec.kind,
            colour: self.spec.colour.map(str::to_string),
            level_percent: Some(self.level()),
            capacity_pages: Some(self.spec.capacity_pages),
            pages: Some(self.pages),
            part_number: Some(self.spec.part_number.to_string()),
            state: self.state(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::models::MODELS;

    #[test]
    fn level_and_state_follow_the_pages() {
        let spec = &MODELS[0].supplies[0];
        let mut s = SimSupply::new(spec, 0);
        assert_eq!((s.level(), s.state()), (100, SupplyState::Ok));
        let cap = spec.capacity_pages;
        assert_eq!(s.consume(cap * 86 / 100), Some(SupplyState::Low));
        assert_eq!(s.consume(cap * 10 / 100), Some(SupplyState::VeryLow));
        assert_eq!(s.consume(cap), Some(SupplyState::Empty));
        assert_eq!(s.level(), 0);
        assert_eq!(s.consume(10), None);
        s.replace();
        assert_eq!((s.level(), s.pages(), s.state()), (100, 0, SupplyState::Ok));
        assert_eq!(s.report().part_number.as_deref(), Some(spec.part_number));
    }
}
