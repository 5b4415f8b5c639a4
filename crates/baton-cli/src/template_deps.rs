//! A template function's dependencies, installed when `baton deploy --stack` builds it, as
//! OpenFaaS's template Dockerfiles install them: a python3-http handler's `requirements.txt`
//! with pip into `python_packages/` beside the server (which puts it on `sys.path`), a
//! node20-http handler's `package.json` dependencies with npm into `function/node_modules/`.
//! A handler that names none installs nothing, and needs neither tool.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An installation a build needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// `pip install -r requirements --target target`.
    Pip {
        requirements: PathBuf,
        target: PathBuf,
    },
    /// `npm install --omit=dev` in `dir`.
    Npm { dir: PathBuf },
}

/// Whether a `requirements.txt` names a package (a line that is neither blank nor a comment).
fn names_packages(requirements: &str) -> bool {
    requirements
        .lines()
        .map(str::trim)
        .any(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Whether a `package.json` declares dependencies (`devDependencies` are not installed).
fn declares_dependencies(package: &str) -> anyhow::Result<bool> {
    let json: serde_json::Value =
        serde_json::from_str(package).context("package.json is not JSON")?;
    Ok(json
        .get("dependencies")
        .and_then(|d| d.as_object())
        .is_some_and(|d| !d.is_empty()))
}

/// What the build in `build` (the template's server, the handler in `function/`) of a
/// function from template `lang` needs installed.
pub fn needed(lang: &str, build: &Path) -> anyhow::Result<Vec<Install>> {
    let function = build.join("function");
    let mut installs = Vec::new();
    let requirements = function.join("requirements.txt");
    if lang.starts_with("python")
        && let Ok(text) = std::fs::read_to_string(&requirements)
        && names_packages(&text)
    {
        installs.push(Install::Pip {
            requirements,
            target: build.join("python_packages"),
        });
    }
    let package = function.join("package.json");
    if lang.starts_with("node")
        && let Ok(text) = std::fs::read_to_string(&package)
        && declares_dependencies(&text).with_context(|| format!("reading {}", package.display()))?
    {
        installs.push(Install::Npm { dir: function });
    }
    Ok(installs)
}

/// Runs `install`, telling on stderr what it does; the error carries the tool's own output.
pub fn run(name: &str, install: &Install) -> anyhow::Result<()> {
    let mut command = match install {
        Install::Pip {
            requirements,
            target,
        } => {
            eprintln!("{name}: installing {} with pip", requirements.display());
            let mut command = Command::new("python3");
            command
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "--target"])
                .arg(target)
                .arg("-r")
                .arg(requirements);
            command
        }
        Install::Npm { dir } => {
            eprintln!(
                "{name}: installing the dependencies of {}/package.json with npm",
                dir.display()
            );
            let mut command = Command::new("npm");
            command
                .args([
                    "install",
                    "--omit=dev",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                ])
                .current_dir(dir);
            command
        }
    };
    let tool = command.get_program().to_string_lossy().into_owned();
    let output = command
        .output()
        .with_context(|| format!("{name}: running {tool} (is it installed?)"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{name}: installing dependencies with {tool} failed ({}):\n{}",
            output.status,
            tail.join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_that_name_packages() {
        for (text, names) in [
            ("", false),
            ("# none yet\n\n", false),
            ("requests==2.32\n", true),
            ("  # pinned below\n  six\n", true),
        ] {
            assert_eq!(names_packages(text), names, "{text:?}");
        }
    }

    #[test]
    fn packages_that_declare_dependencies() {
        for (text, declares) in [
            (r#"{"name": "f"}"#, false),
            (r#"{"dependencies": {}}"#, false),
            (r#"{"devDependencies": {"jest": "1"}}"#, false),
            (r#"{"dependencies": {"is-number": "7.0.0"}}"#, true),
        ] {
            assert_eq!(declares_dependencies(text).unwrap(), declares, "{text}");
        }
        assert!(declares_dependencies("{not json").is_err());
    }

    #[test]
    fn a_build_needs_what_its_handler_names() {
        let dir = tempfile::tempdir().unwrap();
        let function = dir.path().join("function");
        std::fs::create_dir(&function).unwrap();
        assert_eq!(needed("python3-http", dir.path()).unwrap(), []);
        std::fs::write(function.join("requirements.txt"), "six\n").unwrap();
        std::fs::write(
            function.join("package.json"),
            r#"{"dependencies": {"a": "1"}}"#,
        )
        .unwrap();
        assert_eq!(
            needed("python3-http", dir.path()).unwrap(),
            [Install::Pip {
                requirements: function.join("requirements.txt"),
                target: dir.path().join("python_packages"),
            }]
        );
        assert_eq!(
            needed("node20-http", dir.path()).unwrap(),
            [Install::Npm {
                dir: function.clone()
            }]
        );
    }
}
