//! `dlm remote …`: the CLI as a thin client of a running dlmd.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use dlm_examples::api::{Job, JobEvent, JobPage, JobState, NewJob, Upload};
use dlm_examples::client::{Client, ClientError};
use dlm_examples::state;
use futures::StreamExt;
use http::Method;
use http_body_util::BodyExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::args::{RemoteArgs, RemoteCommand};
use crate::exit_code;

fn token(state_dir: Option<&Path>) -> Result<String, String> {
    let dir = state_dir.map_or_else(state::default_state_dir, Path::to_path_buf);
    state::existing_token(&dir).map_err(|e| {
        format!(
            "no DLM_TOKEN and cannot read {}: {e}",
            state::token_path(&dir).display()
        )
    })
}

fn print_job(j: &Job) {
    let total = j
        .total_bytes
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    println!(
        "{:>6}  {:<9}  {:>12}/{:<12}  {}",
        j.id,
        j.state.as_str(),
        j.downloaded_bytes,
        total,
        j.path.as_deref().unwrap_or(&j.url)
    );
}

/// Runs a `dlm remote` command; returns the exit code.
pub(crate) async fn run(a: RemoteArgs) -> u8 {
    let token = match token(a.state_dir.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dlm: error: {e}");
            return exit_code::FAILURE;
        }
    };
    let client = Client::new(&a.server, &token);
    match command(&client, a.command).await {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => {
            eprintln!("dlm: error: {e}");
            exit_code::FAILURE
        }
    }
}

async fn command(client: &Client, cmd: RemoteCommand) -> Result<(), ClientError> {
    let none: Option<&()> = None;
    match cmd {
        RemoteCommand::Add {
            urls,
            dest,
            connections,
            checksum,
            limit_rate,
            priority,
        } => {
            for url in urls {
                // A local input file (a .torrent) goes in the request: the daemon may not see our disk.
                let (url, upload) = match std::fs::read(&url) {
                    Ok(bytes) if std::path::Path::new(&url).is_file() => (
                        String::new(),
                        Some(Upload {
                            name: url.clone(),
                            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                        }),
                    ),
                    _ => (url, None),
                };
                let job = NewJob {
                    url,
                    upload,
                    dest: dest.clone(),
                    connections,
                    checksum: checksum.clone(),
                    rate_limit: limit_rate,
                    priority,
                    ..NewJob::default()
                };
                let j: Job = client.call(Method::POST, "/v1/jobs", Some(&job)).await?;
                print_job(&j);
            }
        }
        RemoteCommand::Ls { state, json } => {
            let filter = state.map(|s| format!("&state={s}")).unwrap_or_default();
            let mut after = 0;
            loop {
                let page: JobPage = client
                    .call(
                        Method::GET,
                        &format!("/v1/jobs?limit=1000&after={after}{filter}"),
                        none,
                    )
                    .await?;
                for j in &page.jobs {
                    if json {
                        println!("{}", serde_json::to_string(j).unwrap_or_default());
                    } else {
                        print_job(j);
                    }
                }
                match page.next_after {
                    Some(n) => after = n,
                    None => break,
                }
            }
        }
        RemoteCommand::Pause { id } => {
            let j: Job = client
                .call(Method::POST, &format!("/v1/jobs/{id}/pause"), none)
                .await?;
            print_job(&j);
        }
        RemoteCommand::Resume { id } => {
            let j: Job = client
                .call(Method::POST, &format!("/v1/jobs/{id}/resume"), none)
                .await?;
            print_job(&j);
        }
        RemoteCommand::Rm { id, delete_file } => {
            let j: Job = client
                .call(
                    Method::DELETE,
                    &format!("/v1/jobs/{id}?delete_file={delete_file}"),
                    none,
                )
                .await?;
            print_job(&j);
        }
        RemoteCommand::Watch => watch(client).await?,
    }
    Ok(())
}

/// Live bars from the SSE stream, one per active job.
async fn watch(client: &Client) -> Result<(), ClientError> {
    let resp = client.raw(Method::GET, "/v1/events", None).await?;
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:>6} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let mut by_id: HashMap<i64, ProgressBar> = HashMap::new();
    let mut body = resp.into_body().into_data_stream();
    let mut buf = String::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let Ok(ev) = serde_json::from_str::<JobEvent>(data.trim()) else {
                continue;
            };
            let mut bar = |id: i64| {
                by_id
                    .entry(id)
                    .or_insert_with(|| {
                        let b = bars.add(ProgressBar::new(0));
                        b.set_style(style.clone());
                        b.set_prefix(id.to_string());
                        b
                    })
                    .clone()
            };
            match ev {
                JobEvent::Progress {
                    id,
                    downloaded_bytes,
                    total_bytes,
                    rate_bytes_per_sec,
                    peers,
                    upload_rate_bytes_per_sec,
                    ..
                } => {
                    let b = bar(id);
                    if let Some(t) = total_bytes {
                        b.set_length(t);
                    }
                    b.set_position(downloaded_bytes);
                    let swarm = if peers > 0 {
                        format!(
                            ", {peers} peers, ↑ {}/s",
                            indicatif::HumanBytes(upload_rate_bytes_per_sec)
                        )
                    } else {
                        String::new()
                    };
                    b.set_message(format!(
                        "{}/s{swarm}",
                        indicatif::HumanBytes(rate_bytes_per_sec)
                    ));
                }
                JobEvent::Seeding { id, .. } => bar(id).set_message(JobState::Seeding.as_str()),
                JobEvent::Completed { id, .. } => {
                    bar(id).finish_with_message(JobState::Completed.as_str())
                }
                JobEvent::Failed { id, kind, .. } => {
                    bar(id).abandon_with_message(format!("failed ({kind})"))
                }
                JobEvent::Paused { id } => bar(id).set_message(JobState::Paused.as_str()),
                JobEvent::Cancelled { id } => {
                    bar(id).abandon_with_message(JobState::Cancelled.as_str())
                }
                JobEvent::Added { job } => {
                    let _ = bars.println(format!("added job {}: {}", job.id, job.url));
                }
                JobEvent::Started { id } => bar(id).set_message("started"),
            }
        }
    }
    Ok(())
}
