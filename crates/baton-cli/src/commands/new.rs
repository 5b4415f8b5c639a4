//! `baton new`: a function started from a template, added to a `stack.yml`, as `faas-cli new`
//! does.

use crate::cli::NewArgs;
use crate::templates::{Shipped, TEMPLATES};
use anyhow::{Context, bail};
use serde_yaml_ng::{Mapping, Value};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for shipped in &TEMPLATES {
            println!("{}", shipped.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(name), Some(lang)) = (&args.name, &args.lang) else {
        bail!("give a NAME and --lang (templates: `baton new --list`)");
    };
    baton_api::FunctionName::new(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shipped = Shipped::find(lang)?;
    let base = args
        .stack
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stack = add_to_stack(&args.stack, name, lang, &args.gateway)?;
    crate::templates::new_handler(shipped, &base.join(name))?;
    std::fs::write(&args.stack, stack)
        .with_context(|| format!("writing {}", args.stack.display()))?;
    println!(
        "{name}: handler in {}, added to {}",
        base.join(name).display(),
        args.stack.display()
    );
    print!("{}", shipped.template().welcome_message);
    Ok(ExitCode::SUCCESS)
}

/// The stack file's text with function `name` added (a new file if there is none).
fn add_to_stack(path: &Path, name: &str, lang: &str, gateway: &str) -> anyhow::Result<String> {
    let mut stack = match std::fs::read_to_string(path) {
        Ok(text) => serde_yaml_ng::from_str::<Value>(&text)
            .with_context(|| format!("reading {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut provider = Mapping::new();
            provider.insert("name".into(), "openfaas".into());
            provider.insert("gateway".into(), gateway.into());
            let mut stack = Mapping::new();
            stack.insert("version".into(), "1.0".into());
            stack.insert("provider".into(), Value::Mapping(provider));
            Value::Mapping(stack)
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let Value::Mapping(top) = &mut stack else {
        bail!("{} is not a YAML mapping", path.display());
    };
    let functions = top
        .entry("functions".into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    let Value::Mapping(functions) = functions else {
        bail!("{}: functions is not a mapping", path.display());
    };
    if functions.contains_key(name) {
        bail!("{} has a function {name} already", path.display());
    }
    let mut function = Mapping::new();
    function.insert("lang".into(), lang.into());
    function.insert("handler".into(), format!("./{name}").into());
    function.insert("image".into(), format!("{name}:latest").into());
    functions.insert(name.into(), Value::Mapping(function));
    Ok(serde_yaml_ng::to_string(&stack)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_added_to_a_new_or_existing_stack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.yml");
        let text = add_to_stack(&path, "a", "python3-http", "http://127.0.0.1:8080").unwrap();
        std::fs::write(&path, &text).unwrap();
        let text = add_to_stack(&path, "b", "node20-http", "unused").unwrap();
        let stack: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(stack["provider"]["gateway"], "http://127.0.0.1:8080");
        assert_eq!(stack["functions"]["a"]["lang"], "python3-http");
        assert_eq!(stack["functions"]["b"]["handler"], "./b");
        std::fs::write(&path, &text).unwrap();
        let again = add_to_stack(&path, "a", "python3-http", "x").unwrap_err();
        assert!(again.to_string().contains("already"), "{again}");
        std::fs::write(&path, "- a list\n").unwrap();
        assert!(add_to_stack(&path, "c", "python3-http", "x").is_err());
    }
}
