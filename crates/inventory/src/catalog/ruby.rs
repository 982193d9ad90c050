//! Ruby: installed gems' `specifications/<name>-<version>.gemspec`.

use crate::catalog::{Cataloger, Extracted, Found};

/// The gem a specification describes: `s.name = "x"` and `s.version = "1.2"` (RubyGems'
/// generated form), falling back to the file name `<name>-<version>.gemspec`.
pub(crate) fn parse_gemspec(text: &str, file_name: &str) -> Result<Extracted, String> {
    let assigned = |attribute: &str| -> Option<String> {
        text.lines().find_map(|line| {
            let line = line.trim();
            let (left, right) = line.split_once('=')?;
            let left = left.trim();
            if !left.ends_with(&format!(".{attribute}")) {
                return None;
            }
            // `"1.2.3".freeze`, `Gem::Version.new("1.2.3")`, `'x'`
            let start = right.find(['"', '\''])?;
            let quote = right[start..].chars().next()?;
            let rest = &right[start + 1..];
            let end = rest.find(quote)?;
            Some(rest[..end].to_owned())
        })
    };
    let from_file_name = file_name.strip_suffix(".gemspec").and_then(split_full_name);
    let (name, version, file_platform) =
        match (assigned("name"), assigned("version"), from_file_name) {
            (Some(name), Some(version), from_file_name) => (
                name,
                version,
                from_file_name.and_then(|(_, _, platform)| platform),
            ),
            (_, _, Some(triple)) => triple,
            _ => return Err("gemspec without name and version".to_owned()),
        };
    // `ruby` is the default platform (MRI), which the purl leaves out.
    let platform = assigned("platform")
        .or(file_platform)
        .filter(|platform| platform != "ruby");
    Ok(Extracted::packages(
        Cataloger::Gem,
        vec![Found {
            name,
            version,
            arch: platform,
            ..Found::default()
        }],
    ))
}

/// Splits RubyGems' full name `<name>-<version>[-<platform>]`: versions start with a digit and
/// hold no `-`, and names rarely have a part starting with a digit, so the version is the
/// first such part (`google-protobuf-3.25.1-x86_64-linux`, `nokogiri-1.16.0-universal-darwin-21`).
fn split_full_name(stem: &str) -> Option<(String, String, Option<String>)> {
    let (version_start, _) = stem.match_indices('-').find(|(index, _)| {
        stem[index + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })?;
    let name = &stem[..version_start];
    let rest = &stem[version_start + 1..];
    let (version, platform) = match rest.split_once('-') {
        Some((version, platform)) => (version, Some(platform.to_owned())),
        None => (rest, None),
    };
    Some((name.to_owned(), version.to_owned(), platform))
}

#[cfg(test)]
mod tests {
    use super::parse_gemspec;

    #[test]
    fn generated_and_file_name() {
        let spec = "Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.3\"\nend\n";
        let found = parse_gemspec(spec, "rack-2.2.3.gemspec").unwrap();
        assert_eq!(found.packages[0].1.name, "rack");
        assert_eq!(found.packages[0].1.version, "2.2.3");
        assert_eq!(found.packages[0].1.arch, None);
        let found = parse_gemspec("", "net-http-0.4.1.gemspec").unwrap();
        assert_eq!(found.packages[0].1.name, "net-http");
        assert_eq!(found.packages[0].1.version, "0.4.1");
    }

    #[test]
    fn platform_gems() {
        let spec = "Gem::Specification.new do |s|\n  s.name = \"nokogiri\".freeze\n  s.version = \"1.16.0\"\n  s.platform = \"x86_64-linux\".freeze\nend\n";
        let found = parse_gemspec(spec, "nokogiri-1.16.0-x86_64-linux.gemspec").unwrap();
        let gem = &found.packages[0].1;
        assert_eq!(
            (gem.name.as_str(), gem.version.as_str()),
            ("nokogiri", "1.16.0")
        );
        assert_eq!(gem.arch.as_deref(), Some("x86_64-linux"));
        // From the file name alone, a platform with a digit-led part included.
        let found =
            parse_gemspec("", "google-protobuf-3.25.1-universal-darwin-21.gemspec").unwrap();
        let gem = &found.packages[0].1;
        assert_eq!(gem.name, "google-protobuf");
        assert_eq!(gem.version, "3.25.1");
        assert_eq!(gem.arch.as_deref(), Some("universal-darwin-21"));
        let found = parse_gemspec("", "jruby-launcher-1.1.2-java.gemspec").unwrap();
        assert_eq!(found.packages[0].1.arch.as_deref(), Some("java"));
    }
}
