//! What the user sees while a download runs: an indicatif bar, JSON lines, or nothing.

use std::io::Write as _;
use std::time::Duration;

use dlm_core::{DownloadControl, DownloadState, Event, Stats};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::broadcast;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Bar,
    Json,
    Quiet,
}

/// Prints events as JSON lines (to stderr when stdout carries the data)
/// until the download's last one (`seeding` says whether seeding follows
/// completion).
pub(crate) async fn json_lines(
    mut events: broadcast::Receiver<Event>,
    to_stderr: bool,
    seeding: bool,
) {
    loop {
        match events.recv().await {
            Ok(ev) => {
                let Ok(line) = serde_json::to_string(&ev) else {
                    continue;
                };
                if to_stderr {
                    eprintln!("{line}");
                } else {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                }
                let last = match ev {
                    Event::Completed(_) => !seeding,
                    Event::Failed { .. } | Event::SeedingEnded { .. } => true,
                    _ => false,
                };
                if last {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Logs notices and restarts above the bar.
pub(crate) async fn notices(mut events: broadcast::Receiver<Event>, bar: ProgressBar) {
    loop {
        match events.recv().await {
            Ok(Event::Notice { message }) => bar.println(format!("dlm: {message}")),
            Ok(Event::Restarted { reason }) => {
                bar.println(format!("dlm: restarting from zero: {reason}"))
            }
            Ok(Event::SourceDropped { source, reason }) => {
                bar.println(format!("dlm: dropped mirror {source}: {reason}"))
            }
            Ok(Event::Checked {
                stored_bytes,
                verified_bytes,
            }) => bar.println(format!(
                "dlm: {verified_bytes} of the {stored_bytes} bytes found on disk verified; fetching the rest"
            )),
            Ok(Event::SeedingStarted { .. }) => {
                bar.println("dlm: download complete; seeding (Ctrl-C to stop)")
            }
            Ok(Event::SeedingEnded { .. } | Event::Failed { .. })
            | Err(broadcast::error::RecvError::Closed) => return,
            _ => {}
        }
    }
}

/// A progress bar on stderr.
pub(crate) fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix}{spinner:.green} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

fn describe(stats: &Stats) -> String {
    let eta = stats
        .eta_ms
        .filter(|_| stats.state != DownloadState::Seeding)
        .map(|ms| format!(", ETA {}", HumanDuration(Duration::from_millis(ms))))
        .unwrap_or_default();
    let mut line = if stats.state == DownloadState::Seeding {
        "seeding".to_string()
    } else {
        format!("{}/s{eta}", HumanBytes(stats.rate_bytes_per_sec))
    };
    if stats.swarm.is_some() {
        line.push_str(&format!(
            ", {} peers, ↑ {}/s ({} up)",
            stats.peers,
            HumanBytes(stats.upload_rate_bytes_per_sec),
            HumanBytes(stats.uploaded_bytes)
        ));
    } else {
        line.push_str(&format!(", {} conn", stats.connections));
    }
    line
}

/// Refreshes the bar from the download's stats until it ends.
pub(crate) async fn drive_bar(control: DownloadControl, bar: ProgressBar) {
    loop {
        let stats = control.stats();
        if let Some(total) = stats.total_bytes {
            bar.set_length(total);
        }
        bar.set_position(stats.downloaded_bytes);
        bar.set_message(describe(&stats));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
