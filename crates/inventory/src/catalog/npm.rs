//! npm: installed `node_modules/<name>/package.json` and `package-lock.json` v1 to v3.

use serde_json::Value;

use crate::catalog::{Cataloger, Extracted, Found};

/// True for `.../node_modules/<name>/package.json` and
/// `.../node_modules/@scope/<name>/package.json` (not a package's own nested files).
pub(crate) fn is_installed_package_json(path: &str) -> bool {
    let Some((_, rest)) = path.rsplit_once("node_modules/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [name, "package.json"] => !name.starts_with('@') && !name.starts_with('.'),
        [scope, _, "package.json"] => scope.starts_with('@'),
        _ => false,
    }
}

/// The package an installed `package.json` describes.
pub(crate) fn parse_package_json(bytes: &[u8]) -> Result<Extracted, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON ({error})"))?;
    let (Some(name), Some(version)) = (
        json.get("name").and_then(Value::as_str),
        json.get("version").and_then(Value::as_str),
    ) else {
        return Err("package.json without name or version".to_owned());
    };
    Ok(Extracted::packages(
        Cataloger::NpmPackage,
        vec![Found {
            name: name.to_owned(),
            version: version.to_owned(),
            ..Found::default()
        }],
    ))
}

/// The packages a lock file pins: `packages` (v2, v3) keyed by `node_modules/...` paths, or
/// the nested `dependencies` tree (v1). Links and the root project are not packages.
pub(crate) fn parse_lock(bytes: &[u8]) -> Result<Extracted, String> {
    let json: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("malformed JSON ({error})"))?;
    let mut packages = Vec::new();
    if let Some(entries) = json.get("packages").and_then(Value::as_object) {
        for (key, entry) in entries {
            let Some((_, name)) = key.rsplit_once("node_modules/") else {
                continue;
            };
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = entry.get("name").and_then(Value::as_str).unwrap_or(name);
            if let Some(version) = entry.get("version").and_then(Value::as_str) {
                packages.push(Found {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    ..Found::default()
                });
            }
        }
    } else if let Some(dependencies) = json.get("dependencies") {
        // v1 nests dependencies; the depth is bounded by serde_json's recursion limit.
        let mut pending = vec![dependencies];
        while let Some(dependencies) = pending.pop() {
            let Some(dependencies) = dependencies.as_object() else {
                continue;
            };
            for (name, entry) in dependencies {
                if let Some(version) = entry.get("version").and_then(Value::as_str)
                    && let Some(found) = v1_registry_package(name, version)
                {
                    packages.push(found);
                }
                if let Some(nested) = entry.get("dependencies") {
                    pending.push(nested);
                }
            }
        }
    } else {
        return Err("package-lock.json with neither packages nor dependencies".to_owned());
    }
    Ok(Extracted::packages(Cataloger::NpmLock, packages))
}

/// The registry package a v1 lock's dependency `name` with `version` is: an alias
/// (`npm:lodash@4.17.21`) is the package it names; a dependency from somewhere other than
/// the registry (`file:../x`, `git+https://...`, `github:user/repo#sha`, a tarball URL) has
/// no registry version and is none. A registry version never holds `:` or `/`.
fn v1_registry_package(name: &str, version: &str) -> Option<Found> {
    let (name, version) = match version.strip_prefix("npm:") {
        Some(alias) => alias
            .rsplit_once('@')
            .filter(|(name, _)| !name.is_empty())?,
        None => (name, version),
    };
    if version.is_empty() || version.contains([':', '/']) {
        return None;
    }
    Some(Found {
        name: name.to_owned(),
        version: version.to_owned(),
        ..Found::default()
    })
}

#[cfg(test)]
mod tests {
    use super::{is_installed_package_json, parse_lock};

    #[test]
    fn paths() {
        assert!(is_installed_package_json(
            "app/node_modules/lodash/package.json"
        ));
        assert!(is_installed_package_json(
            "node_modules/@babel/core/package.json"
        ));
        assert!(!is_installed_package_json(
            "node_modules/lodash/fp/package.json"
        ));
        assert!(!is_installed_package_json("app/package.json"));
    }

    #[test]
    fn lock_versions() {
        let v1 = parse_lock(
            br#"{"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0",
                "dependencies": {"b": {"version": "2.0.0"}}}, "local": {"version": "file:../x"}}}"#,
        )
        .unwrap();
        assert_eq!(v1.packages.len(), 2);
        // Aliases are the package they name; git, tarball and file sources are no registry
        // package.
        let v1 = parse_lock(
            br#"{"lockfileVersion": 1, "dependencies": {
                "old-lodash": {"version": "npm:lodash@4.17.15"},
                "scoped": {"version": "npm:@babel/traverse@7.22.0"},
                "fork": {"version": "git+https://example.invalid/fork.git#0123abc"},
                "gh": {"version": "github:someone/thing#0123abc"},
                "tarball": {"version": "https://example.invalid/thing-1.0.0.tgz"},
                "local": {"version": "file:../x"}}}"#,
        )
        .unwrap();
        let mut found: Vec<_> = v1
            .packages
            .iter()
            .map(|(_, p)| format!("{}@{}", p.name, p.version))
            .collect();
        found.sort();
        assert_eq!(found, ["@babel/traverse@7.22.0", "lodash@4.17.15"]);
        // v2 holds both forms; its `packages` are read (nested installs by their path).
        let v2 = parse_lock(
            br#"{"lockfileVersion": 2, "packages": {"": {"name": "root", "version": "1.0.0"},
                "node_modules/minimist": {"version": "1.2.5"},
                "node_modules/old-lodash": {"name": "lodash", "version": "4.17.15"},
                "node_modules/a/node_modules/minimist": {"version": "0.0.8"}},
                "dependencies": {"minimist": {"version": "1.2.5"}}}"#,
        )
        .unwrap();
        let mut found: Vec<_> = v2
            .packages
            .iter()
            .map(|(_, p)| format!("{}@{}", p.name, p.version))
            .collect();
        found.sort();
        assert_eq!(
            found,
            ["lodash@4.17.15", "minimist@0.0.8", "minimist@1.2.5"]
        );
        let v3 = parse_lock(
            br#"{"lockfileVersion": 3, "packages": {"": {"name": "root", "version": "1.0.0"},
                "node_modules/@s/x": {"version": "3.0.0"},
                "node_modules/a/node_modules/b": {"version": "2.1.0"},
                "node_modules/l": {"resolved": "../l", "link": true}}}"#,
        )
        .unwrap();
        let names: Vec<_> = v3.packages.iter().map(|(_, p)| p.name.as_str()).collect();
        assert_eq!(names, ["@s/x", "b"]);
    }
}
