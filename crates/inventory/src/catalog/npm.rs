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
                    && !version.starts_with("file:")
                {
                    packages.push(Found {
                        name: name.clone(),
                        version: version.to_owned(),
                        ..Found::default()
                    });
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
