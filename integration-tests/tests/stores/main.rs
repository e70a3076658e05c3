//! The services' stores and the schema's constraints, round-tripped through a real PostgreSQL:
//! every store function, and every rule the database itself keeps.
#![allow(dead_code)]

mod common;
mod constraints;
mod repositories;
mod transactions;
