//! Properties of secret redaction (issue 8, "Prove it"): no text makes it panic, it never grows a
//! statement by more than the markers it adds, redacting twice changes nothing more, and no
//! generated secret survives in any form the redaction covers, whatever the keywords' case and
//! the whitespace around them.

use proptest::prelude::*;
use redshift_audit_forwarder::redact::{redact, MARKER};

/// Case counts stay modest so the file runs in seconds in a debug build; `PROPTEST_CASES`
/// overrides them for a deeper run.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces that exercise every branch of the scanner when strung together at random.
const TOKENS: &[&str] = &[
    "password",
    "PASSWORD",
    "PassWord",
    "credentials",
    "CREDENTIALS",
    " as ",
    "AS",
    "with ",
    "access_key_id",
    "aws_",
    "AWS_",
    "secret_access_key",
    "session_token",
    "master_symmetric_key",
    "aws_iam_role",
    "token",
    "=",
    ";",
    "'",
    "''",
    "\\",
    "\"",
    " ",
    "\n",
    "\t",
    "\r\n",
    "disable",
    "AKIA",
    "ASIA",
    "akia",
    "IOSFODNN7EXAMPLE",
    "0123456789ABCDEF",
    "x",
    "_",
    "é",
    "日本",
    "🎉",
    "[REDACTED]",
    "select 1",
    "--",
    "/*",
    "*/",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat())
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Checks what holds for any text: bounded growth and a second pass that changes nothing.
fn check_any(text: &str) -> Result<(), TestCaseError> {
    let Some(out) = redact(text) else {
        return Ok(());
    };
    prop_assert_ne!(&out, text, "Some means changed");
    let added = count(&out, MARKER).saturating_sub(count(text, MARKER));
    prop_assert!(
        out.len() <= text.len() + added * MARKER.len(),
        "{:?} grew to {:?}",
        text,
        out
    );
    prop_assert_eq!(redact(&out), None, "second pass changed {:?}", out);
    Ok(())
}

/// The keyword with each letter's case picked by `mask`.
fn cased(keyword: &str, mask: u64) -> String {
    keyword
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn gap() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&[" ", "\n", "\t", "\r\n", "  \n\t  ", " = ", "\n=\n"][..])
}

/// Base64-like key material, as AWS secret keys and tokens are.
fn key_material() -> impl Strategy<Value = String> {
    "[A-Z0-9/+]{12,60}"
}

/// A password as typed: printable, with quotes (written doubled) and backslashes.
fn password() -> impl Strategy<Value = String> {
    "[A-Z0-9!@#$%^&*()/+|;:,.<>?'\\\\]{12,40}"
}

fn key_id() -> impl Strategy<Value = String> {
    ("(AKIA|ASIA)", "[A-Z0-9]{16}").prop_map(|(p, s)| p + &s)
}

/// Words a statement around a secret may hold: lower case, so they never contain a generated
/// secret's upper-case text by chance.
fn noise() -> impl Strategy<Value = String> {
    "[a-z ,()*\n]{0,40}"
}

/// Every stretch of 8 or more characters of the secret that the statement spells out as-is.
fn fragments(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| !w.contains('\''))
        .collect()
}

#[derive(Debug, Clone)]
enum Form {
    Credentials {
        key_id: String,
        secret: String,
        token: String,
    },
    CredentialsWithRole {
        key: String,
    },
    Keyword {
        keyword: &'static str,
        value: String,
    },
    Password {
        value: String,
    },
    KeyIdAnywhere {
        key_id: String,
    },
    UnquotedPair {
        key: &'static str,
        value: String,
    },
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        (key_id(), key_material(), key_material()).prop_map(|(key_id, secret, token)| {
            Form::Credentials {
                key_id,
                secret,
                token,
            }
        }),
        key_material().prop_map(|key| Form::CredentialsWithRole { key }),
        (
            prop::sample::select(
                &[
                    "ACCESS_KEY_ID",
                    "SECRET_ACCESS_KEY",
                    "SESSION_TOKEN",
                    "MASTER_SYMMETRIC_KEY"
                ][..]
            ),
            key_material()
        )
            .prop_map(|(keyword, value)| Form::Keyword { keyword, value }),
        prop_oneof![
            password(),
            "[0-9a-f]{32}".prop_map(|h| format!("md5{h}")),
            password().prop_map(|p| format!("sha256|{p}")),
        ]
        .prop_map(|value| Form::Password { value }),
        key_id().prop_map(|key_id| Form::KeyIdAnywhere { key_id }),
        (
            prop::sample::select(
                &[
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "session_token",
                    "master_symmetric_key"
                ][..]
            ),
            key_material()
        )
            .prop_map(|(key, value)| Form::UnquotedPair { key, value }),
    ]
}

/// The statement text and the secrets it carries.
fn render(form: &Form, mask: u64, gap: &str, before: &str, after: &str) -> (String, Vec<String>) {
    let quoted = |s: &str| s.replace('\'', "''");
    // `CREDENTIALS` takes whitespace only before its string.
    let space = gap.replace('=', " ");
    let (body, secrets) = match form {
        Form::Credentials { key_id, secret, token } => (
            format!(
                "copy t from 's3://b/k' {}{space}{}{space}'{}={key_id};{}={secret};{}={token}' csv",
                cased("with credentials", mask),
                cased("as", mask >> 7),
                cased("aws_access_key_id", mask >> 3),
                cased("aws_secret_access_key", mask >> 5),
                cased("token", mask >> 9),
            ),
            vec![key_id.clone(), secret.clone(), token.clone()],
        ),
        Form::CredentialsWithRole { key } => (
            format!(
                "unload ('select 1') to 's3://b/p' {}{space}'aws_iam_role=arn:aws:iam::123456789012:role/r;{}={key}'",
                cased("credentials", mask),
                cased("master_symmetric_key", mask >> 11),
            ),
            vec![key.clone()],
        ),
        Form::Keyword { keyword, value } => (
            format!("copy t from 's3://b/k' {}{gap}'{}' region 'x'", cased(keyword, mask), quoted(value)),
            vec![quoted(value)],
        ),
        Form::Password { value } => (
            format!("alter user bob {}{gap}'{}' valid until 'infinity'", cased("password", mask), quoted(value)),
            vec![quoted(value)],
        ),
        Form::KeyIdAnywhere { key_id } => (format!("-- {key_id}\nselect '{key_id}'"), vec![key_id.clone()]),
        Form::UnquotedPair { key, value } => (
            format!("-- {}={value} ;", cased(key, mask)),
            vec![value.clone()],
        ),
    };
    (format!("{before}\n{body}\n{after}"), secrets)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_text_is_redacted_without_panic_or_growth_past_the_markers(text in any::<String>()) {
        check_any(&text)?;
    }

    #[test]
    fn keyword_soup_is_redacted_without_panic_or_growth_past_the_markers(text in soup()) {
        check_any(&text)?;
    }

    #[test]
    fn no_generated_secret_survives_in_any_form(
        form in form(),
        mask in any::<u64>(),
        gap in gap(),
        before in noise(),
        after in noise(),
    ) {
        let (statement, secrets) = render(&form, mask, gap, &before, &after);
        let out = redact(&statement);
        prop_assert!(out.is_some(), "nothing redacted in {:?}", statement);
        let out = out.unwrap_or_default();
        for secret in &secrets {
            prop_assert!(!out.contains(secret.as_str()), "{:?} survives in {:?}", secret, out);
            for fragment in fragments(secret) {
                prop_assert!(!out.contains(&fragment), "{:?} of {:?} survives in {:?}", fragment, secret, out);
            }
        }
        prop_assert!(out.starts_with(&before), "text before the secret is kept");
        prop_assert!(out.ends_with(&after), "text after the secret is kept");
        check_any(&statement)?;
    }

    #[test]
    fn text_without_keywords_is_returned_untouched(text in "[a-z0-9 ,.()*=;'\n]{0,200}") {
        // No keyword can be spelled from these characters but by chance: skip those cases.
        let lower = text.to_ascii_lowercase();
        prop_assume!(!["password", "credentials", "access_key_id", "secret_access_key",
            "session_token", "master_symmetric_key", "akia", "asia"].iter().any(|k| lower.contains(k)));
        prop_assert_eq!(redact(&text), None);
    }
}
