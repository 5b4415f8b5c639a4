//! `baton federation`: this site's identity in a federation of edge sites.

use crate::cli::FederationCommand;
use baton_federation::SiteKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a site keeps its key pair, under its data directory.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("federation").join("site.key")
}

pub fn run(command: FederationCommand) -> anyhow::Result<ExitCode> {
    match command {
        FederationCommand::Id { data_dir, json } => {
            let data_dir = data_dir.unwrap_or_else(crate::config::default_data_dir);
            let path = key_file(&data_dir);
            let key = SiteKey::load_or_create(&path)?;
            match json {
                true => crate::output::json(&serde_json::json!({
                    "id": key.id(),
                    "key_file": path,
                }))?,
                false => println!("{}", key.id()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
