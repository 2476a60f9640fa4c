//! The connection log: authentication attempts, connections and disconnections, one
//! pipe-separated line each, 15 to 22 columns depending on the year it was written.

use super::fields::{parse_pipe_line, Kind, PipeLayout};
use super::Body;

/// The columns in file order (seed 002 lists all 22; older files stop earlier).
/// A `static`, not a `const`: one address, which `time_column` and the OCSF mapping compare
/// tables by (a `const` may be copied into each codegen unit that uses it).
pub static CONNECTION_COLUMNS: &[(&str, Kind)] = &[
    ("event", Kind::Text),
    ("recordtime", Kind::Time),
    ("remotehost", Kind::Text),
    ("remoteport", Kind::Int),
    ("pid", Kind::Int),
    ("dbname", Kind::Text),
    ("username", Kind::Text),
    ("authmethod", Kind::Text),
    ("duration", Kind::Int),
    ("sslversion", Kind::Text),
    ("sslcipher", Kind::Text),
    ("mtu", Kind::Int),
    ("sslcompression", Kind::Text),
    ("sslexpansion", Kind::Text),
    ("iamauthguid", Kind::Text),
    ("application_name", Kind::Text),
    ("os_version", Kind::Text),
    ("driver_version", Kind::Text),
    ("plugin_name", Kind::Text),
    ("protocol_version", Kind::Int),
    ("sessionid", Kind::Text),
    ("compression", Kind::Text),
];

/// At least the event and its time make a record; later columns may be absent.
pub static CONNECTION_LAYOUT: PipeLayout = PipeLayout {
    columns: CONNECTION_COLUMNS,
    min_fields: 2,
    allow_extra: true,
};

pub fn parse(line: &str) -> Body<'_> {
    parse_pipe_line(line, &CONNECTION_LAYOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Columns, Value};

    fn columns(line: &str) -> Columns<'_> {
        parse(line).expect_columns()
    }

    const ERA_2018: &str =
        "authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] | |5108|dev |rdsdb |Ident |0| | |0| | |";
    const ERA_2020: &str = "initiating session |Tue, 8 Dec 2020 20:01:55:177|::ffff:10.0.0.1 |5439 |5108|dev |rdsdb |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |1500| | | |psql |Linux 5.4 |libpq 13 |";
    const ERA_2022: &str = "authentication failure |Mon, 16 Mar 2022 08:18:14:766|::ffff:223.233.72.13 |1224 |1073742045|dev |alice |password |0|TLSv1.2 |ECDHE-RSA-AES256-GCM-SHA384 |0| | | | |Windows 10 10.0 amd64 |Amazon Redshift JDBC Driver 1.2.55.1083 |none |0|da9edc00-a1e6-44e0-8274-9417e5f355de";

    #[test]
    fn era_2018_fifteen_columns_with_trailing_pipe() {
        let c = columns(ERA_2018);
        assert_eq!(c.get("event"), Some(&Value::Text("authenticated")));
        assert_eq!(
            c.get("recordtime")
                .map(|v| matches!(v, Value::Time(t) if t.as_str() == "2020-12-07T20:01:55.177Z")),
            Some(true)
        );
        assert_eq!(c.get("remotehost"), Some(&Value::Text("[local]")));
        assert_eq!(
            c.get("remoteport"),
            Some(&Value::Null),
            "[local] has no port"
        );
        assert_eq!(c.get("pid"), Some(&Value::Int(5108)));
        assert_eq!(c.get("sslversion"), Some(&Value::Null));
        assert_eq!(c.get("iamauthguid"), Some(&Value::Null));
        assert_eq!(
            c.get("application_name"),
            Some(&Value::Null),
            "absent in 2018"
        );
        assert_eq!(c.extra, None);
    }

    #[test]
    fn era_2020_eighteen_columns_with_trailing_pipe() {
        let c = columns(ERA_2020);
        assert_eq!(c.get("remoteport"), Some(&Value::Int(5439)));
        assert_eq!(c.get("mtu"), Some(&Value::Int(1500)));
        assert_eq!(c.get("application_name"), Some(&Value::Text("psql")));
        assert_eq!(c.get("driver_version"), Some(&Value::Text("libpq 13")));
        assert_eq!(c.get("plugin_name"), Some(&Value::Null));
        assert_eq!(c.extra, None);
    }

    #[test]
    fn era_2022_twenty_one_columns_without_trailing_pipe() {
        let c = columns(ERA_2022);
        assert_eq!(c.get("event"), Some(&Value::Text("authentication failure")));
        assert_eq!(c.get("pid"), Some(&Value::Int(1073742045)));
        assert_eq!(
            c.get("os_version"),
            Some(&Value::Text("Windows 10 10.0 amd64"))
        );
        assert_eq!(c.get("plugin_name"), Some(&Value::Text("none")));
        assert_eq!(c.get("protocol_version"), Some(&Value::Int(0)));
        assert_eq!(
            c.get("sessionid"),
            Some(&Value::Text("da9edc00-a1e6-44e0-8274-9417e5f355de"))
        );
        assert_eq!(c.get("compression"), Some(&Value::Null));
    }

    #[test]
    fn twenty_two_columns_fill_compression() {
        let line = format!("{ERA_2022}|lz4 ");
        let c = columns(&line);
        assert_eq!(c.get("compression"), Some(&Value::Text("lz4")));
        assert_eq!(c.extra, None);
    }

    #[test]
    fn unknown_extra_columns_are_kept() {
        let line = format!("{ERA_2022}|lz4 |future one | 42");
        let c = columns(&line);
        assert_eq!(
            c.extra_columns().collect::<Vec<_>>(),
            vec!["future one", "42"]
        );
    }

    #[test]
    fn iam_user() {
        let line = "authenticated |Wed, 1 Mar 2023 01:02:03:004|10.1.2.3 |50000 |42|dev |IAM:alice |IAM AssumeUser |0| | |0| | | | | | | |0|";
        let c = columns(line);
        assert_eq!(c.get("username"), Some(&Value::Text("IAM:alice")));
        assert_eq!(c.get("authmethod"), Some(&Value::Text("IAM AssumeUser")));
        assert_eq!(c.get("remotehost"), Some(&Value::Text("10.1.2.3")));
    }

    #[test]
    fn bad_number_is_a_parse_error_naming_the_column() {
        match parse("authenticated |Mon, 7 Dec 2020 20:01:55:177|[local] |x|5108|dev ") {
            Body::ParseError { reason, raw } => {
                assert!(reason.contains("remoteport"), "{reason}");
                assert!(raw.starts_with("authenticated"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_time_and_garbage_are_parse_errors() {
        assert!(matches!(
            parse("authenticated |yesterday|x"),
            Body::ParseError { .. }
        ));
        assert!(matches!(parse("no pipes at all"), Body::ParseError { .. }));
    }
}
