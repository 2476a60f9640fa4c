//! `BACKFILL_QUEUE_URL` (and `backfill --enqueue`): the URL of the standard SQS queue the
//! backfill fans objects out to.

/// Longest SQS queue name (SQS quota).
const MAX_QUEUE_NAME: usize = 80;

/// A queue URL `http(s)://HOST/ACCOUNT/NAME`: https, except to a loopback host (local test
/// servers); a 12-digit account; a standard queue's name (a FIFO queue would need a message
/// group per object and gives nothing the ledger does not).
pub fn queue_url(url: &str) -> Result<String, String> {
    // Values are quoted in excerpt, masked, as every setting's (`parse::shown`).
    let url_q = super::parse::shown(url);
    let shape = "is not an SQS queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/redshift-audit-backfill";
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url_q} {shape}"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url_q} {shape}"))?;
    let host_name = host.rsplit_once(':').map_or(host, |(name, _port)| name);
    let loopback = matches!(host_name, "127.0.0.1" | "localhost" | "[::1]");
    match scheme {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "{url_q} must use https (http only to a loopback host)"
            ))
        }
    }
    if host_name.is_empty() {
        return Err(format!("{url_q} {shape}"));
    }
    let Some((account, name)) = path.trim_end_matches('/').split_once('/') else {
        return Err(format!("{url_q} {shape}"));
    };
    if !crate::aws_names::is_account_id(account) {
        let account_q = super::parse::shown(account);
        return Err(format!(
            "{url_q}: {account_q} is not a 12-digit account id ({shape})"
        ));
    }
    if name.ends_with(".fifo") {
        return Err(format!(
            "{url_q} is a FIFO queue; the backfill needs a standard queue (the ledger already \
             keeps each object from being sent twice)"
        ));
    }
    let valid_name = !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        let name_q = super::parse::shown(name);
        return Err(format!(
            "{url_q}: {name_q} is not a queue name (1 to 80 letters, digits, - and _)"
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The region of an AWS queue URL (`https://sqs.REGION.amazonaws.com/...`); `None` for other
/// hosts (a local server, a VPC endpoint): then the function's own region is used.
pub fn queue_region(url: &str) -> Option<&str> {
    let host = url.split_once("://")?.1.split('/').next()?;
    let region = host.strip_prefix("sqs.")?.split('.').next()?;
    crate::aws_names::is_region(region).then_some(region)
}

/// The queue's name, the last segment of a URL [`queue_url`] took (CloudWatch's `QueueName`
/// dimension).
pub fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_and_loopback_queue_urls_are_taken() {
        let aws = "https://sqs.eu-west-1.amazonaws.com/123456789012/redshift-audit-backfill";
        assert_eq!(queue_url(aws).unwrap(), aws);
        assert_eq!(queue_region(aws), Some("eu-west-1"));
        assert_eq!(queue_name(aws), "redshift-audit-backfill");
        let local = "http://127.0.0.1:5000/123456789012/backfill/";
        assert_eq!(
            queue_url(local).unwrap(),
            "http://127.0.0.1:5000/123456789012/backfill"
        );
        assert_eq!(queue_region(local), None);
    }

    #[test]
    fn wrong_queue_urls_are_refused_saying_why() {
        for (url, words) in [
            ("sqs/123456789012/q", "is not an SQS queue URL"),
            ("http://sqs.us-east-1.amazonaws.com/123456789012/q", "https"),
            ("https://sqs.us-east-1.amazonaws.com/12345/q", "12-digit"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo",
                "FIFO",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/a b",
                "queue name",
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012",
                "is not an SQS",
            ),
        ] {
            let reason = queue_url(url).unwrap_err();
            assert!(reason.contains(words), "{url}: {reason}");
        }
    }
}
