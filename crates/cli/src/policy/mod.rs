//! `printfleet policy`: policies as code (docs/policies.md, "Policies as code"). `export` writes
//! a policy's current version as a TOML file; `apply` checks a file, shows its difference against
//! the current version and saves it as the next one — all through the API with an API token,
//! never the database, so permissions, validation and the audit log apply as for any client.

mod apply;
pub(crate) mod client;
mod impact;

use anyhow::Context;
use clap::Subcommand;
use client::{ApiArgs, Client};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Task {
    /// Write a policy's current version as a TOML file (to stdout, or to --out).
    Export {
        #[command(flatten)]
        api: ApiArgs,
        /// The policy's id or name.
        #[arg(long, value_name = "ID|NAME")]
        policy: String,
        /// Write the file here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Apply a policy file: the policy of the file's name gets it as its next version (or is
    /// created). Prints the difference item by item; with --dry-run changes nothing and also
    /// prints the change's impact on the fleet (the server's dry run).
    Apply {
        /// The policy file (TOML, as `policy export` writes it).
        file: PathBuf,
        #[command(flatten)]
        api: ApiArgs,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
        /// A new value for a secret the file references, read from FILE (one trailing newline
        /// is dropped). Repeat for several secrets.
        #[arg(long = "secret", value_name = "ID=FILE")]
        secrets: Vec<String>,
    },
}

/// Exit code when the file, or the change, is refused (other failures exit with 2).
pub const REFUSED: u8 = 1;

pub async fn run(task: Task) -> anyhow::Result<ExitCode> {
    match run_task(task).await {
        // The server said no (token, permission, not found): refused, not failed.
        Err(e) if e.downcast_ref::<client::ApiFailure>().is_some() => {
            eprintln!("printfleet: {e:#}");
            Ok(ExitCode::from(REFUSED))
        }
        other => other,
    }
}

async fn run_task(task: Task) -> anyhow::Result<ExitCode> {
    match task {
        Task::Export { api, policy, out } => {
            let client = Client::new(&api)?;
            let Some(p) = client.find(&policy).await? else {
                eprintln!("printfleet: no policy {policy:?} in this tenant");
                return Ok(ExitCode::from(REFUSED));
            };
            let text = client.export(p.id).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "wrote {} (policy {:?}, version {})",
                        path.display(),
                        p.name,
                        p.version
                    );
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Task::Apply {
            file,
            api,
            dry_run,
            secrets,
        } => apply::run(&file, &api, dry_run, &secrets).await,
    }
}
