//! Finding the partition trees under the audit prefix and the earliest day partition in a
//! tree, with delimiter listings (see the module documentation of the walk).

use super::{Backfill, Halt, Summary, MAX_DISCOVERY_DEPTH};
use crate::aws_names::{is_account_id, is_region};
use crate::ports::{ListError, Listed};

impl Backfill {
    /// Every page of a listing: the objects and the common prefixes.
    pub(super) async fn list_all(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(Vec<Listed>, Vec<String>), ListError> {
        let (mut objects, mut prefixes, mut token) = (Vec::new(), Vec::new(), None);
        loop {
            summary.list_calls += 1;
            let page = self
                .list
                .list_page(&self.bucket, prefix, delimiter, token)
                .await?;
            objects.extend(page.objects);
            prefixes.extend(page.prefixes);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok((objects, prefixes)),
            }
        }
    }

    /// The names of the folders directly under `folder`.
    pub(super) async fn children(
        &self,
        folder: &str,
        summary: &mut Summary,
    ) -> Result<Vec<String>, ListError> {
        let (_, prefixes) = self.list_all(folder, Some("/"), summary).await?;
        let mut names: Vec<String> = prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(folder))
            .map(|rest| rest.trim_end_matches('/').to_string())
            .filter(|name| !name.is_empty())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The partition trees under the audit prefix; see the module documentation.
    pub async fn discover_trees(&self, summary: &mut Summary) -> Result<Vec<String>, ListError> {
        let found = self.find_trees(summary, false).await?;
        Ok(found.into_iter().map(|(tree, _)| tree).collect())
    }

    /// The partition trees and, for each, the folders directly under it (its years), which the
    /// search for the earliest day would otherwise list again. With `trails`, CloudTrail's
    /// `AWSLogs/[<org-id>/]<account>/CloudTrail/<region>/` trees too (never its
    /// `CloudTrail-Digest/` or `CloudTrail-Insight/` folders).
    pub(super) async fn find_trees(
        &self,
        summary: &mut Summary,
        trails: bool,
    ) -> Result<Vec<(String, Vec<String>)>, ListError> {
        let root = as_folder(&self.prefix);
        let mut trees = Vec::new();
        let mut stack = vec![(root, 0usize)];
        while let Some((folder, depth)) = stack.pop() {
            let children = self.children(&folder, summary).await?;
            if children.iter().any(|c| is_year(c)) {
                trees.push((folder, children));
                continue;
            }
            if depth >= MAX_DISCOVERY_DEPTH {
                continue;
            }
            let parent = folder
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            let grandparent = folder
                .trim_end_matches('/')
                .rsplit('/')
                .nth(1)
                .unwrap_or("");
            for child in children.iter().rev() {
                let descend = match parent {
                    "AWSLogs" => is_account_id(child) || (trails && is_org_id(child)),
                    "redshift" => is_region(child),
                    TRAIL_FOLDER => trails && is_region(child),
                    p if is_account_id(p) && grandparent == "AWSLogs" => {
                        child == "redshift" || (trails && child == TRAIL_FOLDER)
                    }
                    p if is_account_id(p) && is_org_id(grandparent) => {
                        trails && child == TRAIL_FOLDER
                    }
                    p if is_org_id(p) && grandparent == "AWSLogs" => trails && is_account_id(child),
                    _ => child == "AWSLogs",
                };
                if descend {
                    stack.push((format!("{folder}{child}/"), depth + 1));
                }
            }
        }
        trees.sort();
        Ok(trees)
    }

    /// The earliest `YYYY/MM/DD/` partition in a tree, given the folders under it.
    pub(super) async fn earliest_day(
        &self,
        tree: &str,
        years: &[String],
        summary: &mut Summary,
    ) -> Result<Option<i64>, Halt> {
        for year in years {
            let Some(y) = number(year, 4, 1, 9999) else {
                continue;
            };
            let year_folder = format!("{tree}{year}/");
            for month in self.children(&year_folder, summary).await? {
                let Some(m) = number(&month, 2, 1, 12) else {
                    continue;
                };
                let month_folder = format!("{year_folder}{month}/");
                let last = crate::time::days_in_month(y, m);
                let days = self.children(&month_folder, summary).await?;
                if let Some(d) = days.iter().find_map(|d| number(d, 2, 1, last)) {
                    return Ok(crate::time::day_of_date(i64::from(y), m, d));
                }
            }
        }
        Ok(None)
    }
}

/// The folder of a trail's event files (not `CloudTrail-Digest` or `CloudTrail-Insight`).
const TRAIL_FOLDER: &str = "CloudTrail";

/// An AWS Organizations id: `o-` and 10 to 32 lowercase letters or digits.
fn is_org_id(name: &str) -> bool {
    name.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn as_folder(prefix: &str) -> String {
    let base = prefix.trim_end_matches('/');
    if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    }
}

fn number(text: &str, digits: usize, min: u32, max: u32) -> Option<u32> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (min..=max).contains(n))
}

fn is_year(name: &str) -> bool {
    number(name, 4, 1970, 9999).is_some()
}
