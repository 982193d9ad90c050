//! The `Key: value` stanza format shared by dpkg status files and Python's METADATA/PKG-INFO
//! (RFC 822 headers with indented continuation lines).

/// Splits `text` into stanzas separated by blank lines, each a list of `(key, value)`;
/// continuation lines are appended to the previous value. With `first_only`, stops after the
/// first stanza (Python metadata, where the body follows the headers).
pub(crate) fn stanzas(text: &str, first_only: bool) -> Vec<Vec<(&str, String)>> {
    let mut stanzas = Vec::new();
    let mut current: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
                if first_only {
                    return stanzas;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// The first value of `key` (ASCII case-insensitive) in a stanza.
pub(crate) fn field<'a>(stanza: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    stanza
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(key))
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}
