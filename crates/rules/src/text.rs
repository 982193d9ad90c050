//! Condition text assembled from YAML scalars, with a map back to file positions.
//!
//! A rule's condition may be built from several scalars: the original, appended conditions,
//! and text generated from exceptions. [`CondText`] keeps the concatenated string the parser
//! sees and, for each piece, the scalar's raw source so that an offset in the string maps to
//! the line and column in the file, including inside `>` and `|` block scalars.

use std::sync::Arc;

use crate::error::Location;

/// Where a scalar sits in its file.
#[derive(Debug)]
pub(crate) struct Origin {
    /// File name.
    pub file: Arc<str>,
    /// The scalar's source text, from its first character (indicator or quote included).
    pub raw: String,
    /// Line of the scalar's first character, from 1.
    pub line: usize,
    /// Column of the scalar's first character, from 1.
    pub column: usize,
}

impl Origin {
    /// The location of the scalar's first character.
    pub fn location(&self) -> Location {
        Location {
            file: self.file.to_string(),
            line: self.line,
            column: self.column,
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    start: usize,
    origin: Option<Arc<Origin>>,
}

/// A condition (or output) string with its position map.
#[derive(Debug, Clone, Default)]
pub(crate) struct CondText {
    pub text: String,
    pieces: Vec<Piece>,
}

impl CondText {
    /// Text that came from one scalar.
    pub fn from_scalar(text: &str, origin: Option<Arc<Origin>>) -> CondText {
        let mut cond = CondText::default();
        cond.push(text, origin);
        cond
    }

    /// Appends text from a scalar (or generated text when `origin` is `None`).
    pub fn push(&mut self, text: &str, origin: Option<Arc<Origin>>) {
        self.pieces.push(Piece {
            start: self.text.len(),
            origin,
        });
        self.text.push_str(text);
    }

    /// Appends another text with its position map.
    pub fn push_text(&mut self, other: &CondText) {
        let base = self.text.len();
        self.text.push_str(&other.text);
        self.pieces.extend(other.pieces.iter().map(|piece| Piece {
            start: base + piece.start,
            origin: piece.origin.clone(),
        }));
    }

    /// Maps a byte offset of `text` to a file position.
    pub fn locate(&self, offset: usize) -> Option<Location> {
        let offset = offset.min(self.text.len());
        let index = self
            .pieces
            .iter()
            .rposition(|piece| piece.start <= offset)?;
        let piece = &self.pieces[index];
        let Some(origin) = &piece.origin else {
            // Generated text: point at the nearest scalar that follows, or precedes.
            return self.pieces[index..]
                .iter()
                .chain(self.pieces[..index].iter().rev())
                .find_map(|piece| piece.origin.as_ref().map(|origin| origin.location()));
        };
        let end = self
            .pieces
            .get(index + 1)
            .map_or(self.text.len(), |next| next.start);
        let local = &self.text[piece.start..end];
        let mut cut = (offset - piece.start).min(local.len());
        while !local.is_char_boundary(cut) {
            cut -= 1;
        }
        let target = local[..cut].chars().filter(|c| !c.is_whitespace()).count();
        Some(locate_in_raw(origin, target))
    }
}

/// Finds the `target`-th non-blank character of the scalar's value in its raw source.
///
/// Folding and indentation change only whitespace, so counting the other characters aligns
/// the parsed value with the source (escapes in quoted scalars shift this by a character).
fn locate_in_raw(origin: &Origin, target: usize) -> Location {
    let mut line = origin.line;
    let mut column = origin.column;
    let mut chars = origin.raw.chars().peekable();
    // Skip the block scalar header line or the opening quote.
    match chars.peek() {
        Some('|') | Some('>') => {
            for c in chars.by_ref() {
                column += 1;
                if c == '\n' {
                    line += 1;
                    column = 1;
                    break;
                }
            }
        }
        Some('"') | Some('\'') => {
            chars.next();
            column += 1;
        }
        _ => {}
    }
    let mut seen = 0;
    for c in chars {
        if !c.is_whitespace() {
            if seen == target {
                break;
            }
            seen += 1;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Location {
        file: origin.file.to_string(),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use crate::text::*;

    #[test]
    fn offsets_map_into_block_scalars() {
        let origin = Arc::new(Origin {
            file: "f.yaml".into(),
            raw: ">\n    evt.type = open\n    and fd.nam = x\n".into(),
            line: 3,
            column: 14,
        });
        let value = "evt.type = open and fd.nam = x\n";
        let cond = CondText::from_scalar(value, Some(origin));
        let location = cond.locate(value.find("fd.nam").unwrap()).unwrap();
        assert_eq!((location.line, location.column), (5, 9));
        let location = cond.locate(0).unwrap();
        assert_eq!((location.line, location.column), (4, 5));
    }

    #[test]
    fn offsets_map_into_appended_pieces() {
        let first = Arc::new(Origin {
            file: "a.yaml".into(),
            raw: "a and b".into(),
            line: 1,
            column: 10,
        });
        let second = Arc::new(Origin {
            file: "b.yaml".into(),
            raw: "\"and c\"".into(),
            line: 7,
            column: 12,
        });
        let mut cond = CondText::from_scalar("a and b", Some(first));
        cond.push(" ", None);
        cond.push("and c", Some(second));
        let location = cond.locate(cond.text.find('c').unwrap()).unwrap();
        assert_eq!(location.to_string(), "b.yaml:7:17");
        let location = cond.locate(6).unwrap();
        assert_eq!(location.to_string(), "a.yaml:1:16");
    }
}
