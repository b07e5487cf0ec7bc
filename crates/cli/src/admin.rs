//! `printfleet admin …`: operator tasks run directly against the database.

use anyhow::{bail, Context};
use clap::Subcommand;
use printfleet_crypto::{MasterKey, PasswordHasher, PasswordParams};
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::{validate_new_password, Profile};
use printfleet_domain::TenantId;
use printfleet_server::config::Config;
use printfleet_server::keys::{next_key_path, previous_key_path};
use printfleet_storage::keyring::ACTIVE_TTL_MS;
use rand::rngs::OsRng;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum Task {
    /// Create a tenant and its first IT Admin. Prints a generated password once, unless
    /// --password-stdin is given.
    Bootstrap {
        #[arg(long)]
        tenant_name: String,
        /// Region code, e.g. us, eu, eu-west.
        #[arg(long, default_value = "us")]
        region: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, default_value = "en")]
        locale: String,
        /// Read the admin's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Rotate keys. --master re-wraps every data key under a new master key (stop the server
    /// first). --tenant/--all-tenants/--deployment roll data keys and re-encrypt their fields in
    /// resumable batches, safe while the server runs.
    RotateKeys {
        /// Make a new master key and re-wrap all data keys under it.
        #[arg(long)]
        master: bool,
        /// Roll this tenant's data key.
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Vec<String>,
        /// Roll every tenant's data key.
        #[arg(long)]
        all_tenants: bool,
        /// Roll the deployment data key (people's identities).
        #[arg(long)]
        deployment: bool,
        /// Do not roll; finish re-encrypting fields left under older keys (after an interruption).
        #[arg(long)]
        resume: bool,
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        task: AuditTask,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditTask {
    /// Verify every audit chain against its MACs and its checkpoint; reports the first bad entry
    /// of each chain and exits 1 if any is bad.
    Verify,
}

pub async fn run(cfg: Config, task: Task) -> anyhow::Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = printfleet_server::open_store(&cfg, clock).await?;
    let code = match task {
        Task::Bootstrap {
            tenant_name,
            region,
            email,
            first_name,
            last_name,
            locale,
            password_stdin,
        } => {
            let profile = Profile::parse(&email, &first_name, &last_name, &locale)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                validate_new_password(line.trim_end_matches(['\n', '\r']))?.into_inner()
            } else {
                printfleet_crypto::token::generate("", &mut OsRng)
            };
            let params = PasswordParams {
                memory_kib: cfg.auth.argon2_memory_kib,
                iterations: cfg.auth.argon2_iterations,
                parallelism: 1,
            };
            let hasher = PasswordHasher::new(params, &mut OsRng).map_err(anyhow::Error::msg)?;
            let hash = hasher
                .hash(&password, &mut OsRng)
                .map_err(anyhow::Error::msg)?;
            let tenant = store
                .create_tenant(&tenant_name, &region, &Contact::default(), None)
                .await?;
            let (user, _) = store.bootstrap_admin(tenant, &profile, &hash).await?;
            println!("tenant {tenant} created; IT Admin user {user}");
            if !password_stdin {
                println!("password (shown once): {password}");
            }
            ExitCode::SUCCESS
        }
        Task::RotateKeys {
            master,
            tenant,
            all_tenants,
            deployment,
            resume,
            batch_size,
        } => {
            if !(1..=100_000).contains(&batch_size) {
                bail!("--batch-size must be between 1 and 100000");
            }
            let mut scopes: Vec<Option<TenantId>> = Vec::new();
            for t in &tenant {
                scopes
                    .push(Some(t.parse().map_err(|_| {
                        anyhow::anyhow!("--tenant {t}: not a tenant id")
                    })?));
            }
            if all_tenants {
                scopes.extend(store.tenant_ids().await?.into_iter().map(Some));
            }
            if deployment {
                scopes.push(None);
            }
            if !master && scopes.is_empty() {
                bail!("say what to rotate: --master, --tenant ID, --all-tenants or --deployment");
            }
            if master {
                rotate_master(&cfg, &store).await?;
            }
            if !scopes.is_empty() && !resume {
                for s in &scopes {
                    let v = store.roll_data_key(*s).await?;
                    println!("{}: data key version {v} is now active", label(*s));
                }
                // Running servers re-read the active key version within ACTIVE_TTL_MS; waiting
                // a little longer means the batches below also catch their last old writes.
                tokio::time::sleep(std::time::Duration::from_millis(ACTIVE_TTL_MS as u64 + 500))
                    .await;
            }
            for s in scopes {
                let total = store.stale_fields(s).await?;
                let bar = indicatif::ProgressBar::new(total.max(0) as u64);
                loop {
                    let n = store.reencrypt_batch(s, batch_size).await?;
                    bar.inc(n as u64);
                    if n == 0 {
                        break;
                    }
                }
                bar.finish_and_clear();
                println!("{}: {total} fields re-encrypted", label(s));
            }
            ExitCode::SUCCESS
        }
        Task::Audit {
            task: AuditTask::Verify,
        } => {
            let mut bad = false;
            for chain in store.audit_chains().await? {
                let r = store.verify_chain(&chain).await?;
                match r.first_bad {
                    None => println!("chain {chain}: {} entries, OK", r.entries),
                    Some((seq, why)) => {
                        bad = true;
                        println!(
                            "chain {chain}: {} entries, FIRST BAD ENTRY #{seq}: {why}",
                            r.entries
                        );
                    }
                }
            }
            if bad {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    store.close().await;
    Ok(code)
}

fn label(s: Option<TenantId>) -> String {
    s.map(|t| format!("tenant {t}"))
        .unwrap_or_else(|| "deployment".into())
}

/// New master key: written beside the old one first, data keys re-wrapped in one transaction,
/// then the files renamed. A crash at any point leaves a set of key files the server can start
/// with (it accepts the `.next` and `.previous` files as well).
async fn rotate_master(cfg: &Config, store: &printfleet_storage::Store) -> anyhow::Result<()> {
    if cfg.master_key.is_some() {
        bail!("rotate-keys --master works with the master key file; the key is set through master_key/PRINTFLEET_MASTER_KEY: generate a new key, add it with a file, then rotate");
    }
    let path = cfg.master_key_file();
    let new = MasterKey::generate(&mut OsRng);
    let next = next_key_path(&path);
    printfleet_crypto::keys::write_private(&next, &format!("{}\n", new.to_base64()))
        .map_err(anyhow::Error::msg)?;
    let n = store.rewrap_all(&new).await?;
    let prev = previous_key_path(&path);
    std::fs::rename(&path, &prev).with_context(|| format!("renaming {}", path.display()))?;
    std::fs::rename(&next, &path).with_context(|| format!("renaming {}", next.display()))?;
    println!("master key rotated: {n} data keys re-wrapped; the old key is in {} (delete it when no backup needs it)", prev.display());
    Ok(())
}
