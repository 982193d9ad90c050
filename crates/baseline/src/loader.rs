//! Reading manifests: files and directories, multi-document YAML, JSON and `List` objects.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{
    Error, Workload,
    workload::WORKLOAD_KINDS,
    yaml::{self, Node, Value},
};

/// Files larger than this (64 MiB) are refused.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Flow collections nested deeper than this are refused before parsing: the tree is walked
/// recursively, and no real manifest comes close.
const MAX_FLOW_DEPTH: usize = 512;

/// `List` objects nested deeper than this are not unpacked.
const MAX_LIST_DEPTH: usize = 8;

/// A document that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub file: PathBuf,
    /// The line where the document starts.
    pub line: usize,
    /// What was skipped and why.
    pub message: String,
}

/// What [`load_paths`] and [`load_str`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Objects with a pod template, in file order.
    pub workloads: Vec<Workload>,
    /// Documents that were skipped.
    pub warnings: Vec<Warning>,
    /// Files that could not be read or parsed; the other files still load.
    pub errors: Vec<Error>,
    /// Kubernetes objects without a pod template (Services, ConfigMaps, …).
    pub n_other_objects: usize,
}

/// Loads every manifest under `paths`.
///
/// A directory is walked recursively for `.yaml`, `.yml` and `.json` files, in name order,
/// without following symbolic links to directories; a file named directly is read whatever its
/// extension. Files are parsed on all available cores; the result keeps the file order.
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut files = Vec::new();
    for path in paths {
        let path = path.as_ref();
        match fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => walk_dir(path, &mut files, &mut loaded),
            Ok(_) => files.push(path.to_owned()),
            Err(source) => loaded
                .errors
                .push(Error::io(path.to_owned(), "cannot read", source)),
        }
    }
    for part in load_files(&files) {
        loaded.workloads.extend(part.workloads);
        loaded.warnings.extend(part.warnings);
        loaded.errors.extend(part.errors);
        loaded.n_other_objects += part.n_other_objects;
    }
    loaded
}

/// Loads each file on its own, spreading the files over the available cores.
fn load_files(files: &[PathBuf]) -> Vec<Loaded> {
    let load_one = |path: &PathBuf| {
        let mut part = Loaded::default();
        load_file(path, &mut part);
        part
    };
    let n_threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(files.len());
    if n_threads <= 1 {
        return files.iter().map(load_one).collect();
    }
    let next_file = AtomicUsize::new(0);
    let mut parts: Vec<Option<Loaded>> = files.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n_threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let file_idx = next_file.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(file_idx) else {
                            return done;
                        };
                        done.push((file_idx, load_one(path)));
                    }
                })
            })
            .collect();
        for worker in workers {
            // Parser panics are caught in `parse_stream`; any other panic is a bug to surface.
            match worker.join() {
                Ok(done) => {
                    for (file_idx, part) in done {
                        parts[file_idx] = Some(part);
                    }
                }
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    });
    parts.into_iter().flatten().collect()
}

/// Loads the manifests in `text`, as if read from `file`.
pub fn load_str(file: &Path, text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    load_text(file, text, &mut loaded);
    loaded
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, loaded: &mut Loaded) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            loaded
                .errors
                .push(Error::io(dir.to_owned(), "cannot read directory", source));
            return;
        }
    };
    let mut children: Vec<(PathBuf, fs::FileType)> = Vec::new();
    for entry in entries {
        match entry.and_then(|entry| Ok((entry.path(), entry.file_type()?))) {
            Ok(child) => children.push(child),
            Err(source) => {
                loaded
                    .errors
                    .push(Error::io(dir.to_owned(), "cannot read directory", source))
            }
        }
    }
    children.sort_by(|(left, _), (right, _)| left.cmp(right));
    for (path, file_type) in children {
        if file_type.is_dir() {
            walk_dir(&path, files, loaded);
        } else if has_manifest_extension(&path)
            && (file_type.is_file() || fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()))
        {
            files.push(path);
        }
    }
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| {
            ["yaml", "yml", "json"]
                .iter()
                .any(|known| extension.eq_ignore_ascii_case(known))
        })
}

fn load_file(path: &Path, loaded: &mut Loaded) {
    match read_limited(path) {
        Ok(text) => load_text(path, &text, loaded),
        Err(error) => loaded.errors.push(error),
    }
}

fn read_limited(path: &Path) -> Result<String, Error> {
    let file =
        fs::File::open(path).map_err(|source| Error::io(path.to_owned(), "cannot open", source))?;
    if let Ok(metadata) = file.metadata()
        && metadata.len() > MAX_FILE_SIZE
    {
        return Err(Error::too_large(path.to_owned(), metadata.len()));
    }
    // Special files report no size, so the read itself is bounded too.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::io(path.to_owned(), "cannot read", source))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(Error::too_large(path.to_owned(), bytes.len() as u64));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| Error::encoding(path.to_owned()))?;
    if text.starts_with('\u{feff}') {
        text.remove(0);
    }
    Ok(text)
}

fn load_text(file: &Path, text: &str, loaded: &mut Loaded) {
    if let Some((line, column)) = too_deep(text) {
        loaded.errors.push(Error::syntax(
            file.to_owned(),
            line,
            column,
            &format!("collections nested deeper than {MAX_FLOW_DEPTH} levels"),
        ));
        return;
    }
    match yaml::parse_stream(text) {
        Ok(documents) => {
            for document in documents {
                add_document(file, document, 0, loaded);
            }
        }
        Err(syntax) => loaded.errors.push(Error::syntax(
            file.to_owned(),
            syntax.line,
            syntax.column,
            &syntax.message,
        )),
    }
}

/// Where flow collections (`[` and `{`) first nest deeper than [`MAX_FLOW_DEPTH`], if they do.
///
/// Brackets inside quoted strings are skipped; brackets in plain scalars are counted, which can
/// only overestimate the depth.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0_usize;
    let mut quote: Option<char> = None;
    let (mut line, mut column) = (1, 0);
    let mut previous = '\n';
    for character in text.chars() {
        column += 1;
        match quote {
            Some(open) => {
                if character == open && !(open == '"' && previous == '\\') {
                    quote = None;
                }
            }
            None => match character {
                '"' | '\'' if matches!(previous, ' ' | '\t' | '\n' | '[' | '{' | ',' | ':') => {
                    quote = Some(character);
                }
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some((line, column));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        if character == '\n' {
            line += 1;
            column = 0;
        }
        previous = if previous == '\\' && character == '\\' {
            ' '
        } else {
            character
        };
    }
    None
}

fn add_document(file: &Path, document: Node, list_depth: usize, loaded: &mut Loaded) {
    if document.is_null() {
        return;
    }
    let kind = document
        .get("kind")
        .and_then(Node::as_str)
        .map(str::to_owned);
    let api_version = document
        .get("apiVersion")
        .and_then(Node::as_str)
        .map(str::to_owned);
    let (Some(kind), Some(api_version)) = (kind, api_version) else {
        loaded.warnings.push(Warning {
            file: file.to_owned(),
            line: document.line,
            message: "document is not a Kubernetes object (no kind and apiVersion); skipped"
                .to_owned(),
        });
        return;
    };
    if kind.ends_with("List")
        && let Some(items) = document.get("items")
        && matches!(items.value, Value::Seq(_) | Value::Null)
    {
        if list_depth >= MAX_LIST_DEPTH {
            loaded.warnings.push(Warning {
                file: file.to_owned(),
                line: document.line,
                message: format!("{kind} nested more than {MAX_LIST_DEPTH} lists deep; skipped"),
            });
            return;
        }
        let Value::Map(entries) = document.value else {
            return;
        };
        let items = entries.into_iter().find(|(key, _)| key == "items");
        if let Some((
            _,
            Node {
                value: Value::Seq(items),
                ..
            },
        )) = items
        {
            for item in items {
                add_document(file, item, list_depth + 1, loaded);
            }
        }
        return;
    }
    let line = document.line;
    match Workload::from_object(file.to_owned(), &kind, &api_version, document) {
        Some(workload) => loaded.workloads.push(workload),
        None if WORKLOAD_KINDS.contains(&kind.as_str()) => loaded.warnings.push(Warning {
            file: file.to_owned(),
            line,
            message: format!("{kind} has no pod template; skipped"),
        }),
        None => loaded.n_other_objects += 1,
    }
}
