//! dnf module streams: which stream of a module (`container-tools:rhel8`,
//! `postgresql:13`) an rpm was built for, from its header's modularity label
//! (`name:stream:version:context`), and which streams an image enabled, from
//! `etc/dnf/modules.d/*.module` (an INI file per module: `[name]`, `stream=`,
//! `state=enabled`). Red Hat's advisories for module packages are for one stream.

use palisade_version::module_stream;

use super::ini;

/// The most modules one `modules.d` file may declare; dnf writes one.
const MAX_MODULES_PER_FILE: usize = 64;

/// The `name:stream` of a modularity label (`perl:5.30:8090020230720103035:466ea64f` →
/// `perl:5.30`); `None` when the label does not name both.
pub(crate) fn stream_of_label(label: &str) -> Option<String> {
    let mut parts = label.split(':');
    let name = parts.next()?;
    let stream = parts.next()?;
    module_stream(name, stream)
}

/// Whether an rpm's `[epoch:]version-release` is a module build (`.module+el8.9.0+...`):
/// only those may be of an enabled stream when their header names none.
pub(crate) fn is_module_build(evr: &str) -> bool {
    palisade_version::RpmVersion::parse(evr).is_ok_and(|version| version.is_module_build())
}

/// The streams a `modules.d` file enables (`name:stream`, in file order): sections with
/// `state=enabled` (or `1`, `true`) and a stream. A section's `name=` names the module, else
/// its header does. Implausible names and streams ([`module_stream`]) are dropped.
pub(crate) fn parse_modules_file(text: &str) -> Vec<String> {
    ini::sections(text)
        .filter(|section| {
            // dnf writes `enabled`; older releases wrote `1` or `true` (Red Hat's OVAL
            // pattern accepts all three).
            section.get("state").is_some_and(|state| {
                ["enabled", "1", "true"]
                    .iter()
                    .any(|word| state.eq_ignore_ascii_case(word))
            })
        })
        .filter_map(|section| {
            let name = section.get("name").unwrap_or(section.header);
            module_stream(name, section.get("stream").unwrap_or_default())
        })
        .take(MAX_MODULES_PER_FILE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse_modules_file, stream_of_label};

    #[test]
    fn a_label_names_its_stream() {
        assert_eq!(
            stream_of_label("container-tools:rhel8:8090020231201131346:d7b6f4b7").as_deref(),
            Some("container-tools:rhel8")
        );
        assert_eq!(
            stream_of_label("perl:5.30:8090020230720103035:466ea64f").as_deref(),
            Some("perl:5.30")
        );
        assert_eq!(stream_of_label("nostream").as_deref(), None);
        assert_eq!(stream_of_label(":rhel8:1:2").as_deref(), None);
        assert_eq!(stream_of_label("name::1:2").as_deref(), None);
        assert_eq!(stream_of_label("a b:1:2:3").as_deref(), None);
        assert_eq!(stream_of_label(&format!("n:{}", "s".repeat(300))), None);
    }

    #[test]
    fn a_modules_file_names_its_enabled_streams() {
        let text = "\
# written by dnf
[container-tools]
name=container-tools
stream=4.0
profiles=
state=enabled

[perl]
name=perl
stream=5.30
state=disabled

[nodejs]
stream = 18
state = enabled

[ruby]
stream=2.5
state=1
";
        assert_eq!(
            parse_modules_file(text),
            ["container-tools:4.0", "nodejs:18", "ruby:2.5"]
        );
        // A reset module keeps its section without a stream.
        assert!(parse_modules_file("[php]\nname=php\nstream=\nstate=\n").is_empty());
    }

    #[test]
    fn hostile_modules_files_give_nothing_or_a_bounded_list() {
        for text in [
            "",
            "stream=1\nstate=enabled\n",
            "[",
            "[]\nstream=1\nstate=enabled\n",
            "[x]\nstream=a:b\nstate=enabled\n",
            "[x]\nstream=a\u{0}b\nstate=enabled\n",
            "[x]\nstate=enabled\n",
            "\u{feff}\u{0}\u{7f}===[[]]",
        ] {
            assert!(parse_modules_file(text).is_empty(), "{text:?}");
        }
        let many: String = (0..10_000)
            .map(|index| format!("[m{index}]\nstream=1\nstate=enabled\n"))
            .collect();
        let enabled = parse_modules_file(&many);
        assert_eq!(enabled.len(), 64);
        assert_eq!(enabled[63], "m63:1");
    }
}
