//! The `backfill` command's progress on stderr: a progress bar on a terminal (objects and bytes
//! done of those listed so far, rate, time left), plain lines at most every
//! [`PLAIN_EVERY`] otherwise (logs, CI), and a last line when the walk ends. A dry run's
//! would-send lines go to stdout as JSON.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::backfill::{day_label, Event};
use crate::time::rfc3339_ms;

/// Least time between two plain progress lines.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Counts of a walk in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Objects (and their stored bytes) listed to be handled so far.
    pub listed: u64,
    pub listed_bytes: u64,
    /// Objects handled: sent (or would be), skipped as done, failed.
    pub done: u64,
    pub done_bytes: u64,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The partition being walked.
    pub day: String,
}

impl Tally {
    /// Counts one event; true for a dry run's would-send.
    pub fn count(&mut self, event: &Event<'_>) {
        match event {
            Event::Day { tree, day } => self.day = format!("{tree}{}", day_label(*day)),
            Event::Listed { objects, bytes } => {
                self.listed += objects;
                self.listed_bytes += bytes;
            }
            Event::WouldSend(object) | Event::Enqueued(object) => {
                self.sent += 1;
                self.done += 1;
                self.done_bytes += object.size;
            }
            Event::Sent(receipt) => {
                self.sent += 1;
                self.done += 1;
                self.done_bytes += receipt.object_bytes.unwrap_or(0);
            }
            Event::SkippedDone(object) => {
                self.skipped += 1;
                self.done += 1;
                self.done_bytes += object.size;
            }
            Event::Failed(object, _) => {
                self.failed += 1;
                self.done += 1;
                self.done_bytes += object.size;
            }
            Event::SetAside(_) => {}
        }
    }

    /// `objects 12/40, 3.1 MB of 9.8 MB; 2 already done, 0 failed; at <tree><day>`.
    pub fn line(&self) -> String {
        format!(
            "objects {}/{}, {:.1} MB of {:.1} MB; {} sent, {} already done, {} failed; at {}",
            self.done,
            self.listed,
            self.done_bytes as f64 / 1e6,
            self.listed_bytes as f64 / 1e6,
            self.sent,
            self.skipped,
            self.failed,
            self.day
        )
    }
}

/// The progress display of one walk.
pub struct Progress {
    tally: Tally,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            tally: Tally::default(),
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    pub fn on(&mut self, event: Event<'_>) {
        self.tally.count(&event);
        if let Event::WouldSend(object) = event {
            let line = json!({
                "key": object.key,
                "size": object.size,
                "last_modified": rfc3339_ms(object.last_modified_ms),
            });
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        if let Event::SetAside(record) = event {
            let line = json!({ "set_aside": record });
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        match &self.bar {
            Some(bar) => {
                bar.set_length(self.tally.listed_bytes);
                bar.set_position(self.tally.done_bytes);
                bar.set_message(format!(
                    "objects {}/{} ({} done before, {} failed)",
                    self.tally.done, self.tally.listed, self.tally.skipped, self.tally.failed
                ));
            }
            None => {
                if self.last_line.elapsed() >= PLAIN_EVERY {
                    self.print();
                }
            }
        }
    }

    fn print(&mut self) {
        self.last_line = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        crate::report::eprint(&format!(
            "backfill: {} ({:.1} MB/s)",
            self.tally.line(),
            self.tally.done_bytes as f64 / 1e6 / seconds
        ));
    }

    /// The walk ended: the bar is cleared and one last line printed.
    pub fn done(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.print();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Listed;

    #[test]
    fn the_tally_counts_done_of_listed_objects_and_bytes() {
        let listed = Listed {
            key: "k".into(),
            size: 2_000_000,
            etag: "\"e\"".into(),
            last_modified_ms: 0,
        };
        let mut tally = Tally::default();
        tally.count(&Event::Day {
            tree: "AWSLogs/1/redshift/us-east-1/",
            day: 19_783,
        });
        tally.count(&Event::Listed {
            objects: 3,
            bytes: 6_000_000,
        });
        tally.count(&Event::SkippedDone(&listed));
        tally.count(&Event::WouldSend(&listed));
        assert_eq!((tally.done, tally.listed), (2, 3));
        assert_eq!(
            (tally.done_bytes, tally.listed_bytes),
            (4_000_000, 6_000_000)
        );
        assert_eq!(
            tally.line(),
            "objects 2/3, 4.0 MB of 6.0 MB; 1 sent, 1 already done, 0 failed; at AWSLogs/1/redshift/us-east-1/2024-03-01"
        );
    }
}
