//! The one FastBreak binary's library: its command line and what each subcommand does, so that
//! tests can call them; `main` only parses, sets up logging and runs.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod backtest;
pub mod cli;
pub mod commands;
pub mod config;
pub mod database;
pub mod demo;
pub mod serve;
pub mod status;
pub mod targets;
pub mod up;
