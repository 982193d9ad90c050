//! Streaming XML reading for the XML feeds (yum/dnf updateinfo, OVAL): a document is read
//! event by event from a [`BufRead`], never whole, and handed to a [`Handler`] as opened
//! and closed elements with their local names (namespaces dropped), their attributes and
//! the text they hold.
//!
//! Security and limits: document type declarations are refused, so no entity is ever
//! expanded (XML bombs); only the predefined entities and character references are read.
//! Elements nest at most [`MAX_DEPTH`] deep and hold at most [`MAX_TEXT_BYTES`] of text;
//! the document's size is bounded by the reader it comes from.

use std::collections::BTreeMap;
use std::io::BufRead;

use quick_xml::encoding::Decoder;
use quick_xml::events::{BytesStart, Event};

/// The deepest element nesting read; the feeds need about ten levels (OVAL's nested
/// criteria a few more).
pub(crate) const MAX_DEPTH: usize = 64;

/// The most text one element may hold (a description, a changelog).
pub(crate) const MAX_TEXT_BYTES: usize = 4 << 20;

/// What reads a document's elements.
pub(crate) trait Handler {
    /// An element opened; `stack` holds its ancestors' local names, the root first (empty
    /// for the root). An error stops the reading.
    fn open(&mut self, element: &Element, stack: &[String]) -> Result<(), String>;

    /// An element closed, with the text it held directly (untrimmed).
    fn close(&mut self, name: &str, text: &str, stack: &[String]);

    /// Where in the document the handler is, for an error message (`in update #3`).
    fn position(&self) -> String;
}

/// An opened element.
pub(crate) struct Element<'a> {
    start: &'a BytesStart<'a>,
    decoder: Decoder,
    name: String,
}

impl Element<'_> {
    /// The local name (`rpminfo_test` for `<linux-def:rpminfo_test>`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The attributes by local name, their values unescaped and trimmed.
    pub(crate) fn attributes(&self) -> Result<BTreeMap<String, String>, String> {
        let mut values = BTreeMap::new();
        for attribute in self.start.attributes() {
            let attribute = attribute.map_err(|error| error.to_string())?;
            let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
            let value = attribute
                .decode_and_unescape_value(self.decoder)
                .map_err(|error| error.to_string())?;
            values.insert(key, value.trim().to_owned());
        }
        Ok(values)
    }
}

/// Why reading a document stopped before its end.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The document is malformed or refused: the reason, with where it happened.
    Malformed(String),
    /// The input failed (corrupt compressed data, a size limit): the error, with where.
    Input(String),
}

/// Reads the document in `input` into `handler`.
pub(crate) fn read(input: impl BufRead, handler: &mut dyn Handler) -> Result<(), Stop> {
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut buffer = Vec::new();
    let mut state = State {
        stack: Vec::new(),
        text: String::new(),
    };
    loop {
        buffer.clear();
        let event = reader.read_event_into(&mut buffer);
        let at = |reason: String, handler: &dyn Handler| {
            format!(
                "{reason} (at byte {}, {})",
                reader.buffer_position(),
                handler.position()
            )
        };
        let outcome = match event {
            Ok(Event::Eof) if state.stack.is_empty() => return Ok(()),
            Ok(event) => state.handle(reader.decoder(), event, handler),
            Err(quick_xml::Error::Io(error)) => {
                return Err(Stop::Input(at(error.to_string(), handler)));
            }
            Err(error) => Err(format!("malformed XML: {error}")),
        };
        if let Err(reason) = outcome {
            return Err(Stop::Malformed(at(reason, handler)));
        }
    }
}

/// Where the reader is: the open elements and the text of the innermost one.
struct State {
    /// The names of the open elements, the root first.
    stack: Vec<String>,
    text: String,
}

impl State {
    fn handle(
        &mut self,
        decoder: Decoder,
        event: Event,
        handler: &mut dyn Handler,
    ) -> Result<(), String> {
        match event {
            Event::Eof => Err(format!(
                "the document ends inside <{}> (truncated)",
                self.stack.join("><")
            )),
            Event::DocType(_) => Err(
                "document type declarations are not accepted (no entity is expanded)".to_owned(),
            ),
            Event::Start(start) => {
                let name = self.open(decoder, &start, handler)?;
                self.stack.push(name);
                if self.stack.len() > MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH} levels"));
                }
                Ok(())
            }
            Event::Empty(start) => {
                let name = self.open(decoder, &start, handler)?;
                handler.close(&name, "", &self.stack);
                Ok(())
            }
            Event::Text(content) => {
                let decoded = content.decode().map_err(|error| error.to_string())?;
                self.push_text(&decoded)
            }
            Event::CData(content) => {
                let decoded = content.decode().map_err(|error| error.to_string())?;
                self.push_text(&decoded)
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                self.push_text(&resolved)
            }
            Event::End(_) => {
                let name = self.stack.pop().unwrap_or_default();
                handler.close(&name, &self.text, &self.stack);
                self.text.clear();
                Ok(())
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => Ok(()),
        }
    }

    fn open(
        &mut self,
        decoder: Decoder,
        start: &BytesStart,
        handler: &mut dyn Handler,
    ) -> Result<String, String> {
        self.text.clear();
        let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        let element = Element {
            start,
            decoder,
            name,
        };
        handler.open(&element, &self.stack)?;
        Ok(element.name)
    }

    fn push_text(&mut self, text: &str) -> Result<(), String> {
        if self.text.len() + text.len() > MAX_TEXT_BYTES {
            return Err(format!(
                "<{}> holds more than {MAX_TEXT_BYTES} bytes of text",
                self.stack.last().map(String::as_str).unwrap_or_default()
            ));
        }
        self.text.push_str(text);
        Ok(())
    }
}

/// `&amp;` and the other predefined entities, and character references; anything else would
/// need a DTD, which is refused.
fn resolve_reference(reference: &quick_xml::events::BytesRef) -> Result<String, String> {
    if let Some(character) = reference
        .resolve_char_ref()
        .map_err(|error| error.to_string())?
    {
        return Ok(character.to_string());
    }
    let name = reference.decode().map_err(|error| error.to_string())?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or_else(|| format!("undeclared entity &{name}; (entities are never expanded)"))
}
