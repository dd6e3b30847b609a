//! `dlm get A B C` and `dlm get -i FILE`: many inputs, `-j N` at a time,
//! one bar each plus a total line; the exit code is the worst of them
//! (0 < 1 failure < 3 integrity < 130 interrupted).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dlm_core::{
    CancellationToken, Checksum, Download, Input, Options, Output, ProtocolRegistry, Target,
    TreeDownload, TreeEvent,
};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::GetArgs;
use crate::exit_code;
use crate::input_file::Job;
use crate::progress::Mode;

/// What every job shares.
struct Shared {
    registry: ProtocolRegistry,
    per_download: Options,
    args: GetArgs,
    mode: Mode,
    bars: MultiProgress,
    cancel: CancellationToken,
    done: AtomicU64,
    total: u64,
}

/// Runs `jobs` (at least one) `-j` at a time.
pub(crate) async fn run(
    a: GetArgs,
    registry: ProtocolRegistry,
    per_download: Options,
    jobs: Vec<Job>,
) -> u8 {
    if a.output.is_some() {
        return crate::usage(
            "-o names one output; with several inputs use -d DIR (or out= in the input file)",
        );
    }
    let mode = crate::progress_mode(&a, false);
    let bars = MultiProgress::with_draw_target(if mode == Mode::Bar {
        ProgressDrawTarget::stderr_with_hz(8)
    } else {
        ProgressDrawTarget::hidden()
    });
    let cancel = CancellationToken::new();
    let interrupted = {
        let cancel = cancel.clone();
        crate::cancel_on_signal(move || cancel.cancel())
    };
    let limit = Arc::new(Semaphore::new(a.jobs.max(1)));
    let shared = Arc::new(Shared {
        registry,
        per_download,
        mode,
        bars,
        cancel,
        done: AtomicU64::new(0),
        total: jobs.len() as u64,
        args: a,
    });
    let total_bar = shared.bars.add(ProgressBar::new(shared.total));
    total_bar.set_style(
        indicatif::ProgressStyle::with_template("total: {pos}/{len} downloads {msg}")
            .expect("valid template"),
    );
    let mut set = JoinSet::new();
    for job in jobs {
        let shared = shared.clone();
        let limit = limit.clone();
        let total_bar = total_bar.clone();
        set.spawn(async move {
            let Ok(_permit) = limit.acquire_owned().await else {
                return exit_code::FAILURE;
            };
            if shared.cancel.is_cancelled() {
                return exit_code::INTERRUPTED;
            }
            let code = one(&shared, &job).await;
            shared.done.fetch_add(1, Ordering::Relaxed);
            total_bar.inc(1);
            code
        });
    }
    let mut worst = exit_code::SUCCESS;
    while let Some(r) = set.join_next().await {
        worst = worst.max(r.unwrap_or(exit_code::FAILURE));
    }
    total_bar.finish();
    if interrupted.load(Ordering::SeqCst) {
        return crate::interrupted_exit(shared.mode);
    }
    worst
}

/// Prints one line above the bars (or to stderr without bars).
fn say(shared: &Shared, line: String) {
    match shared.mode {
        Mode::Bar => {
            let _ = shared.bars.println(line);
        }
        Mode::Json | Mode::Quiet => eprintln!("{line}"),
    }
}

/// Downloads one job; returns its exit code.
async fn one(shared: &Shared, job: &Job) -> u8 {
    let a = &shared.args;
    let mut per = shared.per_download.clone();
    for (k, v) in &job.settings.pairs {
        per = per.with(k.clone(), v.clone());
    }
    let input = Input::parse(&job.input);
    let target = tokio::select! {
        () = shared.cancel.cancelled() => return exit_code::INTERRUPTED,
        t = shared.registry.target(&input, &per) => t,
    };
    let dir = job
        .dir
        .clone()
        .or_else(|| a.dir.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut options = crate::base_options(a);
    if let Some(c) = job.connections {
        options = options.with_connections(c);
    }
    if let Some(r) = job.limit_rate {
        options = options.with_rate_limit(Some(r));
    }
    if let Some(s) = &job.selected {
        options = options.with_selected_files(Some(s.clone()));
    }
    let bar = shared.bars.add(crate::progress::bar());
    bar.set_prefix(format!("{} ", short(&job.input)));
    let code = match target {
        Err(e) => {
            say(shared, format!("dlm: {}: {e} ({})", job.input, e.kind()));
            exit_code::for_kind(e.kind())
        }
        Ok(Target::Listing(listing)) => {
            let name = listing.name().and_then(|n| dlm_core::safe_file_name(&n));
            let dest = match (&job.out, name) {
                (Some(o), _) => dir.join(o),
                (None, Some(n)) => dir.join(n),
                (None, None) => dir,
            };
            let tree = TreeDownload::new(listing, dest.clone()).with_options(options);
            let mut events = tree.subscribe();
            let handle = tree.start();
            let cancel = handle.cancellation();
            let bar2 = bar.clone();
            tokio::spawn(async move {
                while let Ok(ev) = events.recv().await {
                    if let TreeEvent::Progress(p) = ev {
                        bar2.set_length(p.bytes_listed.max(p.bytes_done));
                        bar2.set_position(p.bytes_done);
                        bar2.set_message(format!("{}/{} files", p.files_done, p.files_listed));
                    }
                }
            });
            let result = tokio::select! {
                r = handle.wait() => r,
                () = shared.cancel.cancelled() => {
                    cancel.cancel();
                    Err(dlm_core::Error::cancelled())
                }
            };
            match result {
                Ok(s) if s.is_complete() => {
                    say(
                        shared,
                        format!(
                            "saved {} files ({}) into {}",
                            s.progress.files_done,
                            HumanBytes(s.progress.bytes_done),
                            dest.display()
                        ),
                    );
                    exit_code::SUCCESS
                }
                Ok(s) => {
                    say(
                        shared,
                        format!(
                            "dlm: {}: {} failed, {} refused",
                            job.input,
                            s.failed.len(),
                            s.refused.len()
                        ),
                    );
                    if s.failed
                        .iter()
                        .any(|(_, e)| e.kind() == dlm_core::ErrorKind::Integrity)
                    {
                        exit_code::INTEGRITY
                    } else {
                        exit_code::FAILURE
                    }
                }
                Err(e) => {
                    say(shared, format!("dlm: {}: {e} ({})", job.input, e.kind()));
                    exit_code::for_kind(e.kind())
                }
            }
        }
        Ok(Target::Source(source)) => {
            let checksum = match job
                .checksum
                .as_deref()
                .or(a.checksum.as_deref())
                .map(str::parse::<Checksum>)
                .transpose()
            {
                Ok(c) => c,
                Err(e) => {
                    say(shared, format!("dlm: {}: {e}", job.input));
                    bar.finish_and_clear();
                    return exit_code::FAILURE;
                }
            };
            let output = match &job.out {
                Some(o) => Output::File(dir.join(o)),
                None => Output::Dir(dir),
            };
            let mut download =
                Download::new(source, output).with_options(options.with_checksum(checksum));
            for m in &job.mirrors {
                match shared.registry.source(&Input::parse(m), &per).await {
                    Ok(s) => download = download.with_mirror(s),
                    Err(e) => {
                        say(shared, format!("dlm: {m}: {e} ({})", e.kind()));
                        bar.finish_and_clear();
                        return exit_code::FAILURE;
                    }
                }
            }
            let handle = download.start();
            let control = handle.control();
            let driver = tokio::spawn(crate::progress::drive_bar(control.clone(), bar.clone()));
            let result = tokio::select! {
                r = handle.wait() => r,
                () = shared.cancel.cancelled() => {
                    control.cancel();
                    Err(dlm_core::Error::cancelled())
                }
            };
            driver.abort();
            match result {
                Ok(done) => {
                    let path = done
                        .path
                        .as_ref()
                        .map_or_else(|| "output".to_string(), |p| p.display().to_string());
                    say(shared, format!("saved {path} ({} bytes)", done.bytes));
                    exit_code::SUCCESS
                }
                Err(e) => {
                    if e.kind() != dlm_core::ErrorKind::Cancelled {
                        say(shared, format!("dlm: {}: {e} ({})", job.input, e.kind()));
                    }
                    exit_code::for_kind(e.kind())
                }
            }
        }
    };
    bar.finish_and_clear();
    code
}

/// An input shortened for a bar's prefix: its last 24 characters.
fn short(input: &str) -> String {
    let n = input.chars().count();
    if n <= 24 {
        input.to_string()
    } else {
        format!("…{}", input.chars().skip(n - 23).collect::<String>())
    }
}
