//! The session join: every user activity record joined to its session's client address from the
//! connection log (issue 20, docs/SESSIONS.md).
//!
//! - `index.rs`: sessions built from connection-log records, and a statement's session looked up
//!   by pid and time (pid reuse, sessions over midnight, failed authentications);
//! - `join.rs`: what the pipeline asks of a record ([`join`]), and the indexes of the clusters
//!   of one `parse` run ([`Clusters`]);
//! - `state.rs`: the index in the state store for the Lambda, one object per connection log file
//!   and hour, open sessions carried from hour to hour, every shard checked before it is used.

mod index;
mod join;
pub mod state;

pub use index::{
    bounded, merge, timestamp_of, Builder, Entry, Index, Session, Text, MAX_FIELD_BYTES,
    OPENING_WINDOW_MS, START_SLACK_MS,
};
pub use join::{join, ClusterId, Clusters};
