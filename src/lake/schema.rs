//! One fixed Arrow schema per OCSF class, the columns of that class's Parquet objects.
//!
//! Built from what the `ocsf` format writes (`output/ocsf.rs`, `cloudtrail/ocsf.rs`) plus the
//! OCSF 1.1.0 attributes of the same objects that it may write later, every column nullable,
//! nested objects as structs, `time` and the other timestamps as epoch milliseconds (int64, as
//! in the JSON), `unmapped` as a map of strings. Security Lake's crawler builds the table from
//! the files, so a class's schema never depends on the records: what a line carries outside it
//! goes under `unmapped` (`conform.rs`), never into a new column.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::Class;

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn int(name: &str) -> Field {
    Field::new(name, DataType::Int32, true)
}
fn long(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, true)
}
fn object(name: &str, fields: Vec<Field>) -> Field {
    Field::new(name, DataType::Struct(Fields::from(fields)), true)
}
fn strings(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
        true,
    )
}

/// `unmapped`: a map of strings (values that are not strings are JSON-encoded).
pub fn unmapped_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

fn account() -> Field {
    object(
        "account",
        vec![utf8("uid"), utf8("name"), int("type_id"), utf8("type")],
    )
}

/// OCSF `user`.
fn user(name: &str) -> Field {
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
fn session() -> Field {
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
fn endpoint(name: &str) -> Field {
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

fn actor() -> Field {
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
fn base() -> Vec<Field> {
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
                strings("profiles"),
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

fn class_fields(class: Class) -> Vec<Field> {
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
    fields.push(Field::new("unmapped", unmapped_type(), true));
    fields
}

/// The schema of a class's objects: built once, the same for every object.
pub fn schema(class: Class) -> SchemaRef {
    static SCHEMAS: OnceLock<Vec<SchemaRef>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        Class::ALL
            .iter()
            .map(|&c| Arc::new(Schema::new(class_fields(c))))
            .collect()
    });
    all[class as usize].clone()
}
