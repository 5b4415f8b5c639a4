//! One configuration file for every role. `baton up` reads its typed sections (`config.rs`);
//! `baton control`, `baton gateway` and `baton worker` take each of their flags as a key of
//! their own section (`[control]`, `[gateway]`, `[worker]`; the flag's name with `_` for `-`).
//! The file's values go in as flags the command line and the environment did not set, so the
//! order is: flags, then environment variables, then the file, then the defaults. Unknown
//! keys are errors naming the file and line, in every role's section whichever role reads it.

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};
use std::ffi::OsString;
use std::path::Path;

/// The sections of the roles that take their flags from the file.
pub const ROLES: [&str; 3] = ["control", "gateway", "worker"];

/// Keys of `[worker]` that belong to `baton up`'s own worker (`config.rs`), not to the
/// `baton worker` role, which leaves them alone.
pub const NODE_WORKER_KEYS: [&str; 3] = ["reap_interval", "log_lines", "keep_alive"];

/// `argv` with the values of the role's section of its `--config` file added as flags, for
/// `baton control|gateway|worker`; unchanged for every other command (and when the command
/// line does not parse: clap reports that).
pub fn with_file(argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Ok(matches) = crate::cli::Cli::command().try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    let Some((role, sub)) = matches.subcommand() else {
        return Ok(argv);
    };
    if !ROLES.contains(&role) {
        return Ok(argv);
    }
    let Some(path) = sub.get_one::<std::path::PathBuf>("config") else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let sections = role_sections(&text, path)?;
    let Some(values) = sections
        .into_iter()
        .find(|(r, _)| r == role)
        .map(|(_, v)| v)
    else {
        return Ok(argv);
    };
    let flags = flags_from(values, sub);
    // The subcommand's flags go right after its name.
    let at = argv
        .iter()
        .position(|a| a.to_str() == Some(role))
        .map_or(argv.len(), |i| i + 1);
    let mut out = argv;
    out.splice(at..at, flags);
    Ok(out)
}

/// Checks every role's section of a config file (for `baton up`, which reads the rest).
pub fn check(text: &str, path: &Path) -> anyhow::Result<()> {
    role_sections(text, path).map(|_| ())
}

/// A key of a role's section and its values as flag values (several for a list).
type Entry = (String, Vec<String>, bool);

/// Every role's section of the file, each key checked against that role's flags; `(role,
/// [(key, values, is_switch)])`.
fn role_sections(text: &str, path: &Path) -> anyhow::Result<Vec<(String, Vec<Entry>)>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    let command = crate::cli::Cli::command();
    let mut out = Vec::new();
    for role in ROLES {
        let Some(section) = table.get(role) else {
            continue;
        };
        let Some(section) = section.as_table() else {
            bail!("config file {}: [{role}] is not a table", path.display());
        };
        let sub = command
            .find_subcommand(role)
            .expect("every role is a subcommand");
        let mut entries = Vec::new();
        for (key, value) in section {
            let at = || {
                format!(
                    "config file {}, line {}",
                    path.display(),
                    key_line(text, role, key).unwrap_or(0)
                )
            };
            if role == "worker" && NODE_WORKER_KEYS.contains(&key.as_str()) {
                continue;
            }
            let Some(arg) = sub
                .get_arguments()
                .find(|a| a.get_id() == key.as_str() && key != "config")
            else {
                let known: Vec<&str> = sub
                    .get_arguments()
                    .map(|a| a.get_id().as_str())
                    .filter(|id| !matches!(*id, "config" | "help" | "version"))
                    .collect();
                bail!(
                    "{}: unknown key `{key}` in [{role}] (known: {})",
                    at(),
                    known.join(", ")
                );
            };
            let switch = !arg.get_action().takes_values();
            let values = values_of(value).with_context(|| format!("{}: [{role}] {key}", at()))?;
            entries.push((key.clone(), values, switch));
        }
        out.push((role.to_string(), entries));
    }
    Ok(out)
}

/// A TOML value as flag values: scalars as text, arrays as one value each.
fn values_of(value: &toml::Value) -> anyhow::Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => items
            .iter()
            .map(values_of)
            .collect::<anyhow::Result<Vec<_>>>()?
            .concat(),
        other => bail!("expected a string, number, boolean or list, found {other}"),
    })
}

/// The flags for the entries the command line and the environment left unset.
fn flags_from(entries: Vec<Entry>, matches: &ArgMatches) -> Vec<OsString> {
    let mut flags = Vec::new();
    for (key, values, switch) in entries {
        let set_elsewhere = matches!(
            matches.value_source(&key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if set_elsewhere {
            continue;
        }
        let long = format!("--{}", key.replace('_', "-"));
        if switch {
            if values.iter().any(|v| v == "true") {
                flags.push(long.into());
            }
            continue;
        }
        for value in values {
            flags.push(format!("{long}={value}").into());
        }
    }
    flags
}

/// The line of `key` in `[section]` of `text` (1-based), for error messages.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut inside = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == header;
            continue;
        }
        let named = line
            .split('=')
            .next()
            .map(|k| k.trim().trim_matches('"'))
            .unwrap_or_default();
        if inside && named == key {
            return Some(number + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn run(file: &str, line: &str) -> anyhow::Result<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = args(line);
        argv.push(format!("--config={}", path.display()).into());
        Ok(with_file(argv)?
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .filter(|a| !a.starts_with("--config="))
            .collect())
    }

    const FILE: &str = "listen = \"127.0.0.1:8080\"\n\n[control]\nplacement = \"resource-fit\"\nmissed_heartbeats = 5\n\n[gateway]\nload_balancing = \"power-of-two\"\n\n[worker]\nreap_interval = \"2s\"\ncount = 3\nno_state = true\n";

    #[test]
    fn a_roles_section_becomes_its_flags_unless_the_command_line_set_them() {
        for (line, expected) in [
            (
                "baton control",
                "baton control --missed-heartbeats=5 --placement=resource-fit",
            ),
            (
                "baton control --placement random",
                "baton control --missed-heartbeats=5 --placement random",
            ),
            (
                "baton gateway --listen 127.0.0.1:0",
                "baton gateway --load-balancing=power-of-two --listen 127.0.0.1:0",
            ),
            // The node's own worker keys are not the worker role's; a switch is a bare flag.
            ("baton worker", "baton worker --count=3 --no-state"),
            // Other commands are left alone.
            ("baton ls", "baton ls"),
        ] {
            assert_eq!(run(FILE, line).unwrap().join(" "), expected, "{line}");
        }
    }

    #[test]
    fn unknown_keys_name_the_file_the_line_and_the_known_ones() {
        let file = "[gateway]\nlisten = \"127.0.0.1:0\"\nload_balance = \"random\"\n";
        let error = format!("{:#}", run(file, "baton control").unwrap_err());
        assert!(
            error.contains("baton.toml, line 3")
                && error.contains("unknown key `load_balance` in [gateway]")
                && error.contains("load_balancing"),
            "{error}"
        );
        let error = format!(
            "{:#}",
            run("[worker]\ncount = {a = 1}\n", "baton worker").unwrap_err()
        );
        assert!(
            error.contains("line 2") && error.contains("count"),
            "{error}"
        );
        let error = format!(
            "{:#}",
            run("[control]\nconfig = \"x\"\n", "baton control").unwrap_err()
        );
        assert!(error.contains("unknown key `config`"), "{error}");
    }

    #[test]
    fn keys_are_found_on_their_line_in_their_section() {
        let text = "a = 1\n[control]\na = 2\n\"b\" = 3\n[gateway]\na = 4\n";
        for (section, key, line) in [
            ("control", "a", Some(3)),
            ("control", "b", Some(4)),
            ("gateway", "a", Some(6)),
            ("worker", "a", None),
        ] {
            assert_eq!(key_line(text, section, key), line, "{section}.{key}");
        }
    }
}
