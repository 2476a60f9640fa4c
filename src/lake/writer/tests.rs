use super::*;
use bytes::Bytes;
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

fn auth_line(uid: &str, time: i64, query: &str) -> String {
    format!(
        r#"{{"metadata":{{"version":"1.1.0","product":{{"name":"Amazon Redshift","vendor_name":"AWS"}},"profiles":["cloud"],"log_name":"connectionlog","uid":"{uid}"}},"cloud":{{"provider":"AWS","account":{{"uid":"123456789012"}},"region":"us-east-1"}},"class_uid":3002,"class_name":"Authentication","category_uid":3,"activity_id":1,"type_uid":300201,"severity_id":1,"time":{time},"user":{{"name":"{query}"}},"unmapped":{{"source":{{"line":1}},"pid":5}}}}"#
    )
}

/// The objects of `lines`, each as its partition and bytes.
fn write(lines: &[String], limits: Limits) -> Vec<(Partition, Vec<u8>)> {
    let mut w = LakeWriter::new(&Class::ALL, limits);
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    let mut keep = |chunks: Vec<Chunk>| {
        for c in chunks {
            if bytes.len() <= c.object.0 {
                bytes.resize(c.object.0 + 1, Vec::new());
            }
            bytes[c.object.0].extend_from_slice(&c.bytes);
        }
    };
    for line in lines {
        w.push(line.as_bytes()).unwrap();
        keep(w.take_ready(64 * 1024));
    }
    let (chunks, partitions, stats) = w.finish().unwrap();
    assert!(chunks.iter().all(|c| c.last));
    keep(chunks);
    assert_eq!(stats.lake_objects as usize, partitions.len());
    partitions.into_iter().zip(bytes).collect()
}

/// The rows of an object, as JSON (nulls as `null`).
pub(crate) fn rows(bytes: &[u8]) -> Vec<serde_json::Value> {
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(bytes)).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().to_json_value())
        .collect()
}

#[test]
fn every_line_is_one_row_in_input_order() {
    let lines: Vec<String> = (0..3000)
        .map(|i| auth_line(&format!("id{i}"), 1_607_371_315_000 + i, "u"))
        .collect();
    let objects = write(&lines, Limits::default());
    assert_eq!(objects.len(), 1);
    let (partition, bytes) = &objects[0];
    assert_eq!(
        partition.path(),
        "region=us-east-1/accountId=123456789012/eventDay=20201207/"
    );
    let rows = rows(bytes);
    assert_eq!(rows.len(), 3000);
    let times: Vec<i64> = rows.iter().map(|r| r["time"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] + 1 == w[1]));
    assert_eq!(rows[7]["metadata"]["uid"], "id7");
    let reader = SerializedFileReader::new(Bytes::from(bytes.clone())).unwrap();
    let written = reader.metadata().file_metadata().schema_descr();
    let expected = parquet::schema::types::SchemaDescriptor::new(
        schema(Class::Authentication).unwrap().parquet.clone(),
    );
    assert_eq!(written.root_schema(), expected.root_schema());
}

#[test]
fn a_file_across_midnight_gives_one_object_per_day_and_out_of_order_rows_are_counted() {
    let day = 86_400_000;
    let lines = vec![
        auth_line("a", 3 * day - 10, "u"),
        auth_line("b", 3 * day - 20, "u"),
        auth_line("c", 3 * day + 5, "u"),
    ];
    let mut w = LakeWriter::new(&Class::ALL, Limits::default());
    for l in &lines {
        w.push(l.as_bytes()).unwrap();
    }
    let (_, partitions, stats) = w.finish().unwrap();
    let days: Vec<&str> = partitions.iter().map(|p| p.day.as_str()).collect();
    assert_eq!(days, ["19700103", "19700104"]);
    assert_eq!((stats.lake_rows, stats.rows_out_of_order), (3, 1));
}

#[test]
fn objects_are_zstd_with_small_pages_and_bounded_row_groups() {
    // Long, varied text: pages and row groups fill.
    let lines: Vec<String> = (0..20_000)
        .map(|i| {
            auth_line(
                &format!("id{i}"),
                1_607_371_315_000 + i,
                &(0..8u64)
                    .map(|k| {
                        format!(
                            "{:016x}",
                            xxhash_rust::xxh3::xxh3_64(&(i as u64 * 8 + k).to_le_bytes())
                        )
                    })
                    .collect::<String>(),
            )
        })
        .collect();
    let limits = Limits {
        row_group_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let objects = write(&lines, limits);
    let reader = SerializedFileReader::new(Bytes::from(objects[0].1.clone())).unwrap();
    let meta = reader.metadata();
    assert!(meta.num_row_groups() > 1, "{}", meta.num_row_groups());
    for g in 0..meta.num_row_groups() {
        let group = meta.row_group(g);
        assert!(group.compressed_size() < 4 * 1024 * 1024);
        for c in 0..group.num_columns() {
            let column = group.column(c);
            assert_eq!(
                column.compression(),
                Compression::ZSTD(ZstdLevel::default())
            );
            let pages = reader
                .get_row_group(g)
                .unwrap()
                .get_column_page_reader(c)
                .unwrap();
            for page in pages {
                let page = page.unwrap();
                assert!(
                    page.buffer().len() <= 1024 * 1024,
                    "page of {} bytes",
                    page.buffer().len()
                );
            }
        }
    }
}

#[test]
fn unknown_classes_and_classes_without_a_source_are_refused_naming_the_line() {
    let mut w = LakeWriter::new(&[Class::Authentication], Limits::default());
    w.push(auth_line("a", 1, "u").as_bytes()).unwrap();
    let e = w.push(br#"{"class_uid":4001,"time":1}"#).unwrap_err();
    assert!(
        e.to_string().starts_with("line 2: class_uid Some(4001)"),
        "{e}"
    );
    let e = w.push(br#"{"class_uid":0,"time":1}"#).unwrap_err();
    assert!(
        matches!(
            e,
            LakeError::NoSource {
                line: 3,
                class: "base_event"
            }
        ),
        "{e}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// JSON values of any shape, with the keys the schemas have mixed in, so that members land
    /// both where the schema expects them (of the right type or not) and where it does not.
    fn value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("time".to_string()),
            Just("user".to_string()),
            Just("name".to_string()),
            Just("uid".to_string()),
            Just("port".to_string()),
            Just("unmapped".to_string()),
            Just("profiles".to_string()),
            Just("metadata".to_string()),
            Just("is_mfa".to_string()),
            "[a-z_\"\\\\é]{1,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// A line of `class` that fits its schema, drawn from `seed`: each member present or
    /// not, strings with quotes, backslashes, control characters and non-ASCII text.
    fn fitting(class: Class, seed: u64) -> Value {
        use crate::lake::schema::{schema, Kind, Node};
        struct Draw(u64);
        impl Draw {
            fn next(&mut self) -> u64 {
                self.0 = xxhash_rust::xxh3::xxh3_64(&self.0.to_le_bytes());
                self.0
            }
            fn text(&mut self) -> String {
                const PIECES: [&str; 8] = ["a", "\"", "\\", "\n", "é", "😀", "\u{1}", "select 1;"];
                (0..self.next() % 6)
                    .map(|_| PIECES[(self.next() % 8) as usize])
                    .collect()
            }
        }
        fn object(nodes: &[Node], d: &mut Draw) -> Map<String, Value> {
            let mut out = Map::new();
            for n in nodes {
                if d.next() % 3 == 0 {
                    continue;
                }
                let v = match &n.kind {
                    Kind::Str => Value::String(d.text()),
                    Kind::Int => Value::from(d.next() as i32),
                    Kind::Long => Value::from(d.next() as i64),
                    Kind::Bool => Value::Bool(d.next() % 2 == 0),
                    Kind::Object(children) => Value::Object(object(children, d)),
                    Kind::Strings => {
                        Value::Array((0..d.next() % 3).map(|_| Value::String(d.text())).collect())
                    }
                    Kind::Map => Value::Object(
                        (0..d.next() % 3)
                            .map(|i| (format!("k{i}{}", d.text()), Value::String(d.text())))
                            .collect(),
                    ),
                };
                out.insert(n.name.to_string(), v);
            }
            out
        }
        let mut d = Draw(seed);
        let mut line = object(&schema(class).unwrap().fields, &mut d);
        line.insert("class_uid".into(), Value::from(class.uid()));
        if line
            .get("unmapped")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            // An empty map is written as no map.
            line.remove("unmapped");
        }
        Value::Object(line)
    }

    /// A row read back, its nulls dropped.
    fn strip(v: Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(strip).collect()),
            v => v,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever a line holds besides its class, it becomes one row of its class's fixed
        /// schema: shredding never fails on a JSON object and the result always reads back.
        #[test]
        fn any_object_of_a_known_class_is_written(members in prop::collection::vec((".{1,8}", value()), 0..8), class in 0usize..5) {
            let class = Class::ALL[class];
            let mut object: Map<String, Value> = members.into_iter().collect();
            object.insert("class_uid".into(), Value::from(class.uid()));
            let line = serde_json::to_vec(&Value::Object(object)).unwrap();
            let mut w = LakeWriter::new(&Class::ALL, Limits::default());
            prop_assert!(w.push(&line).is_ok(), "{}", String::from_utf8_lossy(&line));
            let (chunks, _, stats) = w.finish().unwrap();
            prop_assert_eq!(stats.lake_rows, 1);
            let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.bytes).collect();
            prop_assert_eq!(rows(&bytes).len(), 1);
        }

        /// A line that fits its class's schema reads back from Parquet as the same JSON.
        #[test]
        fn lines_that_fit_read_back_the_same(seed in any::<u64>(), class in 0usize..5) {
            let class = Class::ALL[class];
            let line = fitting(class, seed);
            let text = serde_json::to_vec(&line).unwrap();
            let mut w = LakeWriter::new(&Class::ALL, Limits::default());
            w.push(&text).unwrap();
            let (chunks, _, _) = w.finish().unwrap();
            let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.bytes).collect();
            let back = rows(&bytes);
            prop_assert_eq!(back.len(), 1);
            prop_assert_eq!(strip(back[0].clone()), line);
        }
    }
}
