//! Heartbeat counters must never repeat, across restarts too. Firmware persists a reservation
//! (e.g. the next 1000 values in flash) before using it; this trait is that seam.

/// Hands out strictly increasing counters, never 0, never the same twice for one key.
pub trait CounterSource: Send {
    fn next(&mut self) -> u64;
}

/// In memory only: right for a simulator that re-enrols on every start (new keys, counters
/// restart at 1), wrong for a real printer.
#[derive(Debug, Default)]
pub struct MemoryCounter(u64);

impl CounterSource for MemoryCounter {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_start_at_one_and_increase() {
        let mut c = MemoryCounter::default();
        assert_eq!((c.next(), c.next(), c.next()), (1, 2, 3));
    }
}
