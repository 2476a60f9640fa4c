//! `SESSION_JOIN` and `SESSION_WAIT`: whether user activity records are joined to their sessions
//! from the connection log (`crate::sessions`), and how long an activity file waits for its
//! hour's connection log.

use std::time::Duration;

use super::{parse, var, Reader};
use crate::logs::LogType;

/// `SESSION_WAIT` when unset (DESIGN.md): Redshift delivers an hour's logs within minutes of
/// each other.
pub const DEFAULT_SESSION_WAIT: Duration = Duration::from_secs(30 * 60);
/// Largest `SESSION_WAIT`: a day; records held back longer than that are late for any reader.
pub const MAX_SESSION_WAIT: Duration = Duration::from_secs(86_400);

/// The session join's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// `SESSION_JOIN`, and `LOG_TYPES` forwards both the connection log and the user activity
    /// log: without the connection log nothing is joined and nothing waits.
    pub join: bool,
    /// `SESSION_WAIT`: after this long past the activity file's time, it goes out with the
    /// sessions known (0: never waits).
    pub wait: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            join: true,
            wait: DEFAULT_SESSION_WAIT,
        }
    }
}

/// Reads both variables; `log_types` are `LOG_TYPES`' Redshift log types.
pub(super) fn read<G: Fn(&str) -> Option<String>>(
    r: &mut Reader<G>,
    log_types: &[LogType],
) -> SessionSettings {
    let join = r.defaulted(var::SESSION_JOIN, true, parse::boolean);
    let wait = r.defaulted(var::SESSION_WAIT, DEFAULT_SESSION_WAIT, wait);
    let both = log_types.contains(&LogType::ConnectionLog)
        && log_types.contains(&LogType::UserActivityLog);
    SessionSettings {
        join: join && both,
        wait,
    }
}

/// `0`, or a whole number and a unit (`90s`, `30m`, `2h`) of at most a day.
fn wait(text: &str) -> Result<Duration, String> {
    if text.trim_end_matches(['s', 'm', 'h', 'd']) == "0" {
        return Ok(Duration::ZERO);
    }
    match parse::stale_after(text)? {
        d if d <= MAX_SESSION_WAIT => Ok(d),
        _ => Err(format!("{} is more than a day", parse::shown(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, crate::settings::SettingsError> {
        let vars: Vec<(String, String)> = [("DELIVERY_STREAM", "s")]
            .iter()
            .chain(vars)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_join_is_on_by_default_with_a_wait_of_thirty_minutes() {
        let s = settings(&[]).unwrap().sessions;
        assert_eq!(s, SessionSettings::default());
        assert_eq!(s.wait, Duration::from_secs(1800));
    }

    #[test]
    fn without_the_connection_log_nothing_is_joined() {
        let s = settings(&[("LOG_TYPES", "useractivitylog,userlog")]).unwrap();
        assert!(!s.sessions.join);
        let s = settings(&[("SESSION_JOIN", "false")]).unwrap();
        assert!(!s.sessions.join);
    }

    #[test]
    fn a_wait_is_zero_or_a_duration_of_at_most_a_day() {
        let wait = |t: &str| settings(&[("SESSION_WAIT", t)]).map(|s| s.sessions.wait);
        assert_eq!(wait("0").unwrap(), Duration::ZERO);
        assert_eq!(wait("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(wait("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["soon", "2d", "-1m", "1.5h"] {
            let e = wait(bad).unwrap_err().to_string();
            assert!(e.contains("SESSION_WAIT"), "{bad}: {e}");
        }
        let e = settings(&[("SESSION_JOIN", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SESSION_JOIN"), "{e}");
    }
}
