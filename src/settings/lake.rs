//! `DESTINATIONS`, `SECURITY_LAKE_SOURCES` and `SECURITY_LAKE_EXTERNAL_ID`: where records go
//! (Firehose, Amazon Security Lake, or both) and, for the lake, each OCSF class's custom source
//! location and the provider role to write it with.

use super::{parse, var, OutputFormat, Reader};
use crate::aws_names;
use crate::lake::Class;
use crate::logs::LogType;

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destinations {
    /// Amazon Data Firehose (`DELIVERY_STREAM`).
    pub firehose: bool,
    /// Amazon Security Lake: one source per class; `None` when the lake is not a destination.
    pub security_lake: Option<SecurityLake>,
}

impl Default for Destinations {
    fn default() -> Self {
        Destinations {
            firehose: true,
            security_lake: None,
        }
    }
}

/// The lake's custom sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityLake {
    /// One entry a class, in the order given.
    pub sources: Vec<LakeSource>,
    /// `SECURITY_LAKE_EXTERNAL_ID`: for assuming the provider roles.
    pub external_id: Option<String>,
}

/// One custom source: `CLASS=s3://bucket/prefix/[|role ARN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeSource {
    pub class: Class,
    pub bucket: String,
    /// Empty, or ending with `/`.
    pub prefix: String,
    /// The provider role to assume for writing (`AmazonSecurityLake-Provider-…`).
    pub role_arn: Option<String>,
}

/// Whether `DESTINATIONS` (as set) includes Firehose; the default does.
pub(super) fn wants_firehose(text: Option<&str>) -> bool {
    text.is_none_or(|t| destinations(t).map_or(true, |(firehose, _)| firehose))
}

/// `firehose`, `security-lake`, or both, comma-separated: (firehose, lake).
fn destinations(text: &str) -> Result<(bool, bool), String> {
    let (mut firehose, mut lake) = (false, false);
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "firehose" => firehose = true,
            "security-lake" => lake = true,
            other => {
                let other = parse::shown(other);
                return Err(format!(
                    "{other} is not a destination; use firehose, security-lake, or both \
                     (firehose,security-lake)"
                ));
            }
        }
    }
    if !firehose && !lake {
        return Err("names no destination; use firehose, security-lake, or both".into());
    }
    Ok((firehose, lake))
}

/// The class each enabled input needs: its own, and `base_event` for records that cannot be
/// parsed, which every input can have.
pub fn needed_classes(log_types: &[LogType], cloudtrail: bool) -> Vec<Class> {
    let mut classes = vec![Class::BaseEvent];
    for t in log_types {
        classes.push(match t {
            LogType::ConnectionLog => Class::Authentication,
            LogType::UserLog => Class::AccountChange,
            LogType::UserActivityLog => Class::DatastoreActivity,
        });
    }
    if cloudtrail {
        classes.push(Class::ApiActivity);
    }
    classes
}

/// `CLASS=s3://bucket/prefix/[|role ARN]`, comma-separated.
fn sources(text: &str) -> Result<Vec<LakeSource>, String> {
    let mut sources: Vec<LakeSource> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (class, rest) = entry
            .split_once('=')
            .ok_or_else(|| format!("{} is not CLASS=s3://bucket/prefix/", parse::shown(entry)))?;
        let class = class.trim();
        let class = Class::from_name(class).ok_or_else(|| {
            format!(
                "{} is not a class; use authentication, account_change, \
                 datastore_activity, api_activity or base_event",
                parse::shown(class)
            )
        })?;
        if sources.iter().any(|s| s.class == class) {
            return Err(format!("{} is given twice", class.name()));
        }
        // An empty role after `|` is none (the template joins `location|role` either way).
        let (location, role) = match rest.split_once('|') {
            Some((l, r)) => (l.trim(), Some(r.trim()).filter(|r| !r.is_empty())),
            None => (rest.trim(), None),
        };
        let path = location.strip_prefix("s3://").ok_or_else(|| {
            format!(
                "{}: {} is not an s3:// location",
                class.name(),
                parse::shown(location)
            )
        })?;
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if !aws_names::is_bucket_name(bucket) {
            return Err(format!(
                "{}: {} is not a bucket name",
                class.name(),
                parse::shown(bucket)
            ));
        }
        if prefix.contains("//") || prefix.starts_with('/') || prefix.len() > 512 {
            return Err(format!(
                "{}: {} is not a usable prefix",
                class.name(),
                parse::shown(prefix)
            ));
        }
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let role_arn = match role {
            Some(r) => Some(parse::role_arn(r).map_err(|e| format!("{}: {e}", class.name()))?),
            None => None,
        };
        sources.push(LakeSource {
            class,
            bucket: bucket.to_string(),
            prefix,
            role_arn,
        });
    }
    Ok(sources)
}

/// Reads the three variables; with the lake, the records are OCSF (`output_format` is set to
/// it, and an explicit `raw` is refused).
pub(super) fn read(
    r: &mut Reader<impl Fn(&str) -> Option<String>>,
    log_types: &[LogType],
    cloudtrail: bool,
    output_format: &mut OutputFormat,
) -> Destinations {
    let (firehose, lake) = r.defaulted(var::DESTINATIONS, (true, false), destinations);
    let listed = r.optional(var::SECURITY_LAKE_SOURCES, sources);
    let external_id = r.optional(var::SECURITY_LAKE_EXTERNAL_ID, parse::external_id);
    if !lake {
        if r.is_set(var::SECURITY_LAKE_SOURCES) && !r.refused(&[var::DESTINATIONS]) {
            r.report(
                var::SECURITY_LAKE_SOURCES,
                "is set but DESTINATIONS does not name security-lake",
            );
        }
        return Destinations {
            firehose,
            security_lake: None,
        };
    }
    if r.value(var::OUTPUT_FORMAT).is_some() && *output_format == OutputFormat::Raw {
        r.report(
            var::OUTPUT_FORMAT,
            "is raw, but Security Lake takes OCSF events: set ocsf, or leave it unset",
        );
    }
    *output_format = OutputFormat::Ocsf;
    let sources = listed.unwrap_or_default();
    if !r.refused(&[var::SECURITY_LAKE_SOURCES]) {
        let missing: Vec<&str> = needed_classes(log_types, cloudtrail)
            .into_iter()
            .filter(|c| !sources.iter().any(|s| s.class == *c))
            .map(Class::name)
            .collect();
        if !missing.is_empty() {
            r.report(
                var::SECURITY_LAKE_SOURCES,
                format!(
                    "has no location for {}, which LOG_TYPES needs (base_event takes the records \
                     that cannot be parsed)",
                    missing.join(", ")
                ),
            );
        }
    }
    Destinations {
        firehose,
        security_lake: Some(SecurityLake {
            sources,
            external_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_locations_prefixes_and_roles() {
        let s = sources(
            "authentication=s3://aws-security-data-lake-us-east-1-abc/ext/redshift-auth/1.0|arn:aws:iam::123456789012:role/AmazonSecurityLake-Provider-redshift-auth-us-east-1,, base_event=s3://lake-b|",
        )
        .unwrap();
        assert_eq!(s[0].class, Class::Authentication);
        assert_eq!(s[0].bucket, "aws-security-data-lake-us-east-1-abc");
        assert_eq!(s[0].prefix, "ext/redshift-auth/1.0/");
        assert!(s[0]
            .role_arn
            .as_deref()
            .unwrap()
            .ends_with("redshift-auth-us-east-1"));
        assert_eq!((s[1].prefix.as_str(), s[1].role_arn.as_deref()), ("", None));
    }

    #[test]
    fn malformed_entries_are_refused_naming_the_class() {
        for (text, words) in [
            ("network_activity=s3://b/p/", "not a class"),
            ("authentication", "CLASS=s3://"),
            ("authentication=https://b/p/", "not an s3:// location"),
            ("authentication=s3://-bad/p/", "not a bucket name"),
            ("authentication=s3://bucket//p", "not a usable prefix"),
            (
                "authentication=s3://bucket/p/|arn:aws:iam::1:user/x",
                "authentication: ",
            ),
            (
                "authentication=s3://bk1/p/,authentication=s3://bk2/p/",
                "given twice",
            ),
        ] {
            let e = sources(text).unwrap_err();
            assert!(e.contains(words), "{text}: {e}");
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<super::super::Settings, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::super::Settings::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    const ALL: &str = "authentication=s3://lake/ext/a/,account_change=s3://lake/ext/b/,\
                       datastore_activity=s3://lake/ext/c/,base_event=s3://lake/ext/d/";

    #[test]
    fn the_lake_alone_needs_no_stream_and_writes_ocsf() {
        let s = settings(&[
            (var::DESTINATIONS, "security-lake"),
            (var::SECURITY_LAKE_SOURCES, ALL),
            (var::SECURITY_LAKE_EXTERNAL_ID, "ext-id-123"),
        ])
        .unwrap();
        assert_eq!(s.delivery_stream, "");
        assert_eq!(s.output_format, OutputFormat::Ocsf);
        assert!(!s.destinations.firehose);
        let lake = s.destinations.security_lake.unwrap();
        assert_eq!(lake.sources.len(), 4);
        assert_eq!(lake.external_id.as_deref(), Some("ext-id-123"));
    }

    #[test]
    fn start_up_refuses_a_missing_class_raw_output_and_sources_without_the_lake() {
        let e = settings(&[
            (var::DESTINATIONS, "security-lake"),
            (var::LOG_TYPES, "connectionlog,cloudtrail"),
            (var::SECURITY_LAKE_SOURCES, ALL),
        ])
        .unwrap_err();
        assert!(
            e.contains("SECURITY_LAKE_SOURCES") && e.contains("api_activity"),
            "{e}"
        );
        let e = settings(&[
            (var::DESTINATIONS, "firehose,security-lake"),
            (var::OUTPUT_FORMAT, "raw"),
            (var::SECURITY_LAKE_SOURCES, ALL),
        ])
        .unwrap_err();
        assert!(
            e.contains("OUTPUT_FORMAT") && e.contains("DELIVERY_STREAM"),
            "{e}"
        );
        let e = settings(&[
            (var::DELIVERY_STREAM, "s"),
            (var::SECURITY_LAKE_SOURCES, ALL),
        ])
        .unwrap_err();
        assert!(
            e.contains("SECURITY_LAKE_SOURCES: is set but DESTINATIONS"),
            "{e}"
        );
        let e = settings(&[
            (var::DESTINATIONS, "security-lake"),
            (
                var::SECURITY_LAKE_SOURCES,
                "authentication=s3://lake/x|not-a-role",
            ),
        ])
        .unwrap_err();
        assert!(
            e.contains("SECURITY_LAKE_SOURCES") && e.contains("not an IAM role ARN"),
            "{e}"
        );
    }

    #[test]
    fn destinations_are_firehose_the_lake_or_both() {
        assert_eq!(destinations("firehose"), Ok((true, false)));
        assert_eq!(destinations("security-lake"), Ok((false, true)));
        assert_eq!(destinations(" firehose , security-lake "), Ok((true, true)));
        assert!(destinations("s3").is_err());
        assert!(destinations(",").is_err());
        assert!(wants_firehose(None));
        assert!(!wants_firehose(Some("security-lake")));
    }
}
