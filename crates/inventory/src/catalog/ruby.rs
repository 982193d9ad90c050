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
    let from_file_name = file_name.strip_suffix(".gemspec").and_then(|stem| {
        let split = stem.rmatch_indices('-').find(|(index, _)| {
            stem[index + 1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })?;
        Some((stem[..split.0].to_owned(), stem[split.0 + 1..].to_owned()))
    });
    let (name, version) = match (assigned("name"), assigned("version"), from_file_name) {
        (Some(name), Some(version), _) => (name, version),
        (_, _, Some(pair)) => pair,
        _ => return Err("gemspec without name and version".to_owned()),
    };
    Ok(Extracted::packages(
        Cataloger::Gem,
        vec![Found {
            name,
            version,
            ..Found::default()
        }],
    ))
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
        let found = parse_gemspec("", "net-http-0.4.1.gemspec").unwrap();
        assert_eq!(found.packages[0].1.name, "net-http");
        assert_eq!(found.packages[0].1.version, "0.4.1");
    }
}
