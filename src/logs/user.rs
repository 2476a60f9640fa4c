//! The user log: changes to database users (create, alter, drop, rename), 11 pipe-separated
//! columns a line.

use super::fields::{parse_pipe_line, Kind, PipeLayout};
use super::Body;

/// The columns in file order (seed 001).
/// A `static`, not a `const`: one address, which `time_column` and the OCSF mapping compare
/// tables by (a `const` may be copied into each codegen unit that uses it).
pub static USER_COLUMNS: &[(&str, Kind)] = &[
    ("userid", Kind::Int),
    ("username", Kind::Text),
    ("oldusername", Kind::Text),
    ("action", Kind::Text),
    ("usecreatedb", Kind::Flag),
    ("usesuper", Kind::Flag),
    ("usecatupd", Kind::Flag),
    ("valuntil", Kind::ValidUntil),
    ("pid", Kind::Int),
    ("xid", Kind::Int),
    ("recordtime", Kind::Time),
];

/// All 11 are required: the record time is the last one. Columns a future format may add are
/// kept in `extra_columns`, as for the connection log.
pub static USER_LAYOUT: PipeLayout = PipeLayout {
    columns: USER_COLUMNS,
    min_fields: USER_COLUMNS.len(),
    allow_extra: true,
};

pub fn parse(line: &str) -> Body<'_> {
    parse_pipe_line(line, &USER_LAYOUT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Columns, Value};

    fn columns(line: &str) -> Columns<'_> {
        parse(line).expect_columns()
    }

    #[test]
    fn alter_line_types_every_column() {
        let c = columns(
            "1|rdsdb | |alter |1|1|1|9223372036854775807|14872|1061|Thu, 3 Dec 2020 10:18:38:416",
        );
        assert_eq!(c.get("userid"), Some(&Value::Int(1)));
        assert_eq!(c.get("username"), Some(&Value::Text("rdsdb")));
        assert_eq!(c.get("oldusername"), Some(&Value::Null));
        assert_eq!(c.get("action"), Some(&Value::Text("alter")));
        assert_eq!(c.get("usecreatedb"), Some(&Value::Bool(true)));
        assert_eq!(c.get("usesuper"), Some(&Value::Bool(true)));
        assert_eq!(c.get("usecatupd"), Some(&Value::Bool(true)));
        assert_eq!(c.get("valuntil"), Some(&Value::Null));
        assert_eq!(c.get("pid"), Some(&Value::Int(14872)));
        assert_eq!(c.get("xid"), Some(&Value::Int(1061)));
        assert!(
            matches!(c.get("recordtime"), Some(Value::Time(t)) if t.as_str() == "2020-12-03T10:18:38.416Z")
        );
    }

    #[test]
    fn rename_keeps_old_name_and_real_expiry() {
        let c = columns("105|bob |robert |rename |0|0|0|2025-06-30 00:00:00|200|3000|Fri, 04 Dec 2020 01:02:03:004");
        assert_eq!(c.get("oldusername"), Some(&Value::Text("robert")));
        assert_eq!(c.get("usesuper"), Some(&Value::Bool(false)));
        assert_eq!(c.get("valuntil"), Some(&Value::Text("2025-06-30 00:00:00")));
    }

    #[test]
    fn infinity_and_empty_valuntil_are_null() {
        for v in ["infinity", " ", ""] {
            let line =
                format!("105|bob | |create |0|0|0|{v}|200|3000|Fri, 4 Dec 2020 01:02:03:004");
            assert_eq!(columns(&line).get("valuntil"), Some(&Value::Null), "{v:?}");
        }
    }

    #[test]
    fn short_line_is_a_parse_error() {
        assert!(matches!(
            parse("1|rdsdb | |alter |1|1|1"),
            Body::ParseError { .. }
        ));
    }

    #[test]
    fn bad_flag_names_the_column() {
        match parse("1|rdsdb | |alter |7|1|1||14872|1061|Thu, 3 Dec 2020 10:18:38:416") {
            Body::ParseError { reason, .. } => assert!(reason.contains("usecreatedb"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
