//! Package URLs (<https://github.com/package-url/purl-spec>): each segment percent-encoded,
//! qualifiers sorted by key.

/// Percent-encodes everything but the characters the purl spec leaves bare: unreserved
/// characters, and `:`, which is "unambiguous unencoded everywhere" (a Debian epoch stays
/// `1:1.2.13`, as packageurl-python and Syft write it).
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`; the namespace may hold several `/`-separated
/// segments, each encoded; qualifiers with empty values are left out.
pub(crate) fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut purl = format!("pkg:{kind}/");
    if let Some(namespace) = namespace.filter(|namespace| !namespace.is_empty()) {
        for segment in namespace.split('/').filter(|segment| !segment.is_empty()) {
            purl.push_str(&encode(segment));
            purl.push('/');
        }
    }
    purl.push_str(&encode(name));
    if !version.is_empty() {
        purl.push('@');
        purl.push_str(&encode(version));
    }
    let mut qualifiers: Vec<&(&str, &str)> = qualifiers
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    qualifiers.sort();
    for (position, (key, value)) in qualifiers.into_iter().enumerate() {
        purl.push(if position == 0 { '?' } else { '&' });
        purl.push_str(key);
        purl.push('=');
        purl.push_str(&encode(value));
    }
    purl
}

#[cfg(test)]
mod tests {
    use super::purl;

    #[test]
    fn spec_examples() {
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "curl",
                "7.50.3-1",
                &[("arch", "i386"), ("distro", "jessie")]
            ),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        assert_eq!(
            purl("npm", Some("@angular"), "animation", "12.3.1", &[]),
            "pkg:npm/%40angular/animation@12.3.1"
        );
        assert_eq!(
            purl(
                "golang",
                Some("google.golang.org"),
                "genproto",
                "v0.0.0-20180208",
                &[]
            ),
            "pkg:golang/google.golang.org/genproto@v0.0.0-20180208"
        );
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libc6",
                "2.36-9+deb12u4",
                &[("epoch", "")]
            ),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4"
        );
        assert_eq!(
            purl("deb", Some("debian"), "zlib1g", "1:1.2.13.dfsg-1", &[]),
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1"
        );
        assert_eq!(
            purl(
                "gem",
                None,
                "jruby-launcher",
                "1.1.2",
                &[("platform", "java")]
            ),
            "pkg:gem/jruby-launcher@1.1.2?platform=java"
        );
    }
}
