//! The notification service's settings, read from the environment.

use std::time::Duration;

use fastbreak_config::{Reader, Secret};

/// Where operator alerts are POSTed, and the secret they are signed with.
#[derive(Debug, Clone)]
pub struct OperatorWebhook {
    /// The http(s) URL.
    pub url: String,
    /// The HMAC-SHA256 signing secret.
    pub secret: Secret<String>,
}

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where operator alerts go, if anywhere.
    pub operator_webhook: Option<OperatorWebhook>,
    /// Attempts at a webhook delivery before it is given up.
    pub max_attempts: i32,
    /// The pause after the first failed attempt; it doubles after each (with jitter).
    pub retry_min: Duration,
    /// The longest pause between attempts.
    pub retry_max: Duration,
    /// How long one POST may take.
    pub request_timeout: Duration,
    /// How often the worker looks for due deliveries when nothing wakes it.
    pub poll_interval: Duration,
    /// How long a worker holds a delivery it claimed: longer than any attempt takes, so that a
    /// live worker never loses it, short enough that a dead worker's deliveries move on.
    pub lease: Duration,
    /// Whether this target runs the delivery worker (replicas may leave it to others).
    pub worker_enabled: bool,
    /// Whether users' webhooks may point at loopback or private addresses (development only;
    /// the operator webhook always may).
    pub allow_private_webhooks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            operator_webhook: None,
            max_attempts: 8,
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            worker_enabled: true,
            allow_private_webhooks: false,
        }
    }
}

impl Settings {
    /// Reads the `FASTBREAK_WEBHOOK_*` and `FASTBREAK_OPERATOR_WEBHOOK_*` variables, noting
    /// problems in `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        if let Some(n) = reader.optional("FASTBREAK_WEBHOOK_MAX_ATTEMPTS", "a whole number from 1 to 50", |v| {
            v.parse::<i32>().ok().filter(|n| (1..=50).contains(n))
        }) {
            settings.max_attempts = n;
        }
        let ms = Duration::from_millis;
        reader.set_duration(
            "FASTBREAK_WEBHOOK_RETRY_MIN",
            "a duration from 10ms to 1h, such as 2s",
            ms(10)..=ms(3_600_000),
            &mut settings.retry_min,
        );
        reader.set_duration(
            "FASTBREAK_WEBHOOK_RETRY_MAX",
            "a duration from 10ms to 1d, such as 10m",
            ms(10)..=ms(86_400_000),
            &mut settings.retry_max,
        );
        if settings.retry_max < settings.retry_min {
            reader.problem("FASTBREAK_WEBHOOK_RETRY_MAX", "must not be shorter than FASTBREAK_WEBHOOK_RETRY_MIN");
        }
        if let Some(d) = reader.optional_duration(
            "FASTBREAK_WEBHOOK_TIMEOUT",
            "a duration from 100ms to 2m, such as 10s",
            ms(100)..=ms(120_000),
        ) {
            settings.request_timeout = d;
            settings.lease = d * 2 + Duration::from_secs(10);
        }
        if let Some(on) = reader.optional_switch("FASTBREAK_NOTIFICATION_WORKER") {
            settings.worker_enabled = on;
        }
        reader.set_duration(
            "FASTBREAK_WEBHOOK_POLL_INTERVAL",
            "a duration from 10ms to 1m, such as 1s",
            ms(10)..=ms(60_000),
            &mut settings.poll_interval,
        );
        if let Some(on) = reader.optional_switch("FASTBREAK_WEBHOOK_ALLOW_PRIVATE") {
            settings.allow_private_webhooks = on;
        }
        let url =
            reader.optional("FASTBREAK_OPERATOR_WEBHOOK_URL", "an http(s) URL", |v| crate::domain::webhook_url(v).ok());
        let secret_set = reader.is_set("FASTBREAK_OPERATOR_WEBHOOK_SECRET");
        let secret = reader.secret(
            "FASTBREAK_OPERATOR_WEBHOOK_SECRET",
            "a signing secret of at least 16 characters (required with FASTBREAK_OPERATOR_WEBHOOK_URL)",
            url.is_some(),
            |v| v.len() >= 16,
        );
        if secret_set && url.is_none() && !reader.is_set("FASTBREAK_OPERATOR_WEBHOOK_URL") {
            reader.problem(
                "FASTBREAK_OPERATOR_WEBHOOK_URL",
                "missing; FASTBREAK_OPERATOR_WEBHOOK_SECRET is set without it",
            );
        }
        if let (Some(url), Some(secret)) = (url, secret) {
            settings.operator_webhook = Some(OperatorWebhook { url, secret });
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_webhook_needs_its_secret_and_bad_values_are_named() {
        let mut reader = Reader::new([
            ("FASTBREAK_OPERATOR_WEBHOOK_URL", "https://ops.example.com/hook"),
            ("FASTBREAK_WEBHOOK_MAX_ATTEMPTS", "0"),
        ]);
        let _ = Settings::read(&mut reader);
        let text = reader.finish().unwrap_err().to_string();
        assert!(text.contains("FASTBREAK_OPERATOR_WEBHOOK_SECRET: missing"), "{text}");
        assert!(
            text.contains("FASTBREAK_WEBHOOK_MAX_ATTEMPTS: expected a whole number from 1 to 50, got '0'"),
            "{text}"
        );

        let mut reader = Reader::new([
            ("FASTBREAK_OPERATOR_WEBHOOK_URL", "https://ops.example.com/hook"),
            ("FASTBREAK_OPERATOR_WEBHOOK_SECRET", "an operator signing secret"),
        ]);
        let settings = Settings::read(&mut reader);
        reader.finish().unwrap();
        let hook = settings.operator_webhook.unwrap();
        assert_eq!(hook.url, "https://ops.example.com/hook");
        assert!(!format!("{hook:?}").contains("an operator signing secret"));
    }
}
