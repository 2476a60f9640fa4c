use super::*;
use crate::lake::schema::schema;
use crate::lake::Class;

fn shred(class: Class, lines: &[&str]) -> Rows {
    let s = schema(class).unwrap();
    let mut rows = Rows::new(s);
    for line in lines {
        rows.push(s, line.as_bytes()).unwrap();
    }
    rows
}

/// The column whose dotted Parquet path is `path`.
fn col<'r>(rows: &'r Rows, class: Class, path: &str) -> &'r Buffer {
    let s = schema(class).unwrap();
    let descr = parquet::schema::types::SchemaDescriptor::new(s.parquet.clone());
    let i = (0..descr.num_columns())
        .find(|&i| descr.column(i).path().string() == path)
        .unwrap_or_else(|| panic!("no column {path}"));
    &rows.columns[i]
}

fn texts(b: &Buffer) -> Vec<String> {
    let mut start = 0;
    b.ends
        .iter()
        .map(|&end| {
            let t = String::from_utf8(b.data[start..end].to_vec()).unwrap();
            start = end;
            t
        })
        .collect()
}

/// `unmapped` of the rows, as (key, value) pairs.
fn unmapped(rows: &Rows, class: Class) -> Vec<(String, String)> {
    let keys = texts(col(rows, class, "unmapped.key_value.key"));
    let values = texts(col(rows, class, "unmapped.key_value.value"));
    keys.into_iter().zip(values).collect()
}

#[test]
fn nulls_are_defined_up_to_the_deepest_object_present() {
    let c = Class::Authentication;
    let rows = shred(
        c,
        &[
            r#"{"class_uid":3002,"metadata":{"product":{"name":"x"}},"actor":{"user":{"account":null}}}"#,
        ],
    );
    assert_eq!(col(&rows, c, "metadata.product.name").def, [3]);
    assert_eq!(texts(col(&rows, c, "metadata.product.name")), ["x"]);
    assert_eq!(col(&rows, c, "metadata.product.vendor_name").def, [2]);
    assert_eq!(col(&rows, c, "metadata.version").def, [1]);
    assert_eq!(col(&rows, c, "cloud.region").def, [0]);
    assert_eq!(col(&rows, c, "actor.user.account.uid").def, [2]);
    assert_eq!(col(&rows, c, "actor.user.name").def, [2]);
    assert_eq!(col(&rows, c, "actor.session.uid").def, [1]);
    assert_eq!(col(&rows, c, "class_uid").def, [1]);
    assert_eq!(col(&rows, c, "class_uid").ints, [3002]);
    assert_eq!(col(&rows, c, "time").def, [0]);
    // Every column got exactly one entry for the row.
    for b in &rows.columns {
        assert_eq!(b.def.len(), 1);
        assert_eq!(b.rep.len(), usize::from(b.repeated));
    }
}

#[test]
fn empty_absent_and_null_objects_differ_only_in_their_level() {
    let c = Class::Authentication;
    let rows = shred(
        c,
        &[
            r#"{"src_endpoint":{}}"#,
            r#"{}"#,
            r#"{"src_endpoint":null}"#,
        ],
    );
    assert_eq!(col(&rows, c, "src_endpoint.ip").def, [1, 0, 0]);
    assert_eq!(col(&rows, c, "src_endpoint.port").def, [1, 0, 0]);
    assert_eq!(rows.rows, 3);
}

#[test]
fn the_profiles_list_takes_definition_and_repetition_levels() {
    let c = Class::BaseEvent;
    let rows = shred(
        c,
        &[
            r#"{"metadata":{"profiles":["cloud","datetime"]}}"#,
            r#"{"metadata":{"profiles":[]}}"#,
            r#"{"metadata":{}}"#,
            r#"{}"#,
            r#"{"metadata":{"profiles":["a\"b"]}}"#,
        ],
    );
    let list = col(&rows, c, "metadata.profiles.list.element");
    assert_eq!(list.def, [4, 4, 2, 1, 0, 4]);
    assert_eq!(list.rep, [0, 1, 0, 0, 0, 0]);
    assert_eq!(texts(list), ["cloud", "datetime", "a\"b"]);
}

#[test]
fn the_map_holds_the_lines_unmapped_with_values_as_text() {
    let c = Class::AccountChange;
    let rows = shred(
        c,
        &[
            r#"{"unmapped":{"source":{"bucket":"b","line":3},"pid":5108,"cluster":"c\u00e9","none":null}}"#,
            r#"{"class_uid":3001}"#,
            r#"{"unmapped":{}}"#,
        ],
    );
    let key = col(&rows, c, "unmapped.key_value.key");
    assert_eq!(key.def, [2, 2, 2, 2, 0, 0]);
    assert_eq!(key.rep, [0, 1, 1, 1, 0, 0]);
    assert_eq!(
        col(&rows, c, "unmapped.key_value.value").def,
        [3, 3, 3, 3, 0, 0]
    );
    assert_eq!(
        unmapped(&rows, c),
        [
            ("source".into(), r#"{"bucket":"b","line":3}"#.into()),
            ("pid".into(), "5108".into()),
            ("cluster".into(), "cé".into()),
            ("none".into(), "null".into()),
        ]
    );
}

#[test]
fn unknown_members_wrong_types_and_repeats_go_under_unmapped_by_path() {
    let c = Class::Authentication;
    let rows = shred(
        c,
        &[
            r#"{"class_uid":3002,"time":5,"user":{"name":"a","new":[1,2],"type_id":"x"},"novel":{"x":"y"},"status_id":"two","severity_id":3000000000,"is_mfa":1,"metadata":{"profiles":["a",1]},"time":6,"src_endpoint":"h","unmapped":{"cluster":"c"}}"#,
        ],
    );
    assert_eq!(texts(col(&rows, c, "user.name")), ["a"]);
    assert_eq!(col(&rows, c, "user.type_id").def, [1]);
    assert_eq!(col(&rows, c, "status_id").def, [0]);
    assert_eq!(col(&rows, c, "time").longs, [5]);
    assert_eq!(
        unmapped(&rows, c),
        [
            ("user.new".into(), "[1,2]".into()),
            ("user.type_id".into(), r#""x""#.into()),
            ("novel".into(), r#"{"x":"y"}"#.into()),
            ("status_id".into(), r#""two""#.into()),
            ("severity_id".into(), "3000000000".into()),
            ("is_mfa".into(), "1".into()),
            ("metadata.profiles".into(), r#"["a",1]"#.into()),
            ("time".into(), "6".into()),
            ("src_endpoint".into(), r#""h""#.into()),
            ("cluster".into(), "c".into()),
        ]
    );
}

#[test]
fn numbers_and_flags_where_text_is_expected_keep_their_json_text() {
    let c = Class::Authentication;
    let rows = shred(
        c,
        &[r#"{"message":12.5,"status":true,"raw_data":"x\\y\n"}"#],
    );
    assert_eq!(texts(col(&rows, c, "message")), ["12.5"]);
    assert_eq!(texts(col(&rows, c, "status")), ["true"]);
    assert_eq!(texts(col(&rows, c, "raw_data")), ["x\\y\n"]);
}

#[test]
fn escaped_keys_are_decoded_in_unmapped() {
    let c = Class::BaseEvent;
    let rows = shred(c, &[r#"{"a\"b":{"c":1},"metadata":{"n\u00e9":"v"}}"#]);
    assert_eq!(
        unmapped(&rows, c),
        [
            ("a\"b".into(), r#"{"c":1}"#.into()),
            ("metadata.né".into(), r#""v""#.into()),
        ]
    );
}

#[test]
fn malformed_lines_are_refused_not_panicked_on() {
    let s = schema(Class::BaseEvent).unwrap();
    for line in [
        "",
        "{",
        r#"{"a":"#,
        r#"{"a":"x"#,
        "[1]",
        r#"{"a":1,}"#,
        r#"{"a":{"b":[}"#,
        r#"{"time":}"#,
        r#"{"metadata":{"uid":"x\q"}}"#,
        r#"{"metadata":{"uid":"x\u12"}}"#,
        r#"{"unmapped":{"a":}}"#,
        r#"{"a":1} x"#,
        r#"{"metadata":{"profiles":["a"}}"#,
        r#"{"metadata" 1}"#,
    ] {
        let mut rows = Rows::new(s);
        assert!(rows.push(s, line.as_bytes()).is_err(), "{line}");
    }
}

#[test]
fn buffers_keep_their_memory_when_cleared() {
    let c = Class::BaseEvent;
    let mut rows = shred(c, &[r#"{"raw_data":"some text"}"#]);
    rows.clear();
    assert_eq!((rows.rows, rows.bytes), (0, 0));
    assert!(rows
        .columns
        .iter()
        .all(|b| b.def.is_empty() && b.data.is_empty()));
    assert!(col(&rows, c, "raw_data").data.capacity() >= 9);
}
