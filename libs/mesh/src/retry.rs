//! Retries for calls that are safe to repeat: only while the call does not get through (never
//! on a peer's answer, by the one rule of [`crate::status::is_answer`]), with exponential
//! backoff and jitter, within one deadline for all attempts, and within a retry budget so that
//! a struggling peer is not buried in retries. Every service that retries a call uses this.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use tower::retry::budget::{Budget, TpsBudget};

/// How calls marked safe to retry are retried.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Most attempts, the first included.
    pub max_attempts: usize,
    /// The first pause.
    pub min_delay: Duration,
    /// The longest pause.
    pub max_delay: Duration,
    /// How long all attempts together may take, when the call being served sets no sooner
    /// deadline: every attempt fits inside this one deadline.
    pub overall_timeout: Duration,
    budget: Arc<TpsBudget>,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("min_delay", &self.min_delay)
            .field("max_delay", &self.max_delay)
            .field("overall_timeout", &self.overall_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::backoff(4, Duration::from_millis(50), Duration::from_secs(1))
    }
}

impl RetryPolicy {
    /// A policy with its own budget.
    pub fn new(max_attempts: usize, min_delay: Duration, max_delay: Duration, budget: TpsBudget) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            min_delay,
            max_delay,
            overall_timeout: Duration::from_secs(5),
            budget: Arc::new(budget),
        }
    }

    /// A policy with the default budget (retries may add 20% to the calls of the last 10 s,
    /// and 10 a second at least).
    pub fn backoff(max_attempts: usize, min_delay: Duration, max_delay: Duration) -> Self {
        Self::new(max_attempts, min_delay, max_delay, TpsBudget::new(Duration::from_secs(10), 10, 0.2))
    }

    /// Sets how long all attempts together may take.
    pub fn with_overall_timeout(mut self, timeout: Duration) -> Self {
        self.overall_timeout = timeout;
        self
    }

    /// Runs `call`, again while it does not get through, attempts, budget and time allowing.
    /// Every attempt shares one deadline: the call being served's, or the overall timeout,
    /// whichever is sooner; each attempt gets what is left of it, and no pause outlasts it.
    /// Use it only for calls that are safe to repeat.
    pub async fn call_idempotent<T, F, Fut>(&self, call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.overall_timeout;
        fastbreak_telemetry::context::with_deadline(deadline, self.attempts(call)).await
    }

    async fn attempts<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = fastbreak_telemetry::context::current_deadline();
        self.budget.deposit();
        let mut pauses = backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1))
            .build();
        loop {
            match call().await {
                Err(status) if !crate::status::is_answer(&status) => match pauses.next() {
                    Some(pause)
                        if deadline.is_some_and(|d| {
                            tokio::time::Instant::now() + pause + crate::client::DEADLINE_MARGIN >= d
                        }) =>
                    {
                        tracing::debug!(%status, "no time left to retry");
                        return Err(status);
                    }
                    Some(pause) if self.budget.withdraw() => {
                        tracing::debug!(%status, pause_ms = pause.as_millis() as u64, "retrying an idempotent call");
                        tokio::time::sleep(pause).await;
                    }
                    _ => return Err(status),
                },
                other => return other,
            }
        }
    }
}
