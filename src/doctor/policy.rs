//! Does a bucket policy let Redshift write its audit logs? Seed 001 ("Bucket Permissions for
//! Amazon Redshift Audit Logging"): Redshift needs `s3:PutObject` on the objects and
//! `s3:GetBucketAcl` on the bucket, granted to the `redshift.amazonaws.com` service principal or
//! to the region's Redshift account (`arn:aws:iam::<account>:user/logs`).
//!
//! Only `Allow` statements are read, and only their principal, action and resource; conditions
//! are not evaluated and `Deny` statements are not subtracted, so "granted" means "a statement
//! grants it", the question an operator asks first.

use serde_json::Value;

/// The service principal Redshift writes as.
pub const REDSHIFT_SERVICE: &str = "redshift.amazonaws.com";

/// The Redshift account of each region that writes audit logs (seed 001's table).
pub const REDSHIFT_LOG_ACCOUNTS: &[(&str, &str)] = &[
    ("us-east-1", "193672423079"),
    ("us-east-2", "391106570357"),
    ("us-west-1", "262260360010"),
    ("us-west-2", "902366379725"),
    ("ap-south-1", "865932855811"),
    ("ap-northeast-2", "760740231472"),
    ("ap-southeast-1", "361669875840"),
    ("ap-southeast-2", "762762565011"),
    ("ap-northeast-1", "404641285394"),
    ("cn-northwest-1", "660998842044"),
    ("ca-central-1", "907379612154"),
    ("eu-central-1", "053454850223"),
    ("eu-west-1", "210876761215"),
    ("eu-west-2", "307160386991"),
    ("eu-west-3", "915173422425"),
    ("sa-east-1", "075028567923"),
];

/// The Redshift account of `region`, if seed 001 lists it.
pub fn redshift_account(region: &str) -> Option<&'static str> {
    REDSHIFT_LOG_ACCOUNTS
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(_, account)| *account)
}

/// What the policy grants Redshift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// `s3:PutObject` on an object under the prefix.
    pub put_object: bool,
    /// `s3:GetBucketAcl` on the bucket.
    pub get_bucket_acl: bool,
    /// How Redshift was named where it was: the service principal or an account.
    pub principals: Vec<String>,
}

/// Reads `policy` (JSON text) for grants to Redshift in `region` on `bucket` and the objects
/// under `prefix` (no trailing `/`; empty for the whole bucket).
pub fn redshift_grants(
    policy: &str,
    bucket: &str,
    prefix: &str,
    region: &str,
) -> Result<Grants, String> {
    let doc: Value =
        serde_json::from_str(policy).map_err(|e| format!("the policy is not JSON: {e}"))?;
    let account = redshift_account(region);
    // Any object Redshift writes under the prefix.
    let object = match prefix.trim_end_matches('/') {
        "" => format!("{bucket}/redshift-audit-probe.gz"),
        folder => format!("{bucket}/{folder}/redshift-audit-probe.gz"),
    };
    let mut grants = Grants::default();
    for statement in one_or_many(&doc["Statement"]) {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        let Some(who) = redshift_principal(&statement["Principal"], account) else {
            continue;
        };
        let actions = strings(&statement["Action"]);
        let resources = strings(&statement["Resource"]);
        let mut used = false;
        if allows(&actions, "s3:PutObject") && resources.iter().any(|r| covers(r, &object)) {
            grants.put_object = true;
            used = true;
        }
        if allows(&actions, "s3:GetBucketAcl") && resources.iter().any(|r| covers(r, bucket)) {
            grants.get_bucket_acl = true;
            used = true;
        }
        if used && !grants.principals.contains(&who) {
            grants.principals.push(who);
        }
    }
    Ok(grants)
}

/// How the principal names Redshift, if it does.
fn redshift_principal(principal: &Value, account: Option<&str>) -> Option<String> {
    if principal.as_str() == Some("*") {
        return Some("*".into());
    }
    if strings(&principal["Service"]).contains(&REDSHIFT_SERVICE) {
        return Some(REDSHIFT_SERVICE.into());
    }
    let account = account?;
    strings(&principal["AWS"])
        .into_iter()
        .find(|p| {
            *p == account
                || p.strip_prefix("arn:")
                    .and_then(|rest| rest.split_once(":iam::"))
                    .is_some_and(|(_, rest)| rest.starts_with(&format!("{account}:")))
        })
        .map(str::to_string)
}

/// Whether an action list allows `action` (exactly, or through a wildcard).
fn allows(actions: &[&str], action: &str) -> bool {
    actions
        .iter()
        .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
}

/// Whether a policy resource covers `target` (`bucket` or `bucket/key`), in any partition.
fn covers(resource: &str, target: &str) -> bool {
    if resource == "*" {
        return true;
    }
    match resource.split_once(":s3:::") {
        Some((arn, pattern)) if arn.starts_with("arn:") => glob(pattern, target),
        _ => false,
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn strings(v: &Value) -> Vec<&str> {
    one_or_many(v)
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_EXAMPLE: &str = r#"{ "Version": "2012-10-17", "Statement": [ { "Sid": "Put bucket policy needed for audit logging", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::193672423079:user/logs" }, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::AuditLogs/*" }, { "Sid": "Get bucket policy needed for audit logging ", "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::193672423079:user/logs" }, "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::AuditLogs" } ] }"#;

    #[test]
    fn the_seeds_example_policy_grants_both_to_the_regions_account() {
        let g = redshift_grants(
            SEED_EXAMPLE,
            "AuditLogs",
            "AWSLogs/1/redshift/us-east-1",
            "us-east-1",
        )
        .unwrap();
        assert!(g.put_object && g.get_bucket_acl, "{g:?}");
        assert_eq!(g.principals, ["arn:aws:iam::193672423079:user/logs"]);
    }

    #[test]
    fn another_regions_account_is_not_redshift_here() {
        let g = redshift_grants(SEED_EXAMPLE, "AuditLogs", "", "eu-west-1").unwrap();
        assert!(!g.put_object && !g.get_bucket_acl, "{g:?}");
    }

    #[test]
    fn the_service_principal_with_a_prefix_scoped_put_counts() {
        let policy = r#"{"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"},
             "Action": ["s3:PutObject", "s3:GetBucketAcl"],
             "Resource": ["arn:aws:s3:::audit/AWSLogs/*", "arn:aws:s3:::audit"]}]}"#;
        let g = redshift_grants(
            policy,
            "audit",
            "AWSLogs/1/redshift/us-east-1",
            "ap-south-2",
        )
        .unwrap();
        assert!(g.put_object && g.get_bucket_acl, "{g:?}");
        // A put scoped to another prefix does not reach the audit prefix.
        let g = redshift_grants(policy, "audit", "logs/redshift", "ap-south-2").unwrap();
        assert!(!g.put_object && g.get_bucket_acl, "{g:?}");
    }

    #[test]
    fn deny_statements_and_other_principals_grant_nothing() {
        let policy = r#"{"Statement": [
            {"Effect": "Deny", "Principal": {"Service": "redshift.amazonaws.com"},
             "Action": "s3:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": "arn:aws:s3:::audit/*"}]}"#;
        let g = redshift_grants(policy, "audit", "", "us-east-1").unwrap();
        assert_eq!(g, Grants::default());
    }

    #[test]
    fn wildcard_actions_count_and_bad_json_is_an_error() {
        let policy = r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "193672423079"},
            "Action": "s3:*", "Resource": ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"]}}"#;
        let g = redshift_grants(policy, "audit", "p", "us-east-1").unwrap();
        assert!(g.put_object && g.get_bucket_acl);
        assert!(redshift_grants("{", "audit", "p", "us-east-1").is_err());
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("audit/*", "audit/a/b.gz"));
        assert!(glob("a?c*", "abcdef"));
        assert!(!glob("audit/x/*", "audit/y/z"));
        assert!(glob("*", ""));
        assert!(!glob("audit", "audit/"));
    }
}
