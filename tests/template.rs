//! What `template.yaml` grants and protects, checked on the template as CloudFormation would
//! resolve it for given parameters: the exact resource ARNs of the function's role, the absence
//! of actions the code never calls, TLS-only policies on every queue and on the state bucket, and
//! the rules that refuse unsafe parameters, the CloudWatch Logs subscriptions and who may invoke
//! through them, and the settings of the CloudTrail source.
//!
//! The YAML (with its `!Sub`, `!If`, ... tags) is read by cfn-lint's own loader from the venv's
//! Python (`make venv`; `CFN_PYTHON` names another interpreter), which hands it over as JSON; a
//! small evaluator below resolves parameters, conditions and the intrinsic functions the template
//! uses. `cfn-lint template.yaml` itself runs in `make lint`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const BUCKET: &str = "audit-bucket";
const STREAM: &str = "audit-stream";
const PREFIX: &str = "AWSLogs/123456789012/redshift/us-east-1";

fn python() -> PathBuf {
    std::env::var_os("CFN_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
        PathBuf::from,
    )
}

/// Runs `code` with the venv's Python (cfn-lint installed) and returns its standard output.
fn run_python(code: &str, args: &[&str]) -> String {
    let python = python();
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make venv` first)", python.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The template as cfn-lint decodes it: tags become `{"Fn::Sub": ...}` and so on.
fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let code = "import json, sys\n\
                    from cfnlint.decode import decode\n\
                    template, problems = decode('template.yaml')\n\
                    if problems:\n    sys.exit('\\n'.join(str(p) for p in problems))\n\
                    json.dump(template, sys.stdout)\n";
        serde_json::from_str(&run_python(code, &[])).unwrap()
    })
}

/// One deployment of the template: parameters resolved, conditions decided.
struct Stack {
    params: BTreeMap<String, String>,
    conditions: BTreeMap<String, bool>,
}

impl Stack {
    /// The template with its defaults, the required parameters, and `overrides`.
    fn with(overrides: &[(&str, &str)]) -> Stack {
        let mut params = BTreeMap::new();
        for (name, spec) in template()["Parameters"].as_object().unwrap() {
            if let Some(default) = spec.get("Default") {
                let text = match default {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                params.insert(name.clone(), text);
            }
        }
        params.insert("DeliveryStream".into(), STREAM.into());
        params.insert("AuditBucket".into(), BUCKET.into());
        params.insert("AuditPrefix".into(), PREFIX.into());
        for (name, value) in overrides {
            assert!(
                template()["Parameters"].get(*name).is_some(),
                "no parameter {name}"
            );
            params.insert(name.to_string(), value.to_string());
        }
        let mut stack = Stack {
            params,
            conditions: BTreeMap::new(),
        };
        let names: Vec<String> = template()["Conditions"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for name in names {
            let holds = stack.condition(&name);
            stack.conditions.insert(name, holds);
        }
        stack
    }

    fn condition(&self, name: &str) -> bool {
        if let Some(&holds) = self.conditions.get(name) {
            return holds;
        }
        let spec = template()["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.truth(spec)
    }

    /// A condition function (`Fn::Equals`, `Fn::And`, ..., `Condition`) or a rule assertion.
    fn truth(&self, v: &Value) -> bool {
        let (function, args) = single(v).unwrap_or_else(|| panic!("not a condition: {v}"));
        match function {
            "Fn::Equals" => {
                let args = args.as_array().unwrap();
                self.eval(&args[0]) == self.eval(&args[1])
            }
            "Fn::Not" => !self.truth(&args[0]),
            "Fn::And" => args.as_array().unwrap().iter().all(|a| self.truth(a)),
            "Fn::Or" => args.as_array().unwrap().iter().any(|a| self.truth(a)),
            "Condition" => self.condition(args.as_str().unwrap()),
            other => panic!("condition function {other} not handled"),
        }
    }

    /// The descriptions of the rule assertions these parameters break.
    fn broken_rules(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for rule in template()["Rules"].as_object().unwrap().values() {
            if let Some(applies) = rule.get("RuleCondition") {
                if !self.truth(applies) {
                    continue;
                }
            }
            for assertion in rule["Assertions"].as_array().unwrap() {
                if !self.truth(&assertion["Assert"]) {
                    broken.push(assertion["AssertDescription"].as_str().unwrap().to_string());
                }
            }
        }
        broken
    }

    /// Resolves intrinsic functions; `None` is `AWS::NoValue` (the key or item disappears).
    fn eval(&self, v: &Value) -> Option<Value> {
        if let Some((function, args)) = single(v) {
            match function {
                "Ref" => return self.reference(args.as_str().unwrap()),
                "Fn::GetAtt" => {
                    let parts = args.as_array().unwrap();
                    return Some(json!(format!(
                        "{{{}.{}}}",
                        parts[0].as_str().unwrap(),
                        parts[1].as_str().unwrap()
                    )));
                }
                "Fn::If" => {
                    let args = args.as_array().unwrap();
                    let branch = if self.condition(args[0].as_str().unwrap()) {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    return self.eval(branch);
                }
                "Fn::Sub" => return Some(json!(self.sub(args))),
                "Fn::Join" => {
                    let args = args.as_array().unwrap();
                    let items = self.eval(&args[1]).unwrap();
                    let items: Vec<&str> = items
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i.as_str().unwrap())
                        .collect();
                    return Some(json!(items.join(args[0].as_str().unwrap())));
                }
                "Fn::Split" => {
                    let args = args.as_array().unwrap();
                    let text = self.eval(&args[1]).unwrap();
                    let parts: Vec<&str> = text
                        .as_str()
                        .unwrap()
                        .split(args[0].as_str().unwrap())
                        .collect();
                    return Some(json!(parts));
                }
                "Fn::Select" => {
                    let args = args.as_array().unwrap();
                    let index = args[0].as_u64().unwrap() as usize;
                    let list = self.eval(&args[1]).unwrap();
                    let item = list.as_array().unwrap().get(index).cloned();
                    return Some(item.unwrap_or_else(|| panic!("Fn::Select {index} of {list}")));
                }
                f if f.starts_with("Fn::") => panic!("intrinsic {f} not handled"),
                _ => {}
            }
        }
        Some(match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| self.eval(v).map(|v| (k.clone(), v)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().filter_map(|i| self.eval(i)).collect())
            }
            other => other.clone(),
        })
    }

    /// A parameter's value, a pseudo parameter, or `{Name}` for a resource of the stack.
    fn reference(&self, name: &str) -> Option<Value> {
        let value = match name {
            "AWS::NoValue" => return None,
            "AWS::Partition" => "aws".to_string(),
            "AWS::Region" => REGION.to_string(),
            "AWS::AccountId" => ACCOUNT.to_string(),
            "AWS::StackName" => "stack".to_string(),
            _ => match self.params.get(name) {
                // A list parameter is its comma-separated items ("" is one empty item).
                Some(value) if template()["Parameters"][name]["Type"] == "CommaDelimitedList" => {
                    return Some(json!(value.split(',').collect::<Vec<_>>()));
                }
                Some(value) => value.clone(),
                None => {
                    assert!(
                        template()["Resources"].get(name).is_some(),
                        "Ref to unknown {name}"
                    );
                    format!("{{{name}}}")
                }
            },
        };
        Some(json!(value))
    }

    fn sub(&self, args: &Value) -> String {
        let (text, vars) = match args {
            Value::String(text) => (text.as_str(), Map::new()),
            Value::Array(parts) => (
                parts[0].as_str().unwrap(),
                parts[1].as_object().unwrap().clone(),
            ),
            other => panic!("Fn::Sub {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            let value = match vars.get(name) {
                Some(v) => self.eval(v).unwrap(),
                None => match name.split_once('.') {
                    Some((resource, attribute)) => self
                        .eval(&json!({ "Fn::GetAtt": [resource, attribute] }))
                        .unwrap(),
                    None => self.reference(name).unwrap(),
                },
            };
            out.push_str(value.as_str().unwrap());
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The resources this deployment creates, resolved.
    fn resources(&self) -> BTreeMap<String, Value> {
        template()["Resources"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| {
                r.get("Condition")
                    .is_none_or(|c| self.condition(c.as_str().unwrap()))
            })
            .map(|(name, r)| (name.clone(), self.eval(r).unwrap()))
            .collect()
    }

    fn resource(&self, name: &str) -> Option<Value> {
        self.resources().remove(name)
    }

    /// The statements of the function role's policies.
    fn role_statements(&self) -> Vec<Value> {
        let role = self.resource("FunctionRole").unwrap();
        role["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
            .collect()
    }

    fn statement(&self, sid: &str) -> Option<Value> {
        self.role_statements().into_iter().find(|s| s["Sid"] == sid)
    }

    fn env(&self, variable: &str) -> Value {
        self.resource("Function").unwrap()["Properties"]["Environment"]["Variables"][variable]
            .clone()
    }
}

/// `{"Fn::X": args}` or `{"Ref": name}`: an object with one key.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// An action or resource field as a list.
fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("not a string or list: {other}"),
    }
}

/// Every combination of the switches that add or drop statements and resources.
fn deployments() -> Vec<Stack> {
    let mut stacks = Vec::new();
    for trigger in ["EventBridge", "S3Notification", "None"] {
        for queue in ["true", "false"] {
            for (state_bucket, source_role) in [
                ("", ""),
                ("state-bucket", "arn:aws:iam::210987654321:role/reader"),
            ] {
                stacks.push(Stack::with(&[
                    ("Trigger", trigger),
                    ("UseQueue", queue),
                    ("BackfillFanOut", queue),
                    ("StateBucket", state_bucket),
                    ("SourceRoleArn", source_role),
                    ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:alarms"),
                ]));
            }
        }
    }
    // Security Lake: a source written through its provider role, one written directly.
    let alarms = [("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:alarms")];
    stacks.push(Stack::with(&[LAKE, &alarms[..]].concat()));
    stacks
}

/// A lake deployment: authentication through its role, account_change and base_event directly.
const LAKE: &[(&str, &str)] = &[
    ("Destinations", "security-lake"),
    ("SecurityLakeExternalId", "lake-ext-id"),
    (
        "SecurityLakeAuthentication",
        "s3://aws-security-data-lake-us-east-1-abc/ext/rs-auth/1.0/",
    ),
    (
        "SecurityLakeAuthenticationRole",
        "arn:aws:iam::111122223333:role/AmazonSecurityLake-Provider-rs-auth-us-east-1",
    ),
    (
        "SecurityLakeAccountChange",
        "s3://aws-security-data-lake-us-east-1-abc/ext/rs-acct",
    ),
    ("SecurityLakeDatastoreActivity", "s3://lake-two"),
    (
        "SecurityLakeBaseEvent",
        "s3://aws-security-data-lake-us-east-1-abc/ext/rs-base/",
    ),
];

#[test]
fn audit_reads_are_scoped_under_the_prefix_followed_by_exactly_one_slash() {
    for (given, folder) in [
        (PREFIX, "AWSLogs/123456789012/redshift/us-east-1/"),
        (
            "AWSLogs/123456789012/redshift/us-east-1/",
            "AWSLogs/123456789012/redshift/us-east-1/",
        ),
        ("logs", "logs/"),
        ("logs/", "logs/"),
    ] {
        let stack = Stack::with(&[("AuditPrefix", given)]);
        assert_eq!(stack.broken_rules(), Vec::<String>::new(), "{given}");
        let read = stack.statement("ReadAuditLogs").unwrap();
        assert_eq!(read["Action"], "s3:GetObject");
        assert_eq!(
            read["Resource"],
            format!("arn:aws:s3:::{BUCKET}/{folder}*"),
            "{given}"
        );
        let list = stack.statement("ListAuditLogs").unwrap();
        assert_eq!(list["Action"], "s3:ListBucket");
        assert_eq!(list["Resource"], format!("arn:aws:s3:::{BUCKET}"));
        assert_eq!(
            list["Condition"],
            json!({"StringLike": {"s3:prefix": format!("{folder}*")}}),
            "{given}"
        );
        let rule = stack.resource("AuditObjectCreatedRule").unwrap();
        assert_eq!(
            rule["Properties"]["EventPattern"]["detail"]["object"]["key"],
            json!([{"wildcard": format!("{folder}*.gz")}]),
            "{given}"
        );
        // The function normalizes the variable itself; it gets the parameter as given.
        assert_eq!(stack.env("AUDIT_PREFIX"), given);
    }
}

#[test]
fn an_empty_prefix_is_refused_unless_the_whole_bucket_is_allowed() {
    let refused = Stack::with(&[("AuditPrefix", "")]);
    let broken = refused.broken_rules();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].contains("AllowWholeBucket"), "{broken:?}");

    let whole = Stack::with(&[("AuditPrefix", ""), ("AllowWholeBucket", "true")]);
    assert_eq!(whole.broken_rules(), Vec::<String>::new());
    assert_eq!(
        whole.statement("ReadAuditLogs").unwrap()["Resource"],
        format!("arn:aws:s3:::{BUCKET}/*")
    );
    assert_eq!(
        whole.statement("ListAuditLogs").unwrap().get("Condition"),
        None
    );
    let rule = whole.resource("AuditObjectCreatedRule").unwrap();
    assert_eq!(
        rule["Properties"]["EventPattern"]["detail"]["object"]["key"],
        json!([{"wildcard": "*.gz"}])
    );
}

#[test]
fn prefix_parameters_refuse_what_the_slash_normalization_cannot_handle() {
    let pattern = |name: &str| {
        template()["Parameters"][name]["AllowedPattern"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let cases = json!([
        [
            pattern("AuditPrefix"),
            [
                ["", true],
                ["logs", true],
                ["logs/", true],
                [PREFIX, true],
                ["custom/AWSLogs/1/redshift/us-east-1/", true],
                ["/logs", false],
                ["logs//", false],
                ["a//b", false],
                ["/", false],
                ["a|b", false],
                ["a b", false],
                ["a'b", false],
                ["a\"b", false],
                ["a\\b", false]
            ]
        ],
        [
            pattern("StatePrefix"),
            [
                ["redshift-audit-forwarder/", true],
                ["state", true],
                ["a/b/", true],
                ["", false],
                ["/", false],
                ["/state/", false],
                ["state//", false],
                ["st|ate", false]
            ]
        ]
    ]);
    // CloudFormation matches AllowedPattern against the whole value, as fullmatch does.
    let code = "import json, re, sys\n\
                for pattern, values in json.loads(sys.argv[1]):\n\
                \x20   for value, want in values:\n\
                \x20       got = re.fullmatch(pattern, value) is not None\n\
                \x20       if got != want: print(f'{pattern!r} on {value!r}: {got}')\n";
    let wrong = run_python(code, &[&cases.to_string()]);
    assert_eq!(wrong, "", "patterns decide wrongly");
}

#[test]
fn state_is_read_and_written_only_under_the_state_prefix_of_its_own_bucket() {
    let created = Stack::with(&[]);
    assert_eq!(created.env("STATE_BUCKET"), "{StateStore}");
    let rw = created.statement("ReadWriteState").unwrap();
    assert_eq!(list(&rw["Action"]), ["s3:GetObject", "s3:PutObject"]);
    assert_eq!(
        rw["Resource"],
        "arn:aws:s3:::{StateStore}/redshift-audit-forwarder/*"
    );
    let ls = created.statement("ListState").unwrap();
    assert_eq!(ls["Resource"], "arn:aws:s3:::{StateStore}");
    assert_eq!(
        ls["Condition"],
        json!({"StringLike": {"s3:prefix": "redshift-audit-forwarder/*"}})
    );
    assert!(created.statement("LocateStateBucket").is_none());

    let given = Stack::with(&[("StateBucket", "state-bucket"), ("StatePrefix", "state")]);
    assert!(given.resource("StateStore").is_none());
    assert!(given.resource("StateStorePolicy").is_none());
    assert_eq!(given.env("STATE_BUCKET"), "state-bucket");
    assert_eq!(
        given.statement("ReadWriteState").unwrap()["Resource"],
        "arn:aws:s3:::state-bucket/state/*"
    );
    assert_eq!(
        given.statement("ListState").unwrap()["Condition"],
        json!({"StringLike": {"s3:prefix": "state/*"}})
    );
    assert_eq!(
        given.statement("LocateStateBucket").unwrap()["Resource"],
        "arn:aws:s3:::state-bucket"
    );
    // Only the state statements may write.
    for stack in [created, given] {
        for statement in stack.role_statements() {
            let writes = list(&statement["Action"]).contains(&"s3:PutObject".to_string());
            assert_eq!(writes, statement["Sid"] == "ReadWriteState", "{statement}");
        }
    }
}

#[test]
fn records_go_only_to_the_one_stream_and_only_by_batch() {
    let put = Stack::with(&[]).statement("PutRecords").unwrap();
    assert_eq!(list(&put["Action"]), ["firehose:PutRecordBatch"]);
    assert_eq!(
        put["Resource"],
        format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{STREAM}")
    );
}

#[test]
fn the_role_grants_only_what_the_code_calls_and_nothing_on_star() {
    // The SDK calls in src/ (S3 GetObject, PutObject, ListObjectsV2 and HeadBucket, both
    // ListBucket; GetBucketLocation; Firehose PutRecordBatch; STS AssumeRole; the doctor's
    // GetBucketPolicy, GetBucketNotificationConfiguration and DescribeDeliveryStream, and with
    // the backfill queue its GetMetricData, the one call on "*"), the log group, the failure
    // destination, and what Lambda needs to poll the queue.
    let allowed: BTreeSet<&str> = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetBucketPolicy",
        "s3:GetBucketNotification",
        "firehose:PutRecordBatch",
        "firehose:DescribeDeliveryStream",
        "sqs:SendMessage",
        "sts:AssumeRole",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "cloudwatch:GetMetricData",
    ]
    .into();
    let mut seen = BTreeSet::new();
    for stack in deployments() {
        for statement in stack.role_statements() {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            for action in list(&statement["Action"]) {
                assert!(!action.contains('*'), "{action}");
                assert!(allowed.contains(action.as_str()), "unexpected {action}");
                seen.insert(action);
            }
            let resources = list(&statement["Resource"]);
            assert!(!resources.is_empty(), "{statement}");
            // GetMetricData takes no resource: its statement holds it alone, on "*".
            if list(&statement["Action"]) == ["cloudwatch:GetMetricData"] {
                assert_eq!(resources, ["*"], "{statement}");
                continue;
            }
            for resource in resources {
                assert_ne!(resource, "*", "{statement}");
                assert!(
                    !resource.ends_with(":::*") && !resource.contains("/*/"),
                    "{statement}"
                );
            }
        }
    }
    for never in [
        "s3:DeleteObject",
        "firehose:PutRecord",
        "sqs:ChangeMessageVisibility",
    ] {
        assert!(!seen.contains(never), "{never} granted");
    }
    // Every allowed action is used by some deployment: the list above is not stale.
    assert_eq!(seen.len(), allowed.len(), "{seen:?}");
}

#[test]
fn every_queue_has_a_tls_only_policy() {
    for stack in deployments() {
        let resources = stack.resources();
        let queues: Vec<&String> = resources
            .iter()
            .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue")
            .map(|(name, _)| name)
            .collect();
        assert!(!queues.is_empty());
        for queue in queues {
            let arn = format!("{{{queue}.Arn}}");
            let tls_only = resources.values().any(|r| {
                r["Type"] == "AWS::SQS::QueuePolicy"
                    && r["Properties"]["Queues"] == json!([format!("{{{queue}}}")])
                    && r["Properties"]["PolicyDocument"]["Statement"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|s| {
                            s["Effect"] == "Deny"
                                && s["Principal"] == "*"
                                && s["Action"] == "sqs:*"
                                && s["Resource"] == arn
                                && s["Condition"]
                                    == json!({"Bool": {"aws:SecureTransport": "false"}})
                        })
            });
            assert!(tls_only, "{queue} takes plain HTTP");
        }
    }
}

#[test]
fn the_created_state_bucket_is_versioned_private_encrypted_and_tls_only() {
    let stack = Stack::with(&[]);
    let bucket = stack.resource("StateStore").unwrap();
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    assert_eq!(bucket["DeletionPolicy"], "Retain");
    let p = &bucket["Properties"];
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        p["PublicAccessBlockConfiguration"],
        json!({"BlockPublicAcls": true, "BlockPublicPolicy": true,
               "IgnorePublicAcls": true, "RestrictPublicBuckets": true})
    );
    assert_eq!(
        p["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
        "BucketOwnerEnforced"
    );
    assert_eq!(
        p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    let policy = stack.resource("StateStorePolicy").unwrap();
    assert_eq!(policy["Properties"]["Bucket"], "{StateStore}");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert!(statements.iter().any(|s| {
        s["Effect"] == "Deny"
            && s["Principal"] == "*"
            && s["Action"] == "s3:*"
            && s["Resource"] == json!(["{StateStore.Arn}", "{StateStore.Arn}/*"])
            && s["Condition"] == json!({"Bool": {"aws:SecureTransport": "false"}})
    }));
}

#[test]
fn state_in_the_audit_bucket_must_stay_outside_the_audit_prefix() {
    for (overrides, refused) in [
        (
            &[
                ("StateBucket", BUCKET),
                ("AuditPrefix", ""),
                ("AllowWholeBucket", "true"),
            ][..],
            true,
        ),
        (&[("StateBucket", BUCKET), ("StatePrefix", PREFIX)], true),
        (&[("StateBucket", BUCKET), ("StatePrefix", "state/")], false),
        (
            &[("StateBucket", "state-bucket"), ("StatePrefix", PREFIX)],
            false,
        ),
        (&[("AuditPrefix", ""), ("AllowWholeBucket", "true")], false),
    ] {
        let broken = Stack::with(overrides).broken_rules();
        assert_eq!(!broken.is_empty(), refused, "{overrides:?}: {broken:?}");
        if refused {
            assert!(
                broken.iter().all(|b| b.contains("StateBucket")),
                "{broken:?}"
            );
        }
    }
}

#[test]
fn every_trigger_still_reaches_the_function_and_failures_still_alarm() {
    for stack in deployments() {
        let r = stack.resources();
        let trigger = stack.params["Trigger"].as_str();
        let queue = stack.params["UseQueue"] == "true";
        let target = if queue {
            "{Queue.Arn}"
        } else {
            "{Function.Arn}"
        };
        match trigger {
            "EventBridge" => {
                let rule = &r["AuditObjectCreatedRule"];
                assert_eq!(rule["Properties"]["Targets"][0]["Arn"], target);
                assert_eq!(r.contains_key("AuditObjectCreatedPermission"), !queue);
            }
            _ => assert!(!r.contains_key("AuditObjectCreatedRule")),
        }
        assert_eq!(
            r.contains_key("S3NotificationPermission"),
            trigger == "S3Notification" && !queue
        );
        assert_eq!(r.contains_key("QueueEventSource"), queue);
        let schedule = &r["Function"]["Properties"]["Events"]["Backfill"];
        assert_eq!(schedule["Properties"]["State"], "ENABLED");
        for alarm in ["ErrorsAlarm", "FailedInvocationsAlarm"] {
            assert!(r.contains_key(alarm), "{alarm}");
        }
        assert_eq!(r.contains_key("DeadLetterAlarm"), queue);
    }
}

#[test]
fn the_doctor_reads_only_the_audit_bucket_and_the_one_stream() {
    let stack = Stack::with(&[]);
    let inspect = stack.statement("InspectAuditBucket").unwrap();
    assert_eq!(
        list(&inspect["Action"]),
        ["s3:GetBucketPolicy", "s3:GetBucketNotification"]
    );
    assert_eq!(inspect["Resource"], format!("arn:aws:s3:::{BUCKET}"));
    let describe = stack.statement("DescribeStream").unwrap();
    assert_eq!(
        list(&describe["Action"]),
        ["firehose:DescribeDeliveryStream"]
    );
    assert_eq!(
        describe["Resource"],
        format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{STREAM}")
    );
}

#[test]
fn metric_settings_reach_the_function_and_the_alarms_watch_those_metrics() {
    let topic = ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:alarms");
    let stack = Stack::with(&[topic]);
    assert_eq!(stack.env("METRICS"), "true");
    assert_eq!(stack.env("METRICS_NAMESPACE"), "RedshiftAuditForwarder");
    assert_eq!(stack.env("METRICS_CLUSTER_DIMENSION"), "true");
    // 3 hours, in the unit STALE_AFTER takes.
    assert_eq!(stack.env("STALE_AFTER"), "10800s");
    let r = stack.resources();
    for (alarm, log_type) in [
        ("ConnectionLogStaleAlarm", "connectionlog"),
        ("UserActivityLogStaleAlarm", "useractivitylog"),
    ] {
        let p = &r[alarm]["Properties"];
        assert_eq!(p["MetricName"], "NewestFileAgeSeconds", "{alarm}");
        assert_eq!(p["Namespace"], "RedshiftAuditForwarder");
        assert_eq!(
            p["Dimensions"],
            json!([{"Name": "LogType", "Value": log_type}])
        );
        assert_eq!(p["Statistic"], "Maximum");
        assert_eq!(p["Threshold"], "10800");
        assert_eq!(p["AlarmActions"], json!([topic.1]));
    }
    // User logs appear only when users change: no staleness alarm unless asked for.
    assert!(!r.contains_key("UserLogStaleAlarm"));
    for (alarm, metric) in [
        ("FailedObjectsAlarm", "FailedObjects"),
        ("SetAsideAlarm", "SetAsideObjects"),
        ("LagAlarm", "LagSeconds"),
    ] {
        let p = &r[alarm]["Properties"];
        let watched: Vec<&Value> = p["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .collect();
        assert_eq!(watched.len(), 3, "{alarm}: one per log type");
        assert!(watched.iter().all(|m| m["Metric"]["MetricName"] == metric));
        assert_eq!(p["AlarmActions"], json!([topic.1]));
    }
    assert_eq!(r["LagAlarm"]["Properties"]["Threshold"], "10800");
    let body = r["Dashboard"]["Properties"]["DashboardBody"]
        .as_str()
        .unwrap();
    let dashboard: Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    assert_eq!(dashboard["widgets"].as_array().unwrap().len(), 7);

    let user = Stack::with(&[topic, ("UserLogStaleAfterSeconds", "86400")]);
    assert_eq!(
        user.resource("UserLogStaleAlarm").unwrap()["Properties"]["Threshold"],
        "86400"
    );
    // Without the walk nothing reports freshness; without metrics nothing at all.
    let no_walk = Stack::with(&[topic, ("BackfillEnabled", "false")]);
    assert!(no_walk.resource("ConnectionLogStaleAlarm").is_none());
    assert!(no_walk.resource("FailedObjectsAlarm").is_some());
    let off = Stack::with(&[topic, ("Metrics", "false")]);
    assert_eq!(off.env("METRICS"), "false");
    for gone in [
        "ConnectionLogStaleAlarm",
        "FailedObjectsAlarm",
        "SetAsideAlarm",
        "LagAlarm",
        "Dashboard",
    ] {
        assert!(off.resource(gone).is_none(), "{gone}");
    }
    // No topic: no alarms, still a dashboard.
    let quiet = Stack::with(&[]);
    assert!(quiet.resource("FailedObjectsAlarm").is_none());
    assert!(quiet.resource("Dashboard").is_some());
}

/// Resources of a stack with their logical ids.
type Named = Vec<(String, Value)>;

/// The CloudWatch Logs subscription filters and the `logs.amazonaws.com` permissions of a stack.
fn subscriptions(stack: &Stack) -> (Named, Named) {
    let resources = stack.resources();
    let filters = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Logs::SubscriptionFilter")
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect();
    let permissions = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::Lambda::Permission"
                && r["Properties"]["Principal"] == "logs.amazonaws.com"
        })
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect();
    (filters, permissions)
}

#[test]
fn each_named_log_group_gets_a_subscription_and_a_permission_limited_to_that_group() {
    let groups = [
        "/aws/redshift/cluster/prod/useractivitylog",
        "/aws/redshift/sales-ns/connectionlog",
    ];
    let stack = Stack::with(&[("LogGroups", &groups.join(","))]);
    let (filters, permissions) = subscriptions(&stack);
    assert_eq!(filters.len(), 2, "{filters:?}");
    assert_eq!(permissions.len(), 2, "{permissions:?}");
    for (slot, group) in groups.iter().enumerate() {
        let n = slot + 1;
        let (_, permission) = permissions
            .iter()
            .find(|(name, _)| *name == format!("LogGroupPermission{n}"))
            .unwrap_or_else(|| panic!("no permission for {group}"));
        let p = &permission["Properties"];
        assert_eq!(p["Action"], "lambda:InvokeFunction");
        assert_eq!(p["FunctionName"], "{Function.Arn}");
        assert_eq!(
            p["SourceArn"],
            format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*")
        );
        assert_eq!(p["SourceAccount"], ACCOUNT);
        let (_, filter) = filters
            .iter()
            .find(|(name, _)| *name == format!("LogGroupSubscription{n}"))
            .unwrap_or_else(|| panic!("no subscription for {group}"));
        assert_eq!(filter["Properties"]["LogGroupName"], *group);
        assert_eq!(filter["Properties"]["FilterPattern"], "", "every log event");
        assert_eq!(filter["Properties"]["DestinationArn"], "{Function.Arn}");
        // CloudWatch Logs checks it may invoke when the filter is created.
        assert_eq!(filter["DependsOn"], format!("LogGroupPermission{n}"));
    }
    assert!(stack.resource("AtMost5LogGroups").is_none());
}

#[test]
fn no_log_groups_means_no_subscription_and_no_logs_permission() {
    let (filters, permissions) = subscriptions(&Stack::with(&[]));
    assert!(filters.is_empty(), "{filters:?}");
    assert!(permissions.is_empty(), "{permissions:?}");
    for stack in deployments() {
        let (filters, permissions) = subscriptions(&stack);
        assert!(filters.is_empty() && permissions.is_empty());
    }
}

#[test]
fn five_log_groups_fill_the_slots_and_a_sixth_fails_the_stack_instead_of_being_ignored() {
    let names: Vec<String> = (1..=6)
        .map(|i| format!("/aws/redshift/ns{i}/userlog"))
        .collect();
    let five = Stack::with(&[("LogGroups", &names[..5].join(","))]);
    let (filters, permissions) = subscriptions(&five);
    let mut subscribed: Vec<String> = filters
        .iter()
        .map(|(_, f)| {
            f["Properties"]["LogGroupName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    subscribed.sort();
    assert_eq!(subscribed, names[..5]);
    assert_eq!(permissions.len(), 5);
    assert!(five.resource("AtMost5LogGroups").is_none());
    let six = Stack::with(&[("LogGroups", &names.join(","))]);
    let refusal = six
        .resource("AtMost5LogGroups")
        .expect("a sixth group refused");
    assert_eq!(refusal["Type"], "AWS::CloudFormation::WaitCondition");
    assert_eq!(refusal["Properties"]["Handle"], "{AtMost5LogGroupsHandle}");
}

#[test]
fn cloudtrail_settings_reach_the_function_and_a_trail_bucket_can_be_the_audit_bucket() {
    let stack = Stack::with(&[
        ("AuditPrefix", "AWSLogs"),
        ("LogTypes", "useractivitylog,cloudtrail"),
        (
            "CloudTrailEventSources",
            "redshift.amazonaws.com,redshift-data.amazonaws.com",
        ),
    ]);
    assert_eq!(stack.broken_rules(), Vec::<String>::new());
    assert_eq!(stack.env("LOG_TYPES"), "useractivitylog,cloudtrail");
    assert_eq!(
        stack.env("CLOUDTRAIL_EVENT_SOURCES"),
        "redshift.amazonaws.com,redshift-data.amazonaws.com"
    );
    assert_eq!(Stack::with(&[]).env("CLOUDTRAIL_EVENT_SOURCES"), "");
    // Both trees of one bucket: Redshift's own files and the trail's.
    let read = stack.statement("ReadAuditLogs").unwrap();
    let resource = read["Resource"].as_str().unwrap();
    let folder = resource
        .strip_prefix(&format!("arn:aws:s3:::{BUCKET}/"))
        .and_then(|r| r.strip_suffix('*'))
        .unwrap();
    for key in [
        "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/\
         123456789012_CloudTrail_us-east-1_20240301T0055Z_AbCdEf0123456789.json.gz",
        "AWSLogs/o-abcdef1234/210987654321/CloudTrail/eu-west-1/2024/03/02/x.json.gz",
        "AWSLogs/123456789012/redshift/us-east-1/2024/03/01/\
         123456789012_redshift_us-east-1_prod_useractivitylog_2024-03-01T00:53.gz",
    ] {
        assert!(key.starts_with(folder), "{key} outside {resource}");
    }
    let rule = stack.resource("AuditObjectCreatedRule").unwrap();
    assert_eq!(
        rule["Properties"]["EventPattern"]["detail"]["object"]["key"],
        json!([{"wildcard": "AWSLogs/*.gz"}]),
        "trail files (.json.gz) trigger too"
    );
    let patterns = json!([
        [
            template()["Parameters"]["LogTypes"]["AllowedPattern"],
            [
                ["cloudtrail", true],
                ["connectionlog,userlog,useractivitylog,cloudtrail", true],
                ["cloudtrail,", false],
                ["trail", false]
            ]
        ],
        [
            template()["Parameters"]["CloudTrailEventSources"]["AllowedPattern"],
            [
                ["", true],
                ["redshift.amazonaws.com", true],
                ["redshift.amazonaws.com,s3.amazonaws.com", true],
                ["redshift.amazonaws.com, s3.amazonaws.com", false]
            ]
        ]
    ]);
    let code = "import json, re, sys\n\
                for pattern, values in json.loads(sys.argv[1]):\n\
                \x20   for value, want in values:\n\
                \x20       got = re.fullmatch(pattern, value) is not None\n\
                \x20       if got != want: print(f'{pattern!r} on {value!r}: {got}')\n";
    assert_eq!(run_python(code, &[&patterns.to_string()]), "");
    let formats = &template()["Parameters"]["OutputFormat"]["AllowedValues"];
    assert_eq!(*formats, json!(["raw", "ocsf"]));
}

#[test]
fn cfn_lint_finds_nothing_in_the_template() {
    // The command-line tool with its default rules, as `make lint` runs it.
    let cfn_lint = python().with_file_name("cfn-lint");
    let out = Command::new(&cfn_lint)
        .arg("template.yaml")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make venv` first)", cfn_lint.display()));
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The backfill's fan-out: its own queue and dead-letter queue, consumed with the concurrency
/// cap of `BackfillConcurrency`, alarmed on its dead letters, and the queue's URL in the
/// function's settings; none of it without `BackfillFanOut`.
#[test]
fn the_backfill_queue_is_consumed_with_the_concurrency_cap_and_its_dead_letters_alarm() {
    let alarms = ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:alarms");
    let stack = Stack::with(&[
        ("BackfillFanOut", "true"),
        ("BackfillConcurrency", "7"),
        alarms,
    ]);
    let mapping = stack
        .resource("BackfillQueueEventSource")
        .expect("the mapping");
    assert_eq!(
        mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"],
        json!("7")
    );
    assert_eq!(
        mapping["Properties"]["EventSourceArn"],
        "{BackfillQueue.Arn}"
    );
    assert_eq!(
        mapping["Properties"]["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let queue = stack.resource("BackfillQueue").unwrap();
    assert_eq!(
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"],
        "{BackfillDeadLetterQueue.Arn}"
    );
    let alarm = stack
        .resource("BackfillDeadLetterAlarm")
        .expect("the alarm");
    assert_eq!(
        alarm["Properties"]["Dimensions"][0]["Value"],
        "{BackfillDeadLetterQueue.QueueName}"
    );
    assert_eq!(stack.env("BACKFILL_QUEUE_URL"), "{BackfillQueue}");
    let fan_out = stack.statement("FanOutBackfill").unwrap();
    assert_eq!(
        list(&fan_out["Action"]),
        [
            "sqs:SendMessage",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes"
        ]
    );
    assert_eq!(list(&fan_out["Resource"]), ["{BackfillQueue.Arn}"]);
    // The default cap is the mapping's least: one instance fills the default stream quota.
    let default = Stack::with(&[("BackfillFanOut", "true")]);
    let mapping = default.resource("BackfillQueueEventSource").unwrap();
    assert_eq!(
        mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"],
        json!("2")
    );

    let off = Stack::with(&[alarms]);
    for name in [
        "BackfillQueue",
        "BackfillDeadLetterQueue",
        "BackfillQueueEventSource",
        "BackfillDeadLetterAlarm",
    ] {
        assert!(
            off.resource(name).is_none(),
            "{name} without BackfillFanOut"
        );
    }
    assert_eq!(off.env("BACKFILL_QUEUE_URL"), "");
    assert!(off.statement("FanOutBackfill").is_none());
}

/// The Batch Operations role: assumed only by S3 Batch Operations of this account, may invoke
/// only this function, read only the manifests and write only the reports.
#[test]
fn the_batch_operations_role_invokes_only_this_function_and_reads_only_the_manifests() {
    let stack = Stack::with(&[("BatchOperationsBucket", "ops-bucket")]);
    let role = stack.resource("BatchOperationsRole").expect("the role");
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().unwrap().len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({"Service": "batchoperations.s3.amazonaws.com"})
    );
    assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    assert_eq!(
        trust[0]["Condition"],
        json!({"StringEquals": {"aws:SourceAccount": ACCOUNT}})
    );
    let statements: Vec<Value> = role["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect();
    let granted: BTreeMap<String, (Vec<String>, Vec<String>)> = statements
        .iter()
        .map(|s| {
            assert_eq!(s["Effect"], "Allow");
            (
                s["Sid"].as_str().unwrap().to_string(),
                (list(&s["Action"]), list(&s["Resource"])),
            )
        })
        .collect();
    assert_eq!(
        granted["InvokeForwarder"],
        (
            vec!["lambda:InvokeFunction".into()],
            vec!["{Function.Arn}".into()]
        )
    );
    assert_eq!(
        granted["ReadManifest"],
        (
            vec!["s3:GetObject".into(), "s3:GetObjectVersion".into()],
            vec!["arn:aws:s3:::ops-bucket/redshift-audit-forwarder/manifests/*".into()]
        )
    );
    assert_eq!(
        granted["WriteReport"],
        (
            vec!["s3:PutObject".into()],
            vec!["arn:aws:s3:::ops-bucket/redshift-audit-forwarder/batch-reports/*".into()]
        )
    );
    assert_eq!(granted.len(), 4, "{granted:?}");
    assert!(Stack::with(&[]).resource("BatchOperationsRole").is_none());
}

#[test]
fn the_lake_is_written_only_under_its_locations_or_through_its_provider_roles() {
    let stack = Stack::with(LAKE);
    let assume = stack.statement("AssumeLakeRoles").unwrap();
    assert_eq!(list(&assume["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        list(&assume["Resource"]),
        ["arn:aws:iam::111122223333:role/AmazonSecurityLake-Provider-rs-auth-us-east-1"]
    );
    let write = stack.statement("WriteLake").unwrap();
    assert_eq!(
        list(&write["Action"]),
        ["s3:PutObject", "s3:AbortMultipartUpload"]
    );
    // Each location as a folder: one slash, whether the parameter ends with one or not.
    assert_eq!(
        list(&write["Resource"]),
        [
            "arn:aws:s3:::aws-security-data-lake-us-east-1-abc/ext/rs-acct/*",
            "arn:aws:s3:::lake-two/*",
            "arn:aws:s3:::aws-security-data-lake-us-east-1-abc/ext/rs-base/*",
        ]
    );
    // Without Firehose, nothing on the stream.
    assert!(stack.statement("PutRecords").is_none());
    assert!(stack.statement("DescribeStream").is_none());
    // The variables the function gets are settings it accepts (LOG_TYPES' classes all there).
    let vars: Vec<(String, String)> = [
        "DESTINATIONS",
        "SECURITY_LAKE_SOURCES",
        "SECURITY_LAKE_EXTERNAL_ID",
        "LOG_TYPES",
    ]
    .iter()
    .map(|v| (v.to_string(), stack.env(v).as_str().unwrap().to_string()))
    .collect();
    let settings = redshift_audit_forwarder::settings::Settings::from_vars(|name| {
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e}: {vars:?}"));
    let lake = settings.destinations.security_lake.unwrap();
    assert_eq!(lake.sources.len(), 4);
    assert_eq!(lake.sources[0].prefix, "ext/rs-auth/1.0/");
    assert!(lake.sources[0].role_arn.is_some() && lake.sources[1].role_arn.is_none());
    assert_eq!(lake.external_id.as_deref(), Some("lake-ext-id"));
}

#[test]
fn firehose_alone_grants_nothing_in_the_lake_and_needs_a_stream() {
    let stack = Stack::with(&[]);
    assert!(stack.statement("AssumeLakeRoles").is_none());
    assert!(stack.statement("WriteLake").is_none());
    assert_eq!(stack.env("SECURITY_LAKE_SOURCES"), "");
    assert_eq!(stack.env("DESTINATIONS"), "firehose");
    let no_stream = Stack::with(&[("DeliveryStream", "")]);
    assert_eq!(
        no_stream.broken_rules(),
        ["DeliveryStream is required unless Destinations is security-lake"]
    );
    let mut lake_only = LAKE.to_vec();
    lake_only.push(("DeliveryStream", ""));
    assert!(Stack::with(&lake_only).broken_rules().is_empty());
}
