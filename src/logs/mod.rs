//! The three Redshift audit log formats: streaming parsers from bytes to typed records.
//!
//! Nothing here knows about AWS: a parser reads any `std::io::Read` and hands out one record at a
//! time, borrowing from its own buffers.

use std::fmt;
use std::str::FromStr;

/// One of the Redshift audit log types, as named in object keys and in `LOG_TYPES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogType {
    ConnectionLog,
    UserLog,
    UserActivityLog,
}

impl LogType {
    pub const ALL: [LogType; 3] = [LogType::ConnectionLog, LogType::UserLog, LogType::UserActivityLog];

    /// The name used in file names, settings and the `log_type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            LogType::ConnectionLog => "connectionlog",
            LogType::UserLog => "userlog",
            LogType::UserActivityLog => "useractivitylog",
        }
    }
}

impl fmt::Display for LogType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the three log types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log type {0:?} (expected connectionlog, userlog or useractivitylog)")]
pub struct UnknownLogType(pub String);

impl FromStr for LogType {
    type Err = UnknownLogType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "connectionlog" => Ok(LogType::ConnectionLog),
            "userlog" => Ok(LogType::UserLog),
            "useractivitylog" => Ok(LogType::UserActivityLog),
            other => Err(UnknownLogType(other.to_string())),
        }
    }
}
