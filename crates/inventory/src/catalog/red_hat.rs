//! Red Hat Enterprise Linux's update streams: whether an image's or a host's packages come
//! from the main stream or from Extended Update Support (EUS), Advanced Update Support
//! (AUS), Update Services for SAP Solutions (E4S), Telco Extended Update Support (TUS) or
//! Extended Life-cycle Support (ELS), each of which gets its own fixes (advisories name them
//! `Red Hat:rhel_eus:9.2::baseos`, ...), read from the repositories the packages came from.
//!
//! Red Hat's images record the repositories each build used as content sets in
//! `root/buildinfo/content_manifests/*.json` (RHCOS: `usr/share/buildinfo/*.json`), as Red
//! Hat's security data guidelines tell scanners to read them; a subscribed host lists its
//! repositories in `etc/yum.repos.d/*.repo`, with `enabled = 1` for those in use. The
//! repository id names the stream (`rhel-9-for-x86_64-baseos-eus-rpms`), and content sets
//! pinned to a minor release name it too (`rhel-9-for-x86_64-baseos-eus-rpms__9_DOT_2`);
//! otherwise the minor release is `os-release`'s `VERSION_ID`. Only the base repositories
//! decide (BaseOS and AppStream; RHEL 6 and 7: Server): add-ons such as `nfv-tus` ride along
//! with another stream. `etc/redhat-release` names the release of images too old for
//! `os-release` (RHEL and CentOS 6); `etc/openEuler-release` that of openEuler roots without
//! one.

use serde::Deserialize;

use crate::catalog::os_release::Distro;

/// Support streams other than the main one, as Red Hat's CPEs name their products
/// (`rhel_eus`).
const STREAMS: [&str; 5] = ["eus", "aus", "e4s", "tus", "els"];

/// Repositories packages were installed from, as one file lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repositories {
    /// Repository ids: a content manifest's content sets, or a repository file's enabled
    /// sections.
    pub(crate) ids: Vec<String>,
    /// The build's position for a content manifest (`metadata.image_layer_index`), `None`
    /// for a repository file.
    pub(crate) manifest_layer: Option<u64>,
}

#[derive(Deserialize)]
struct ContentManifest {
    #[serde(default)]
    content_sets: Vec<String>,
    #[serde(default)]
    metadata: ManifestMetadata,
}

#[derive(Deserialize, Default)]
struct ManifestMetadata {
    #[serde(default)]
    image_layer_index: u64,
}

/// The content sets of a content manifest.
pub(crate) fn parse_content_manifest(bytes: &[u8]) -> Result<Repositories, String> {
    let manifest: ContentManifest = serde_json::from_slice(bytes)
        .map_err(|error| format!("not a content manifest ({error})"))?;
    Ok(Repositories {
        ids: manifest.content_sets,
        manifest_layer: Some(manifest.metadata.image_layer_index),
    })
}

/// The enabled repositories of a dnf/yum `.repo` file (`[id]` sections; `enabled` defaults
/// to on, as dnf reads it).
pub(crate) fn parse_repo_file(text: &str) -> Repositories {
    let ids = super::ini::sections(text)
        .filter(|section| {
            section.get("enabled").is_none_or(|enabled| {
                matches!(
                    enabled.to_ascii_lowercase().as_str(),
                    "1" | "yes" | "true" | "on"
                )
            })
        })
        .map(|section| section.header.to_owned())
        .collect();
    Repositories {
        ids,
        manifest_layer: None,
    }
}

/// The distribution an `etc/redhat-release`-style file names (`Red Hat Enterprise Linux
/// Server release 6.10 (Santiago)`, `CentOS release 6.10 (Final)`), for roots without
/// `os-release`.
pub(crate) fn parse_release_file(text: &str) -> Option<Distro> {
    let line = text.lines().next()?.trim();
    let (product, rest) = line.split_once(" release ")?;
    let id = match product {
        _ if product.starts_with("Red Hat Enterprise Linux") => "rhel",
        _ if product.starts_with("CentOS") => "centos",
        "Rocky Linux" => "rocky",
        "AlmaLinux" => "almalinux",
        "openEuler" => "openeuler",
        _ => return None,
    };
    let version = rest.split_whitespace().next()?;
    Some(Distro {
        id: id.to_owned(),
        version_id: Some(version.to_owned()),
        codename: None,
        pretty_name: Some(line.to_owned()),
        cpe_name: None,
        // `openEuler release 22.03 (LTS-SP3)`: the support label names the release.
        stream: (id == "openeuler")
            .then(|| crate::catalog::os_release::openeuler_label(rest))
            .flatten(),
    })
}

/// The stream of a RHEL base repository id, and the release a pinned content set names:
/// `rhel-9-for-x86_64-baseos-eus-rpms__9_DOT_2` → (`Some("eus")`, `Some("9.2")`),
/// `rhel-8-for-aarch64-appstream-rpms` → (`None`, `None`) for the main stream; `None` for
/// any other repository (add-ons, debug and source repositories, other products).
fn base_repository(id: &str) -> Option<(Option<&'static str>, Option<String>)> {
    let (name, pinned) = match id.split_once("__") {
        Some((name, pinned)) => (name, Some(pinned)),
        None => (id, None),
    };
    let (major, rest) = name.strip_prefix("rhel-")?.split_once('-')?;
    if major.is_empty() || !major.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_suffix("-rpms")?;
    let suffix = match rest.strip_prefix("server") {
        Some(suffix) => suffix,
        None => {
            let (_arch, repository) = rest.strip_prefix("for-")?.split_once('-')?;
            repository
                .strip_prefix("baseos")
                .or_else(|| repository.strip_prefix("appstream"))?
        }
    };
    let stream = match suffix.strip_prefix('-') {
        None if suffix.is_empty() => None,
        Some(stream) => Some(*STREAMS.iter().find(|known| **known == stream)?),
        None => return None,
    };
    // `9_DOT_2`, or `7_DOT_6__x86_64` for RHEL 6 and 7.
    let release = pinned
        .and_then(|pinned| pinned.split("__").next())
        .and_then(|pinned| pinned.split_once("_DOT_"))
        .filter(|(pinned_major, minor)| {
            *pinned_major == major
                && !minor.is_empty()
                && minor.bytes().all(|byte| byte.is_ascii_digit())
        })
        .map(|(major, minor)| format!("{major}.{minor}"));
    Some((stream, release))
}

/// The stream, with its release, that `distro`'s packages come from when it is not the main
/// one (`rhel_eus:9.2`), as the base repositories of `sources` say: the content manifest of
/// the last build that names base repositories, else the enabled repository files. `None`
/// for the main stream, for a distribution other than RHEL, and when the release of a
/// minor-release stream is not known.
///
/// `sources` are `(layer index, repositories)`; later layers and builds come later.
pub(crate) fn stream<'a>(
    distro: &Distro,
    sources: impl IntoIterator<Item = (usize, &'a Repositories)>,
) -> Option<String> {
    if distro.id != "rhel" {
        return None;
    }
    let mut manifests = Vec::new();
    let mut repo_files = Vec::new();
    for (layer_index, repositories) in sources {
        let bases: Vec<_> = repositories
            .ids
            .iter()
            .filter_map(|id| base_repository(id))
            .collect();
        if bases.is_empty() {
            continue;
        }
        match repositories.manifest_layer {
            Some(build) => manifests.push(((layer_index, build), bases)),
            None => repo_files.extend(bases),
        }
    }
    let bases = match manifests.into_iter().max_by_key(|(order, _)| *order) {
        Some((_, bases)) => bases,
        None => repo_files,
    };
    // One stream for every base repository, or the main stream's data applies.
    let (first_stream, _) = bases.first()?;
    let stream = (*first_stream)?;
    if bases.iter().any(|(other, _)| *other != Some(stream)) {
        return None;
    }
    let release = match bases.iter().find_map(|(_, release)| release.clone()) {
        Some(release) => release,
        // ELS covers a major release; the others a minor one, which os-release names.
        None if stream == "els" => distro.version_id.as_deref()?.split('.').next()?.to_owned(),
        None => {
            let version = distro.version_id.as_deref()?;
            let mut parts = version.split('.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor)) if !minor.is_empty() => format!("{major}.{minor}"),
                _ => return None,
            }
        }
    };
    Some(format!("rhel_{stream}:{release}"))
}

#[cfg(test)]
mod tests {
    use super::{Repositories, base_repository, parse_release_file, parse_repo_file, stream};
    use crate::catalog::os_release::parse;

    #[test]
    fn base_repositories_name_their_stream_and_pinned_release() {
        let cases = [
            ("rhel-9-for-x86_64-baseos-rpms", Some((None, None))),
            ("rhel-8-for-aarch64-appstream-rpms", Some((None, None))),
            (
                "rhel-9-for-x86_64-appstream-eus-rpms__9_DOT_2",
                Some((Some("eus"), Some("9.2".to_owned()))),
            ),
            (
                "rhel-8-for-x86_64-baseos-e4s-rpms",
                Some((Some("e4s"), None)),
            ),
            (
                "rhel-8-for-x86_64-baseos-tus-rpms__8_DOT_4",
                Some((Some("tus"), Some("8.4".to_owned()))),
            ),
            (
                "rhel-7-server-eus-rpms__7_DOT_6__x86_64",
                Some((Some("eus"), Some("7.6".to_owned()))),
            ),
            ("rhel-7-server-rpms__7Server__x86_64", Some((None, None))),
            ("rhel-7-server-els-rpms", Some((Some("els"), None))),
            ("rhel-6-server-aus-rpms", Some((Some("aus"), None))),
            // Add-ons, debug and source repositories, and other products decide nothing.
            ("rhel-8-for-x86_64-nfv-tus-rpms__8_DOT_4", None),
            ("rhel-9-for-x86_64-appstream-eus-debug-rpms", None),
            ("rhel-9-for-x86_64-baseos-eus-source-rpms", None),
            ("rhocp-4.16-for-rhel-9-x86_64-rpms", None),
            ("advanced-virt-for-rhel-8-x86_64-eus-rpms", None),
            ("rhel-9-for-x86_64-baseos-xyz-rpms", None),
            ("rhel-x-for-x86_64-baseos-rpms", None),
        ];
        for (id, expected) in cases {
            assert_eq!(base_repository(id), expected, "{id}");
        }
    }

    fn manifest(layer: u64, ids: &[&str]) -> Repositories {
        Repositories {
            ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            manifest_layer: Some(layer),
        }
    }

    #[test]
    fn the_last_build_naming_base_repositories_decides_the_stream() {
        let rhel = parse("ID=\"rhel\"\nVERSION_ID=\"9.2\"\n");
        // An OpenShift image on an EUS base: the RHCOS-style content sets pin 9.2.
        let ubi = manifest(0, &["rhel-9-for-x86_64-baseos-rpms"]);
        let console = manifest(
            2,
            &[
                "rhel-9-for-x86_64-appstream-eus-rpms__9_DOT_2",
                "rhel-9-for-x86_64-baseos-eus-rpms__9_DOT_2",
                "rhocp-4.16-for-rhel-9-x86_64-rpms",
            ],
        );
        // A later build that lists only add-on repositories does not decide.
        let addon = manifest(3, &["rhocp-4.16-for-rhel-9-x86_64-rpms"]);
        assert_eq!(
            stream(&rhel, [(0, &ubi), (2, &console), (2, &addon)]).as_deref(),
            Some("rhel_eus:9.2")
        );
        // The main stream's last build wins over an earlier EUS one.
        let main = manifest(4, &["rhel-9-for-x86_64-baseos-rpms"]);
        assert_eq!(stream(&rhel, [(2, &console), (4, &main)]), None);
        // Unpinned content sets take the minor release from os-release.
        let e4s = manifest(1, &["rhel-9-for-x86_64-baseos-e4s-rpms"]);
        assert_eq!(stream(&rhel, [(1, &e4s)]).as_deref(), Some("rhel_e4s:9.2"));
        // Without a minor release anywhere, the stream cannot be named.
        let major_only = parse("ID=\"rhel\"\nVERSION_ID=\"9\"\n");
        assert_eq!(stream(&major_only, [(1, &e4s)]), None);
        // Mixed base streams fall back to the main stream's data.
        let mixed = manifest(
            1,
            &[
                "rhel-9-for-x86_64-baseos-eus-rpms",
                "rhel-9-for-x86_64-appstream-rpms",
            ],
        );
        assert_eq!(stream(&rhel, [(1, &mixed)]), None);
        // Other distributions have no such streams.
        let rocky = parse("ID=\"rocky\"\nVERSION_ID=\"9.2\"\n");
        assert_eq!(stream(&rocky, [(2, &console)]), None);
    }

    #[test]
    fn a_host_stream_comes_from_its_enabled_repositories() {
        let redhat_repo = "\
[rhel-8-for-x86_64-baseos-rpms]
name = Red Hat Enterprise Linux 8 for x86_64 - BaseOS (RPMs)
enabled = 0

[rhel-8-for-x86_64-baseos-aus-rpms]
name = Red Hat Enterprise Linux 8 for x86_64 - BaseOS - Advanced Update Support (RPMs)
enabled = 1

[rhel-8-for-x86_64-appstream-aus-rpms]
enabled=1
[rhel-8-for-x86_64-appstream-aus-debug-rpms]
enabled = 1
[ansible-2-for-rhel-8-x86_64-rpms]
";
        let repositories = parse_repo_file(redhat_repo);
        assert_eq!(
            repositories.ids,
            [
                "rhel-8-for-x86_64-baseos-aus-rpms",
                "rhel-8-for-x86_64-appstream-aus-rpms",
                "rhel-8-for-x86_64-appstream-aus-debug-rpms",
                "ansible-2-for-rhel-8-x86_64-rpms",
            ]
        );
        let rhel = parse("ID=\"rhel\"\nVERSION_ID=\"8.4\"\n");
        assert_eq!(
            stream(&rhel, [(0, &repositories)]).as_deref(),
            Some("rhel_aus:8.4")
        );
        // A content manifest outranks repository files.
        let main = manifest(0, &["rhel-8-for-x86_64-baseos-rpms"]);
        assert_eq!(stream(&rhel, [(0, &repositories), (0, &main)]), None);
        let els = parse_repo_file("[rhel-7-server-els-rpms]\nenabled=1\n");
        let rhel7 = parse("ID=\"rhel\"\nVERSION_ID=\"7.9\"\n");
        assert_eq!(stream(&rhel7, [(0, &els)]).as_deref(), Some("rhel_els:7"));
    }

    #[test]
    fn release_files_name_old_releases() {
        let rhel6 = parse_release_file("Red Hat Enterprise Linux Server release 6.10 (Santiago)\n")
            .unwrap();
        assert_eq!(
            (rhel6.id.as_str(), rhel6.ecosystem().as_deref()),
            ("rhel", Some("Red Hat:6"))
        );
        let centos = parse_release_file("CentOS release 6.10 (Final)").unwrap();
        assert_eq!(centos.ecosystem().as_deref(), Some("Red Hat:6"));
        let centos7 = parse_release_file("CentOS Linux release 7.9.2009 (Core)").unwrap();
        assert_eq!(centos7.version_id.as_deref(), Some("7.9.2009"));
        let openeuler = parse_release_file("openEuler release 22.03 (LTS-SP3)\n").unwrap();
        assert_eq!(
            openeuler.ecosystem().as_deref(),
            Some("openEuler:22.03-LTS-SP3")
        );
        assert_eq!(parse_release_file("Fedora release 39 (Thirty Nine)"), None);
        assert_eq!(parse_release_file(""), None);
    }
}
