//! The INI files of dnf and yum (`.repo` files, `modules.d/*.module`), as dnf's reader
//! takes them: `[section]` headers and `key=value` lines, both trimmed; lines before the
//! first header and lines that are neither (comments, blank lines) are ignored.

/// One `[section]`: its header and its `key=value` lines in file order.
pub(crate) struct Section<'a> {
    /// The text between the brackets, trimmed.
    pub(crate) header: &'a str,
    entries: Vec<(&'a str, &'a str)>,
}

impl<'a> Section<'a> {
    /// The value of `key`: its last line's, as a later line overrides an earlier one.
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .rev()
            .find(|(known, _)| *known == key)
            .map(|(_, value)| *value)
    }
}

/// The sections of `text`, read as they are asked for.
pub(crate) fn sections(text: &str) -> impl Iterator<Item = Section<'_>> {
    let mut lines = text.lines().map(str::trim).peekable();
    std::iter::from_fn(move || {
        let header = lines.by_ref().find_map(header_of)?;
        let mut entries = Vec::new();
        while let Some(line) = lines.next_if(|line| header_of(line).is_none()) {
            if let Some((key, value)) = line.split_once('=') {
                entries.push((key.trim(), value.trim()));
            }
        }
        Some(Section { header, entries })
    })
}

/// The header a `[section]` line names.
fn header_of(line: &str) -> Option<&str> {
    line.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::sections;

    #[test]
    fn sections_hold_their_keys_and_the_last_value_wins() {
        let text = "ignored=before\n[first]\nenabled = 0\n# a comment\nenabled=1\n\n[ second ]\nname=x=y\nnot a key\n[]\n";
        let read: Vec<_> = sections(text).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].header, "first");
        assert_eq!(read[0].get("enabled"), Some("1"));
        assert_eq!(read[0].get("ignored"), None);
        assert_eq!(read[1].header, "second");
        assert_eq!(read[1].get("name"), Some("x=y"));
        assert_eq!(read[2].header, "");
        assert_eq!(read[2].get("name"), None);
        assert_eq!(sections("no header\nkey=value\n").count(), 0);
    }
}
