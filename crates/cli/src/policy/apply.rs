//! `printfleet policy apply FILE [--dry-run]`: check the file here (syntax and catalogue, with
//! line numbers), read the current version through the export endpoint, plan
//! (`policy::code::plan`: references become `{"keep": true}` or are refused), print the
//! difference, then — unless a dry run — save it with one PUT (or POST for a new policy). A
//! dry run of an existing policy also shows the server's dry run of the change (`impact`).

use super::client::{ApiArgs, ApiFailure, Client};
use super::REFUSED;
use anyhow::Context;
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::policy::code::{self, Change, ChangeKind, ParsedCode};
use printfleet_domain::Redacted;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

fn refuse(message: String) -> ExitCode {
    eprintln!("printfleet: {message}");
    ExitCode::from(REFUSED)
}

/// `--secret ID=FILE` → id → value. One trailing newline is dropped, as editors add one.
fn read_secrets(args: &[String]) -> anyhow::Result<BTreeMap<String, Redacted<String>>> {
    let mut out = BTreeMap::new();
    for a in args {
        let (id, file) = a
            .split_once('=')
            .with_context(|| format!("--secret {a}: give ID=FILE"))?;
        let mut value = std::fs::read_to_string(file)
            .with_context(|| format!("--secret {id}: cannot read {file}"))?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
        anyhow::ensure!(
            out.insert(id.to_string(), Redacted::new(value)).is_none(),
            "--secret {id}: given twice"
        );
    }
    Ok(out)
}

fn print_changes(changes: &[Change]) {
    let none = String::new();
    for c in changes {
        let before = c.before.as_ref().unwrap_or(&none);
        let after = c.after.as_ref().unwrap_or(&none);
        match c.kind {
            ChangeKind::Added => println!("  added    {} = {after}", c.item),
            ChangeKind::Removed => println!("  removed  {} (was {before})", c.item),
            ChangeKind::Changed => println!("  changed  {}: {before} -> {after}", c.item),
        }
    }
}

/// The line of the item a server error names (`field` is a setting id, possibly with a member
/// such as `security.cert.id.passphrase`, or `name`, `description`, `mode`).
fn line_of(parsed: &ParsedCode, field: &str) -> Option<usize> {
    parsed
        .lines
        .iter()
        .filter(|(id, _)| field == id.as_str() || field.starts_with(&format!("{id}.")))
        .max_by_key(|(id, _)| id.len())
        .map(|(_, line)| *line)
}

pub async fn run(
    file: &Path,
    api: &ApiArgs,
    dry_run: bool,
    secret_args: &[String],
) -> anyhow::Result<ExitCode> {
    let shown = file.display();
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let catalogue = Catalogue::builtin().context("the settings catalogue")?;
    let parsed = match code::parse(&text).and_then(|p| p.validate(&catalogue).map(|()| p)) {
        Ok(p) => p,
        Err(e) => return Ok(refuse(format!("{shown}: {e}"))),
    };
    let new_secrets = read_secrets(secret_args)?;
    let client = Client::new(api)?;
    let name = &parsed.code.name;
    let existing = client
        .policies()
        .await?
        .into_iter()
        .find(|p| &p.name == name);
    let current = match &existing {
        Some(p) => Some(
            code::parse(&client.export(p.id).await?)
                .context("the server's export of the current version cannot be read")?
                .code,
        ),
        None => None,
    };
    let plan = match code::plan(&parsed, current.as_ref(), &new_secrets, &catalogue) {
        Ok(p) => p,
        Err(e) => return Ok(refuse(format!("{shown}: {e}"))),
    };
    match &existing {
        Some(p) if plan.changes.is_empty() => {
            println!("policy {name:?} (version {}): no changes", p.version);
            return Ok(ExitCode::SUCCESS);
        }
        Some(p) => println!(
            "policy {name:?} (version {}): {} change(s)",
            p.version,
            plan.changes.len()
        ),
        None => println!("policy {name:?} does not exist: it will be created"),
    }
    print_changes(&plan.changes);
    let body = serde_json::json!({
        "name": name,
        "description": parsed.code.description,
        "mode": parsed.code.mode,
        "settings": plan.settings,
    });
    if dry_run {
        match &existing {
            // The server checks the body as saving would; its refusal names the item.
            Some(p) => {
                if let Err(e) = super::impact::print(&client, p.id, &body).await {
                    return refused_by_server(&shown.to_string(), &parsed, e);
                }
            }
            None => println!("fleet impact: none (a new policy is assigned to no group)"),
        }
        println!("dry run: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    let saved = match &existing {
        Some(p) => client.update(p.id, &body).await.map(|s| s.policy),
        None => client.create(&body).await,
    };
    match saved {
        Ok(p) if existing.is_some() => {
            println!("applied: policy {name:?} is now at version {}", p.version)
        }
        Ok(p) => println!(
            "created: policy {name:?} ({}) at version {}",
            p.id, p.version
        ),
        Err(e) => return refused_by_server(&shown.to_string(), &parsed, e),
    }
    Ok(ExitCode::SUCCESS)
}

/// The server checks more than this program can (certificates, names in use, a newer
/// catalogue); its error names the item, the file knows the line.
fn refused_by_server(
    shown: &str,
    parsed: &ParsedCode,
    e: anyhow::Error,
) -> anyhow::Result<ExitCode> {
    let Some(f) = e.downcast_ref::<ApiFailure>() else {
        return Err(e);
    };
    let located = f
        .field
        .as_deref()
        .and_then(|field| line_of(parsed, field).map(|line| format!("line {line}: {field}: ")));
    Ok(match (f.status, located) {
        (400, Some(at)) => refuse(format!(
            "{shown}: {at}{} (refused by the server)",
            f.message
        )),
        _ => refuse(format!("{e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_the_server_names_is_found_on_its_line() {
        let parsed = code::parse(
            "name = \"P\"\nmode = \"assess\"\n[settings]\n\"security.cert.id\" = { certificate = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\" }\n",
        )
        .unwrap();
        assert_eq!(line_of(&parsed, "security.cert.id"), Some(4));
        assert_eq!(line_of(&parsed, "security.cert.id.passphrase"), Some(4));
        assert_eq!(line_of(&parsed, "mode"), Some(2));
        assert_eq!(line_of(&parsed, "security.cert"), None);
        assert_eq!(line_of(&parsed, "settings"), None);
    }
}
