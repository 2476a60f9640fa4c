//! Helpers of `fanout_moto.rs`.

pub mod corpus;
pub mod workers;
