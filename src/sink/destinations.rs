//! `DESTINATIONS`: Firehose, the Security Lake, or both, as one [`Sink`]. With both, every
//! line goes to each; nothing counts as accepted before both took it (the lake accepts at its
//! end only), so a retry resends the whole input to both: Firehose's consumers drop the
//! duplicates by record id, the lake's keys are rewritten with the same objects.

use super::{Accepted, Sink, SinkError, SinkStats, Taken};

/// The destinations of one input's lines.
pub enum Destinations<F, L> {
    Firehose(F),
    Lake(L),
    Both(F, L),
}

impl<F: Sink, L: Sink> Sink for Destinations<F, L> {
    fn begin(&mut self, identity: &[&str]) {
        match self {
            Destinations::Firehose(f) => f.begin(identity),
            Destinations::Lake(l) => l.begin(identity),
            Destinations::Both(f, l) => {
                f.begin(identity);
                l.begin(identity);
            }
        }
    }

    fn max_line(&self) -> Option<usize> {
        match self {
            Destinations::Firehose(f) | Destinations::Both(f, _) => f.max_line(),
            Destinations::Lake(l) => l.max_line(),
        }
    }

    async fn send<T>(&mut self, line: T) -> Result<(), SinkError>
    where
        T: AsRef<[u8]> + Send,
    {
        match self {
            Destinations::Firehose(f) => f.send(line).await,
            Destinations::Lake(l) => l.send(line).await,
            Destinations::Both(f, l) => {
                f.send(line.as_ref()).await?;
                l.send(line).await
            }
        }
    }

    async fn send_run(&mut self, run: &[u8]) -> Result<Taken, SinkError> {
        match self {
            Destinations::Firehose(f) => f.send_run(run).await,
            Destinations::Lake(l) => l.send_run(run).await,
            Destinations::Both(f, l) => {
                let taken = f.send_run(run).await?;
                let mut rest = &run[..taken.bytes];
                while !rest.is_empty() {
                    let n = l.send_run(rest).await?.bytes;
                    if n == 0 {
                        return Err(SinkError::Internal("the lake took no line".into()));
                    }
                    rest = &rest[n..];
                }
                Ok(taken)
            }
        }
    }

    async fn finish(self) -> Result<SinkStats, SinkError> {
        match self {
            Destinations::Firehose(f) => f.finish().await,
            Destinations::Lake(l) => l.finish().await,
            Destinations::Both(f, l) => {
                // The lake completes its objects only once Firehose took everything: an input
                // that fails leaves no object in the lake (its uploads are aborted).
                let mut stats = match f.finish().await {
                    Ok(stats) => stats,
                    Err(e) => {
                        let _ = l.stop().await;
                        return Err(e);
                    }
                };
                let lake = l.finish().await?;
                stats.lake = lake.lake;
                stats.calls += lake.calls;
                Ok(stats)
            }
        }
    }

    async fn finish_broken(self) -> Result<(SinkStats, Accepted), SinkError> {
        match self {
            Destinations::Firehose(f) => f.finish_broken().await,
            Destinations::Lake(l) => l.finish_broken().await,
            Destinations::Both(f, l) => {
                // Firehose keeps what it took; the lake keeps nothing, so the retry sends the
                // whole input again (Firehose's consumers drop the duplicates by record id).
                let lake = l.finish_broken().await;
                let (stats, _) = f.finish_broken().await?;
                lake?;
                Ok((stats, Accepted::default()))
            }
        }
    }

    fn accepted(&self) -> Accepted {
        match self {
            Destinations::Firehose(f) => f.accepted(),
            Destinations::Lake(l) => l.accepted(),
            Destinations::Both(f, l) => {
                let (a, b) = (f.accepted(), l.accepted());
                if a.lines <= b.lines {
                    a
                } else {
                    b
                }
            }
        }
    }

    async fn stop(self) -> Result<(SinkStats, Accepted), SinkError> {
        match self {
            Destinations::Firehose(f) => f.stop().await,
            Destinations::Lake(l) => l.stop().await,
            Destinations::Both(f, l) => {
                let lake = l.stop().await;
                let (stats, _) = f.stop().await?;
                lake?;
                // The lake keeps nothing of a stopped input: the retry starts from the top.
                Ok((stats, Accepted::default()))
            }
        }
    }
}
