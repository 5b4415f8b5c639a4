//! The function templates Baton ships (`templates/` in the repository, built into the
//! binary): what `baton new` starts a function from, and what `baton deploy --stack` builds a
//! `stack.yml` function that names one (`lang:`) into, as `faas-cli build` does.
//!
//! A template is a server (`index.py`, `index.js`) that loads the user's handler from
//! `function/`, a `template.yml` (its command and watchdog settings) and the handler's
//! starting files in `function/`. A build is a directory `build/<name>/` beside the
//! `stack.yml`: the template's files with the handler's directory copied into `function/`, and
//! the handler's dependencies installed (`template_deps.rs`).

use anyhow::{Context, bail};
use baton_api::manifest::{Built, Template, TemplateBuild, parse_template};
use std::path::{Path, PathBuf};

/// One shipped template: its files, paths relative to its directory.
pub struct Shipped {
    pub name: &'static str,
    files: &'static [(&'static str, &'static str)],
}

macro_rules! template {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        Shipped {
            name: $name,
            files: &[$(($file, include_str!(concat!("../../../templates/", $name, "/", $file)))),*],
        }
    };
}

/// Every template this binary has.
pub const TEMPLATES: [Shipped; 2] = [
    template!(
        "python3-http",
        [
            "template.yml",
            "index.py",
            "function/handler.py",
            "function/requirements.txt"
        ]
    ),
    template!(
        "node20-http",
        [
            "template.yml",
            "index.js",
            "function/handler.js",
            "function/package.json"
        ]
    ),
];

impl Shipped {
    /// The template called `name`, or an error listing the ones there are.
    pub fn find(name: &str) -> anyhow::Result<&'static Shipped> {
        TEMPLATES.iter().find(|t| t.name == name).with_context(|| {
            let names: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
            format!("no template {name:?}; Baton ships {}", names.join(", "))
        })
    }

    /// Its `template.yml`.
    pub fn template(&self) -> Template {
        let text = self
            .file("template.yml")
            .expect("every template has a template.yml");
        parse_template(text).expect("shipped templates parse (a unit test reads them all)")
    }

    fn file(&self, path: &str) -> Option<&'static str> {
        self.files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| *text)
    }

    /// The handler's starting files (`function/…`), paths relative to `function/`.
    pub fn handler_files(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.files
            .iter()
            .filter_map(|(path, text)| path.strip_prefix("function/").map(|p| (p, *text)))
    }

    /// The server's files: everything but the handler and `template.yml`.
    fn server_files(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.files
            .iter()
            .filter(|(path, _)| !path.starts_with("function/") && *path != "template.yml")
            .map(|(path, text)| (*path, *text))
    }
}

/// Builds a `stack.yml` function from its template into `build/<name>/` beside the stack
/// file, readable by other users (isolated functions run as their own user).
pub fn build(request: &TemplateBuild) -> anyhow::Result<Built> {
    let shipped = Shipped::find(&request.lang)?;
    let dir = request.stack_dir.join("build").join(&request.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the previous build {}", dir.display()))?;
    }
    create_dir(&dir)?;
    for (path, text) in shipped.server_files() {
        write_file(&dir.join(path), text)?;
    }
    let function = dir.join("function");
    copy_tree(&request.handler, &function, &dir)?;
    for install in crate::template_deps::needed(shipped.name, &dir)? {
        crate::template_deps::run(&request.name, &install)?;
    }
    Ok(Built {
        dir: dir.canonicalize()?,
        template: shipped.template(),
    })
}

/// Starts function `name` from template `lang`: its handler's files in `dir/<name>/`.
pub fn new_handler(shipped: &Shipped, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        bail!("{} exists already; choose another name", dir.display());
    }
    create_dir(dir)?;
    for (path, text) in shipped.handler_files() {
        write_file(&dir.join(path), text)?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Copies the handler's directory `from` into `to` (files readable by others), leaving out
/// `skip` (the build directory, when the handler is the stack's own directory).
fn copy_tree(from: &Path, to: &Path, skip: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    create_dir(to)?;
    let skip = skip.canonicalize().unwrap_or_else(|_| skip.to_path_buf());
    let mut pending: Vec<(PathBuf, PathBuf)> = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((source, target)) = pending.pop() {
        for entry in std::fs::read_dir(&source)
            .with_context(|| format!("reading the handler {}", source.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            if path.canonicalize().is_ok_and(|p| p == skip) || entry.file_name() == "build" {
                continue;
            }
            let meta =
                std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            let into = target.join(entry.file_name());
            if meta.is_dir() {
                create_dir(&into)?;
                pending.push((path, into));
            } else if meta.is_file() {
                std::fs::copy(&path, &into)
                    .with_context(|| format!("copying {}", path.display()))?;
                let mode = meta.permissions().mode() | 0o044;
                std::fs::set_permissions(&into, std::fs::Permissions::from_mode(mode & 0o7755))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_parse_and_name_themselves() {
        for shipped in &TEMPLATES {
            let template = shipped.template();
            assert_eq!(template.language, shipped.name);
            assert_eq!(template.environment["mode"], "http");
            assert!(shipped.handler_files().count() >= 1, "{}", shipped.name);
            assert!(shipped.server_files().count() >= 1, "{}", shipped.name);
        }
        assert!(
            Shipped::find("cobol")
                .err()
                .unwrap()
                .to_string()
                .contains("python3-http")
        );
    }

    #[test]
    fn a_build_is_the_server_with_the_handler_in_function() {
        let dir = tempfile::tempdir().unwrap();
        let handler = dir.path().join("greet");
        std::fs::create_dir_all(handler.join("lib")).unwrap();
        std::fs::write(handler.join("handler.py"), "def handle(e, c): pass\n").unwrap();
        std::fs::write(handler.join("lib/util.py"), "X = 1\n").unwrap();
        let request = TemplateBuild {
            name: "greet".into(),
            lang: "python3-http".into(),
            handler: handler.clone(),
            stack_dir: dir.path().to_path_buf(),
        };
        let built = build(&request).unwrap();
        assert!(built.dir.ends_with("build/greet"));
        assert!(built.dir.join("index.py").is_file());
        assert!(built.dir.join("function/handler.py").is_file());
        assert!(built.dir.join("function/lib/util.py").is_file());
        assert!(!built.dir.join("template.yml").exists());
        assert_eq!(built.template.fprocess, "python3 index.py");
        // Built again from a changed handler: nothing of the old build stays.
        std::fs::remove_file(handler.join("lib/util.py")).unwrap();
        let again = build(&request).unwrap();
        assert!(!again.dir.join("function/lib/util.py").exists());
        // A handler that is the stack's own directory does not copy its build into itself.
        let whole = TemplateBuild {
            handler: dir.path().to_path_buf(),
            ..request
        };
        let built = build(&whole).unwrap();
        assert!(!built.dir.join("function/build").exists());
        assert!(built.dir.join("function/greet/handler.py").is_file());
    }
}
