//! The shapes of AWS names: account IDs, regions, bucket names, IAM role ARNs, Firehose stream
//! names and CloudTrail event sources. One rule each, for settings, keys and the backfill alike;
//! pure predicates, no AWS calls.
//!
//! The rules follow the shape AWS documents rather than a list of known values, so a region or a
//! service AWS adds later is accepted without a release.

/// Digits in an AWS account ID.
const ACCOUNT_ID_LEN: usize = 12;
/// Firehose stream names: 1 to 64 of `[a-zA-Z0-9_.-]` (Firehose API, `DeliveryStreamName`).
const MAX_STREAM_NAME: usize = 64;
/// Longest bucket name S3 ever allowed (legacy us-east-1 names; new names stop at 63).
const MAX_BUCKET_NAME: usize = 255;
/// The domain of every AWS service's CloudTrail `eventSource`.
const EVENT_SOURCE_DOMAIN: &str = ".amazonaws.com";

/// A 12-digit AWS account ID, e.g. `123456789012`.
pub fn is_account_id(s: &str) -> bool {
    s.len() == ACCOUNT_ID_LEN && s.bytes().all(|b| b.is_ascii_digit())
}

/// A region name: `^[a-z]{2,}(-[a-z]+)+-[0-9]+$`, e.g. `us-east-1`, `us-gov-west-1`,
/// `cn-northwest-1`, `eu-isoe-west-1`, `ap-southeast-5`.
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [first, middle @ .., last] = &parts[..] else {
        return false;
    };
    let letters = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    first.len() >= 2
        && letters(first)
        && !middle.is_empty()
        && middle.iter().all(|p| letters(p))
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// A name S3 may have given a bucket. Deliberately lenient: legacy us-east-1 buckets may have
/// capitals and `_` and up to 255 characters, so only what can never be a bucket name is refused
/// ([`bucket_name_refusal`] says why).
pub fn is_bucket_name(name: &str) -> bool {
    bucket_name_refusal(name).is_none()
}

/// Prefixes S3 reserves (bucket naming rules): `xn--` (punycode), `sthree-` (S3's own).
const RESERVED_BUCKET_PREFIXES: [&str; 2] = ["xn--", "sthree-"];
/// Suffixes S3 reserves: access point aliases, Object Lambda aliases, directory buckets.
const RESERVED_BUCKET_SUFFIXES: [&str; 3] = ["-s3alias", "--ol-s3", "--x-s3"];

/// Why `name` can never be a bucket's name, or `None`: 3 to 255 of letters, digits, `.`, `-`,
/// `_`, starting and ending with a letter or digit, no two adjacent periods, not shaped like an
/// IPv4 address, no reserved prefix or suffix.
pub fn bucket_name_refusal(name: &str) -> Option<&'static str> {
    if !(3..=MAX_BUCKET_NAME).contains(&name.len()) {
        return Some("is not 3 to 255 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Some("holds a character other than letters, digits, '.', '-' and '_'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Some("does not start and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("has two adjacent periods");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() == 4
        && labels
            .iter()
            .all(|l| (1..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("is shaped like an IP address, which S3 refuses as a bucket name");
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_BUCKET_PREFIXES
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Some("starts with a prefix S3 reserves (xn--, sthree-)");
    }
    if RESERVED_BUCKET_SUFFIXES.iter().any(|x| lower.ends_with(x)) {
        return Some("ends with a suffix S3 reserves (-s3alias, --ol-s3, --x-s3)");
    }
    None
}

/// An IAM role ARN: `arn:<partition>:iam::<account>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = &parts[..] else {
        return false;
    };
    *scheme == "arn"
        && !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
        && *service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && resource.strip_prefix("role/").is_some_and(|name| {
            !name.is_empty() && !name.ends_with('/') && name.bytes().all(|b| b.is_ascii_graphic())
        })
}

/// A Firehose stream name: 1 to 64 of letters, digits, `_`, `.`, `-`.
pub fn is_stream_name(name: &str) -> bool {
    (1..=MAX_STREAM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A CloudTrail `eventSource`: a service's `*.amazonaws.com` host name in lowercase, e.g.
/// `redshift.amazonaws.com`; each label before the domain is lowercase letters, digits and `-`.
pub fn is_event_source(name: &str) -> bool {
    name.strip_suffix(EVENT_SOURCE_DOMAIN)
        .is_some_and(|service| {
            service.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: the predicate's expected answer for a name.
    fn check(predicate: fn(&str) -> bool, cases: &[(&str, bool)]) {
        for (name, expected) in cases {
            assert_eq!(predicate(name), *expected, "{name:?}");
        }
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        check(
            is_account_id,
            &[
                ("123456789012", true),
                ("000000000000", true),
                ("12345678901", false),
                ("1234567890123", false),
                ("12345678901a", false),
                ("my-account", false),
                ("", false),
                ("１２３４５６７８９０１２", false),
            ],
        );
    }

    #[test]
    fn regions_are_letters_words_and_a_number() {
        check(
            is_region,
            &[
                ("us-east-1", true),
                ("eu-central-1", true),
                ("us-gov-west-1", true),
                ("cn-northwest-1", true),
                ("eu-isoe-west-1", true),
                ("ap-southeast-5", true),
                ("us-iso-east-1", true),
                ("il-central-1", true),
                ("useast1", false),
                ("US-EAST-1", false),
                ("us-east", false),
                ("us-east-1a", false),
                ("eu-1", false),
                ("u-east-1", false),
                ("us--east-1", false),
                ("us-east-", false),
                ("-us-east-1", false),
                ("us-east-1-", false),
                ("us-3ast-1", false),
                ("", false),
            ],
        );
    }

    #[test]
    fn bucket_names_refuse_only_what_s3_never_allowed() {
        check(
            is_bucket_name,
            &[
                ("my-audit-logs", true),
                ("a.b.c", true),
                ("abc", true),
                ("Legacy_Bucket", true),
                (&"a".repeat(255), true),
                (&"a".repeat(256), false),
                ("ab", false),
                ("-bucket", false),
                ("bucket-", false),
                ("my bucket", false),
                ("bucket/AWSLogs", false),
                ("s3://bucket", false),
                ("arn:aws:s3:::bucket", false),
                ("", false),
                ("192.168.1.1", false),
                ("10.0.0.1", false),
                ("1.2.3", true),
                ("192.168.1.1.5", true),
                ("192.168.1.a", true),
                ("xn--bucket", false),
                ("sthree-bucket", false),
                ("bucket-s3alias", false),
                ("bucket--ol-s3", false),
                ("bucket--x-s3", false),
                ("my..bucket", false),
                ("xn-bucket", true),
            ],
        );
    }

    #[test]
    fn bucket_name_refusals_say_which_rule() {
        for (name, words) in [
            ("ab", "3 to 255"),
            ("a b", "character other than"),
            ("-ab", "start and end"),
            ("a..b", "adjacent periods"),
            ("192.168.1.1", "IP address"),
            ("xn--abc", "prefix S3 reserves"),
            ("abc-s3alias", "suffix S3 reserves"),
        ] {
            let reason = bucket_name_refusal(name).unwrap_or_default();
            assert!(reason.contains(words), "{name:?}: {reason:?}");
        }
        assert_eq!(bucket_name_refusal("my-audit-logs"), None);
    }

    #[test]
    fn role_arns_name_an_iam_role_in_an_account() {
        check(
            is_role_arn,
            &[
                ("arn:aws:iam::210987654321:role/audit-reader", true),
                ("arn:aws-us-gov:iam::210987654321:role/path/to/reader", true),
                ("arn:aws-cn:iam::210987654321:role/r", true),
                ("audit-reader", false),
                ("arn:aws:iam::21098765432:role/r", false),
                ("arn:aws:iam::210987654321:user/r", false),
                ("arn:aws:iam::210987654321:role/", false),
                ("arn:aws:iam::210987654321:role/path/", false),
                ("arn:aws:iam::210987654321:role/has space", false),
                ("arn:aws:sts::210987654321:role/r", false),
                ("arn:aws:iam:us-east-1:210987654321:role/r", false),
                ("arn::iam::210987654321:role/r", false),
                ("arn:AWS:iam::210987654321:role/r", false),
                ("", false),
            ],
        );
    }

    #[test]
    fn stream_names_are_up_to_64_safe_characters() {
        check(
            is_stream_name,
            &[
                ("s", true),
                ("audit-stream", true),
                ("a.b_c-D9", true),
                (&"x".repeat(64), true),
                (&"x".repeat(65), false),
                ("", false),
                ("has space", false),
                ("slash/name", false),
                (
                    "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
                    false,
                ),
            ],
        );
    }

    #[test]
    fn event_sources_are_amazonaws_host_names() {
        check(
            is_event_source,
            &[
                ("redshift.amazonaws.com", true),
                ("redshift-serverless.amazonaws.com", true),
                ("redshift-data.amazonaws.com", true),
                ("sqlworkbench.amazonaws.com", true),
                ("s3.amazonaws.com", true),
                ("a.b.amazonaws.com", true),
                ("amazonaws.com", false),
                (".amazonaws.com", false),
                ("a..amazonaws.com", false),
                ("Redshift.amazonaws.com", false),
                ("redshift", false),
                ("redshift.amazonaws.com.evil", false),
                ("red shift.amazonaws.com", false),
                ("redshift.amazon.com", false),
            ],
        );
    }
}
