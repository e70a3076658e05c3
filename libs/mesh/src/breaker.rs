//! The circuit breaker of one endpoint, as a state machine driven by the caller's clock (so
//! that tests run it on a paused clock). It opens only on what is the endpoint's own fault,
//! lets one trial call through per cooldown while open, and ignores outcomes of calls admitted
//! before it last opened: a late success from before the outage does not close it.

use std::time::Duration;

use tokio::time::Instant;

/// What a finished call says about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered as a working server does (any status but its own UNAVAILABLE,
    /// including UNAVAILABLE because one of *its* dependencies is down).
    Healthy,
    /// The endpoint's fault: a transport error, a refused connection, or no answer within the
    /// configured call timeout.
    Fault,
    /// Says nothing about the endpoint, such as the caller's own short deadline running out.
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { faults: u32 },
    Open { until: Instant },
    HalfOpen { next_trial: Instant },
}

/// A call let through, to be reported back with [`CircuitBreaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    generation: u64,
}

/// One endpoint's breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: State,
    /// Grows each time the breaker opens.
    generation: u64,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` faults in a row and keeps its endpoint out
    /// for `cooldown` before a trial call.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold: threshold.max(1), cooldown, state: State::Closed { faults: 0 }, generation: 0 }
    }

    /// Lets a call through, or not: always while closed; while open, one trial call per
    /// cooldown.
    pub fn admit(&mut self, now: Instant) -> Option<Admission> {
        match self.state {
            State::Closed { .. } => {}
            State::Open { until } | State::HalfOpen { next_trial: until } if now >= until => {
                self.state = State::HalfOpen { next_trial: now + self.cooldown };
            }
            State::Open { .. } | State::HalfOpen { .. } => return None,
        }
        Some(Admission { generation: self.generation })
    }

    /// Reports how an admitted call ended.
    pub fn record(&mut self, admission: Admission, outcome: Outcome, now: Instant) {
        if admission.generation != self.generation {
            // Admitted before the breaker last opened: old news either way.
            return;
        }
        match (outcome, self.state) {
            (Outcome::Neutral, _) => {}
            (Outcome::Healthy, _) => self.state = State::Closed { faults: 0 },
            (Outcome::Fault, State::Closed { faults }) if faults + 1 < self.threshold => {
                self.state = State::Closed { faults: faults + 1 };
            }
            (Outcome::Fault, _) => {
                self.generation += 1;
                self.state = State::Open { until: now + self.cooldown };
            }
        }
    }

    /// True while calls are kept out (open, or half-open between trials).
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(5);

    fn faults(breaker: &mut CircuitBreaker, count: usize) {
        for _ in 0..count {
            let admitted = breaker.admit(Instant::now()).expect("closed");
            breaker.record(admitted, Outcome::Fault, Instant::now());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_the_threshold_and_lets_one_trial_through_per_cooldown() {
        let mut breaker = CircuitBreaker::new(3, COOLDOWN);
        faults(&mut breaker, 2);
        assert!(!breaker.is_open());
        faults(&mut breaker, 1);
        assert!(breaker.is_open());
        assert_eq!(breaker.admit(Instant::now()), None);

        tokio::time::advance(COOLDOWN).await;
        let trial = breaker.admit(Instant::now()).expect("one trial after the cooldown");
        assert_eq!(breaker.admit(Instant::now()), None, "only one");
        breaker.record(trial, Outcome::Fault, Instant::now());
        assert_eq!(breaker.admit(Instant::now()), None, "a failed trial opens it again");

        tokio::time::advance(COOLDOWN).await;
        let trial = breaker.admit(Instant::now()).expect("the next trial");
        breaker.record(trial, Outcome::Healthy, Instant::now());
        assert!(!breaker.is_open(), "a good trial closes it");
        assert!(breaker.admit(Instant::now()).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_success_from_before_it_opened_does_not_close_it() {
        let mut breaker = CircuitBreaker::new(3, COOLDOWN);
        let slow = breaker.admit(Instant::now()).unwrap();
        faults(&mut breaker, 3);
        assert!(breaker.is_open());
        breaker.record(slow, Outcome::Healthy, Instant::now());
        assert!(breaker.is_open(), "the slow call's success is from before the outage");
        assert_eq!(breaker.admit(Instant::now()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn neutral_outcomes_neither_open_nor_close_it() {
        let mut breaker = CircuitBreaker::new(2, COOLDOWN);
        for _ in 0..10 {
            let admitted = breaker.admit(Instant::now()).unwrap();
            breaker.record(admitted, Outcome::Neutral, Instant::now());
        }
        assert!(!breaker.is_open(), "the caller's short deadlines are not the endpoint's fault");
        faults(&mut breaker, 1);
        let admitted = breaker.admit(Instant::now()).unwrap();
        breaker.record(admitted, Outcome::Neutral, Instant::now());
        faults(&mut breaker, 1);
        assert!(breaker.is_open(), "faults in a row, with neutral outcomes between, still count");
        tokio::time::advance(COOLDOWN).await;
        let trial = breaker.admit(Instant::now()).unwrap();
        breaker.record(trial, Outcome::Neutral, Instant::now());
        assert!(breaker.is_open(), "a neutral trial closes nothing");
        assert_eq!(breaker.admit(Instant::now()), None, "the next trial waits a cooldown");
    }
}
