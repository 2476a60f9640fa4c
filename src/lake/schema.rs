//! One fixed schema per OCSF class, the columns of that class's Parquet objects.
//!
//! Built from what the `ocsf` format writes (`output/ocsf.rs`, `cloudtrail/ocsf.rs`) plus the
//! OCSF 1.1.0 attributes of the same objects that it may write later, every column nullable,
//! nested objects as structs, `time` and the other timestamps as epoch milliseconds (int64, as
//! in the JSON), `unmapped` as a map of strings. Security Lake's crawler builds the table from
//! the files, so a class's schema never depends on the records: what a line carries outside it
//! goes under `unmapped` (`shred.rs`), never into a new column.
//!
//! The tree here is what the shredder walks; [`ClassSchema::parquet`] is the same tree as
//! Parquet types, written as Arrow's writer wrote it (the root `arrow_schema`, strings
//! annotated STRING, the list as `profiles (LIST) { repeated list { element } }`, the map as
//! `unmapped (MAP) { repeated key_value { required key; value } }`), so readers see the same
//! schema as the objects written before.

use std::sync::{Arc, OnceLock};

use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::schema::types::{Type, TypePtr};

use super::Class;

/// What a member holds.
#[derive(Debug)]
pub enum Kind {
    Str,
    Int,
    Long,
    Bool,
    Object(Vec<Node>),
    /// A list of strings (`metadata.profiles`).
    Strings,
    /// A map of strings (`unmapped`, top level only).
    Map,
}

/// One member of an object, numbered for the shredder: its leaf columns are
/// `first..first + leaves` in Parquet's column order, and `level` is the definition level of
/// its values when it is present (every optional ancestor and itself defined).
#[derive(Debug)]
pub struct Node {
    pub name: &'static str,
    pub kind: Kind,
    pub first: usize,
    pub leaves: usize,
    pub level: i16,
}

/// A leaf column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Str,
    Int,
    Long,
    Bool,
}

/// A leaf column: its values, and whether it repeats (the list's element, the map's key and
/// value) so that it takes repetition levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub leaf: Leaf,
    pub repeated: bool,
}

/// A class's schema: the tree, its leaf columns in order, and its Parquet types.
#[derive(Debug)]
pub struct ClassSchema {
    pub class: Class,
    pub fields: Vec<Node>,
    pub columns: Vec<Column>,
    pub parquet: TypePtr,
    /// The first leaf of `unmapped` (its key; the value follows).
    pub unmapped: usize,
}

fn node(name: &'static str, kind: Kind) -> Node {
    Node {
        name,
        kind,
        first: 0,
        leaves: 0,
        level: 0,
    }
}
fn utf8(name: &'static str) -> Node {
    node(name, Kind::Str)
}
fn int(name: &'static str) -> Node {
    node(name, Kind::Int)
}
fn long(name: &'static str) -> Node {
    node(name, Kind::Long)
}
fn boolean(name: &'static str) -> Node {
    node(name, Kind::Bool)
}
fn object(name: &'static str, fields: Vec<Node>) -> Node {
    node(name, Kind::Object(fields))
}

fn account() -> Node {
    object(
        "account",
        vec![utf8("uid"), utf8("name"), int("type_id"), utf8("type")],
    )
}

/// OCSF `user`.
fn user(name: &'static str) -> Node {
    object(
        name,
        vec![
            utf8("name"),
            utf8("uid"),
            utf8("uid_alt"),
            int("type_id"),
            utf8("type"),
            utf8("credential_uid"),
            utf8("email_addr"),
            utf8("domain"),
            account(),
        ],
    )
}

/// OCSF `session`.
fn session() -> Node {
    object(
        "session",
        vec![
            utf8("uid"),
            long("created_time"),
            long("expiration_time"),
            boolean("is_mfa"),
            boolean("is_remote"),
            utf8("issuer"),
            utf8("credential_uid"),
        ],
    )
}

/// OCSF `network_endpoint`.
fn endpoint(name: &'static str) -> Node {
    object(
        name,
        vec![
            utf8("ip"),
            utf8("hostname"),
            int("port"),
            utf8("name"),
            utf8("domain"),
            utf8("svc_name"),
            utf8("uid"),
            utf8("type"),
            int("type_id"),
        ],
    )
}

fn actor() -> Node {
    object(
        "actor",
        vec![
            user("user"),
            session(),
            utf8("invoked_by"),
            utf8("app_name"),
        ],
    )
}

/// The attributes every class has (Base Event's, with `metadata` and `cloud` as the profile
/// writes them).
fn base() -> Vec<Node> {
    vec![
        object(
            "metadata",
            vec![
                utf8("version"),
                object(
                    "product",
                    vec![
                        utf8("name"),
                        utf8("vendor_name"),
                        utf8("version"),
                        utf8("uid"),
                    ],
                ),
                node("profiles", Kind::Strings),
                utf8("log_name"),
                utf8("log_provider"),
                utf8("uid"),
                utf8("correlation_uid"),
                utf8("event_code"),
                long("logged_time"),
                utf8("original_time"),
            ],
        ),
        object(
            "cloud",
            vec![utf8("provider"), utf8("region"), account(), utf8("zone")],
        ),
        int("class_uid"),
        utf8("class_name"),
        int("category_uid"),
        utf8("category_name"),
        int("activity_id"),
        utf8("activity_name"),
        long("type_uid"),
        utf8("type_name"),
        int("severity_id"),
        utf8("severity"),
        long("time"),
        int("timezone_offset"),
        long("start_time"),
        long("end_time"),
        long("duration"),
        int("count"),
        utf8("message"),
        int("status_id"),
        utf8("status"),
        utf8("status_code"),
        utf8("status_detail"),
        utf8("raw_data"),
    ]
}

fn class_fields(class: Class) -> Vec<Node> {
    let mut fields = base();
    match class {
        Class::BaseEvent => {}
        Class::Authentication => fields.extend([
            user("user"),
            actor(),
            endpoint("src_endpoint"),
            endpoint("dst_endpoint"),
            object("service", vec![utf8("name"), utf8("uid"), utf8("version")]),
            session(),
            int("auth_protocol_id"),
            utf8("auth_protocol"),
            int("logon_type_id"),
            utf8("logon_type"),
            boolean("is_mfa"),
            boolean("is_remote"),
        ]),
        Class::AccountChange => fields.extend([user("user"), actor(), endpoint("src_endpoint")]),
        Class::DatastoreActivity => fields.extend([
            actor(),
            object(
                "database",
                vec![utf8("name"), utf8("uid"), int("type_id"), utf8("type")],
            ),
            object(
                "query_info",
                vec![utf8("query_string"), utf8("uid"), utf8("name")],
            ),
            endpoint("src_endpoint"),
            endpoint("dst_endpoint"),
            int("type_id"),
            utf8("type"),
        ]),
        Class::ApiActivity => fields.extend([
            actor(),
            object(
                "api",
                vec![
                    utf8("operation"),
                    utf8("version"),
                    object("service", vec![utf8("name"), utf8("uid")]),
                    object("request", vec![utf8("uid")]),
                    object(
                        "response",
                        vec![utf8("error"), utf8("message"), int("code")],
                    ),
                ],
            ),
            endpoint("src_endpoint"),
            endpoint("dst_endpoint"),
            object(
                "http_request",
                vec![utf8("user_agent"), utf8("http_method"), utf8("uid")],
            ),
        ]),
    }
    fields.push(node("unmapped", Kind::Map));
    fields
}

/// Numbers `nodes` (children of an object at definition level `parent`) and appends their leaf
/// columns to `columns`.
fn number(nodes: &mut [Node], parent: i16, columns: &mut Vec<Column>) {
    for n in nodes {
        n.first = columns.len();
        n.level = parent + 1;
        let leaf = |leaf| Column {
            leaf,
            repeated: false,
        };
        match &mut n.kind {
            Kind::Str => columns.push(leaf(Leaf::Str)),
            Kind::Int => columns.push(leaf(Leaf::Int)),
            Kind::Long => columns.push(leaf(Leaf::Long)),
            Kind::Bool => columns.push(leaf(Leaf::Bool)),
            Kind::Object(children) => number(children, n.level, columns),
            Kind::Strings => columns.push(Column {
                leaf: Leaf::Str,
                repeated: true,
            }),
            Kind::Map => columns.extend([Leaf::Str, Leaf::Str].map(|leaf| Column {
                leaf,
                repeated: true,
            })),
        }
        n.leaves = columns.len() - n.first;
    }
}

fn primitive(
    name: &str,
    physical: Physical,
    repetition: Repetition,
) -> parquet::errors::Result<TypePtr> {
    let logical = (physical == Physical::BYTE_ARRAY).then_some(LogicalType::String);
    Ok(Arc::new(
        Type::primitive_type_builder(name, physical)
            .with_repetition(repetition)
            .with_logical_type(logical)
            .build()?,
    ))
}

fn group(
    name: &str,
    repetition: Repetition,
    logical: Option<LogicalType>,
    fields: Vec<TypePtr>,
) -> parquet::errors::Result<TypePtr> {
    Ok(Arc::new(
        Type::group_type_builder(name)
            .with_repetition(repetition)
            .with_logical_type(logical)
            .with_fields(fields)
            .build()?,
    ))
}

fn parquet_type(n: &Node) -> parquet::errors::Result<TypePtr> {
    const OPTIONAL: Repetition = Repetition::OPTIONAL;
    const REPEATED: Repetition = Repetition::REPEATED;
    const REQUIRED: Repetition = Repetition::REQUIRED;
    match &n.kind {
        Kind::Str => primitive(n.name, Physical::BYTE_ARRAY, OPTIONAL),
        Kind::Int => primitive(n.name, Physical::INT32, OPTIONAL),
        Kind::Long => primitive(n.name, Physical::INT64, OPTIONAL),
        Kind::Bool => primitive(n.name, Physical::BOOLEAN, OPTIONAL),
        Kind::Object(children) => group(n.name, OPTIONAL, None, parquet_types(children)?),
        Kind::Strings => group(
            n.name,
            OPTIONAL,
            Some(LogicalType::List),
            vec![group(
                "list",
                REPEATED,
                None,
                vec![primitive("element", Physical::BYTE_ARRAY, OPTIONAL)?],
            )?],
        ),
        Kind::Map => group(
            n.name,
            OPTIONAL,
            Some(LogicalType::Map),
            vec![group(
                "key_value",
                REPEATED,
                None,
                vec![
                    primitive("key", Physical::BYTE_ARRAY, REQUIRED)?,
                    primitive("value", Physical::BYTE_ARRAY, OPTIONAL)?,
                ],
            )?],
        ),
    }
}

fn parquet_types(nodes: &[Node]) -> parquet::errors::Result<Vec<TypePtr>> {
    nodes.iter().map(parquet_type).collect()
}

fn build(class: Class) -> parquet::errors::Result<ClassSchema> {
    let mut fields = class_fields(class);
    let mut columns = Vec::new();
    number(&mut fields, 0, &mut columns);
    // The root as Arrow's writer named it.
    let parquet = Arc::new(
        Type::group_type_builder("arrow_schema")
            .with_fields(parquet_types(&fields)?)
            .build()?,
    );
    let unmapped = fields.last().map_or(0, |n| n.first);
    Ok(ClassSchema {
        class,
        fields,
        columns,
        parquet,
        unmapped,
    })
}

/// The schema of a class's objects: built once, the same for every object. `None` only if the
/// Parquet types above were refused by the parquet crate, which the tests rule out.
pub fn schema(class: Class) -> Option<&'static ClassSchema> {
    static SCHEMAS: OnceLock<Vec<Option<ClassSchema>>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| Class::ALL.iter().map(|&c| build(c).ok()).collect())
        .get(class as usize)?
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(nodes: &[Node], f: &mut dyn FnMut(&Node)) {
        for n in nodes {
            f(n);
            if let Kind::Object(children) = &n.kind {
                walk(children, f);
            }
        }
    }

    #[test]
    fn every_class_builds_with_objects_the_shredder_can_track() {
        for class in Class::ALL {
            let s = schema(class).expect("schema builds");
            let descr = parquet::schema::types::SchemaDescriptor::new(s.parquet.clone());
            assert_eq!(descr.num_columns(), s.columns.len(), "{class:?}");
            // The shredder tracks the members seen in a 64-bit mask.
            assert!(s.fields.len() <= 64);
            walk(&s.fields, &mut |n| {
                if let Kind::Object(c) = &n.kind {
                    assert!(c.len() <= 64);
                }
            });
            for (i, c) in s.columns.iter().enumerate() {
                let d = descr.column(i);
                assert_eq!(c.repeated, d.max_rep_level() == 1, "{}", d.path());
            }
            assert_eq!(
                descr.column(s.unmapped).path().string(),
                "unmapped.key_value.key"
            );
            assert_eq!(descr.column(s.unmapped).max_def_level(), 2);
            assert_eq!(descr.column(s.unmapped + 1).max_def_level(), 3);
        }
    }

    #[test]
    fn levels_follow_the_depth_of_each_member() {
        let s = schema(Class::Authentication).unwrap();
        let descr = parquet::schema::types::SchemaDescriptor::new(s.parquet.clone());
        walk(&s.fields, &mut |n| {
            if matches!(n.kind, Kind::Str | Kind::Int | Kind::Long | Kind::Bool) {
                assert_eq!(descr.column(n.first).max_def_level(), n.level);
            }
            if matches!(n.kind, Kind::Strings) {
                assert_eq!(descr.column(n.first).max_def_level(), n.level + 2);
                assert_eq!(
                    descr.column(n.first).path().string(),
                    "metadata.profiles.list.element"
                );
            }
        });
    }
}
