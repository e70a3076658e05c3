//! Typed configuration from the environment. Each service declares what it needs from the
//! shared pieces here (database, telemetry, peers, listen address, internal credential); every
//! variable is read, every problem is collected, and a process that cannot start says which
//! variables are missing or wrong — all of them, in one message — before it binds anything.
//! Secret values are never shown, not even in that message.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod reader;
mod values;

pub use reader::{ConfigError, Problem, Reader};
pub use values::{Endpoints, LogFormat, Secret, parse_duration};
