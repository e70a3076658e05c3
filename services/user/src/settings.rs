//! The user service's settings, read from the environment.

use std::time::Duration;

use crate::store::SignInPolicy;
use fastbreak_config::Reader;

/// How the user service behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How failed sign-ins for one email are slowed down.
    pub sign_in: SignInPolicy,
    /// The cost of the password hash (argon2id).
    pub password_hashing: PasswordCost,
    /// How often failed-sign-in records past their window (and their lock) are deleted.
    pub failure_sweep: Duration,
}

/// Argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sign_in: SignInPolicy {
                free_failures: 5,
                window: chrono::Duration::minutes(15),
                first_lock: chrono::Duration::seconds(30),
                max_lock: chrono::Duration::minutes(15),
            },
            // OWASP's recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
            password_hashing: PasswordCost { memory_kib: 19 * 1024, iterations: 2 },
            failure_sweep: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Reads `FASTBREAK_SIGN_IN_FREE_FAILURES` and `FASTBREAK_SIGN_IN_LOCK`, noting problems in
    /// `reader`.
    pub fn read(reader: &mut Reader) -> Self {
        let mut settings = Self::default();
        if let Some(failures) =
            reader.optional("FASTBREAK_SIGN_IN_FREE_FAILURES", "a whole number from 1 to 100", |v| {
                v.parse::<i32>().ok().filter(|n| (1..=100).contains(n))
            })
        {
            settings.sign_in.free_failures = failures;
        }
        if let Some(lock) = reader.optional_duration(
            "FASTBREAK_SIGN_IN_LOCK",
            "a duration from 1s to 1h, such as 30s",
            Duration::from_secs(1)..=Duration::from_secs(3600),
        ) {
            settings.sign_in.first_lock = chrono::Duration::from_std(lock).unwrap_or(settings.sign_in.first_lock);
        }
        settings
    }
}
