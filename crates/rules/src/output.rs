//! Output templates: literal text with `%field`, `%field[arg]` and `%(field)` placeholders.

use palisade_event::Event;

use crate::compile::{self, CompileError, FieldRef};
use crate::condition;
use crate::error::ErrorKind;
use crate::fields;

/// A parsed output template.
pub(crate) struct OutputTemplate {
    parts: Vec<Part>,
}

enum Part {
    Literal(String),
    Field(FieldRef),
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

impl OutputTemplate {
    /// Parses a template; unknown fields are errors at the placeholder's offset.
    pub fn parse(template: &str) -> Result<OutputTemplate, CompileError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(percent) = rest.find('%') {
            literal.push_str(&rest[..percent]);
            let at = template.len() - rest.len() + percent + 1;
            let after = &rest[percent + 1..];
            let (field_text, consumed) = if let Some(inner) = after.strip_prefix('(') {
                match inner.find(')') {
                    Some(close) => (&inner[..close], close + 2),
                    None => {
                        return Err(CompileError {
                            kind: ErrorKind::Syntax,
                            offset: at,
                            message: "unclosed '%(' in output".to_owned(),
                        });
                    }
                }
            } else {
                let mut end = fields::dotted_k8s_label_len(after).unwrap_or_else(|| {
                    after
                        .find(|c: char| !is_field_char(c))
                        .unwrap_or(after.len())
                });
                // A sentence-ending dot is not part of the field name.
                while end > 0 && after[..end].ends_with('.') {
                    end -= 1;
                }
                if end > 0 && after[end..].starts_with('[') {
                    match after[end..].find(']') {
                        Some(close) => end += close + 1,
                        None => {
                            return Err(CompileError {
                                kind: ErrorKind::Syntax,
                                offset: at,
                                message: "unclosed '[' in output field".to_owned(),
                            });
                        }
                    }
                }
                (&after[..end], end)
            };
            if field_text == "container.info" {
                // Falco's deprecated placeholder, which it now replaces with nothing.
                rest = &after[consumed..];
                continue;
            }
            if field_text.is_empty() {
                // `%%` and a lone `%` print a percent sign.
                literal.push('%');
                rest = after.strip_prefix('%').unwrap_or(after);
                continue;
            }
            // The condition grammar has no '/' or '-' in a name: such a key goes in brackets.
            let bracketed = fields::dotted_k8s_label_len(field_text).and_then(|_| {
                let (name, key) = fields::lookup(field_text)?;
                Some(format!("{}[{}]", name.name, key?))
            });
            let field_expr = condition::parse_field(bracketed.as_deref().unwrap_or(field_text))
                .map_err(|parse_error| CompileError {
                    kind: if field_text.contains('.') {
                        ErrorKind::Syntax
                    } else {
                        ErrorKind::UnknownField
                    },
                    offset: at + parse_error.offset,
                    message: format!(
                        "invalid output field '%{field_text}': {}",
                        parse_error.message
                    ),
                })?;
            let field_ref = compile::resolve_field(&field_expr).map_err(|mut compile_error| {
                compile_error.offset = at;
                compile_error
            })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Field(field_ref));
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(OutputTemplate { parts })
    }

    /// Renders the template; absent values print as `<NA>`, as in Falco.
    pub fn render(&self, event: &Event) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(field) => match field.extract(event) {
                    Some(value) => out.push_str(&value.render()),
                    None => out.push_str("<NA>"),
                },
            }
        }
        out
    }

    /// The fields the template prints.
    pub fn fields(&self) -> impl Iterator<Item = &FieldRef> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(field) => Some(field),
            Part::Literal(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use palisade_event::{Event, EventKind};

    use crate::output::OutputTemplate;

    #[test]
    fn placeholders() {
        let mut event = Event::new(EventKind::Execve);
        event.process.name = "bash".into();
        event.process.args = vec!["-c".into(), "id".into()].into();
        let cases = [
            ("Shell %proc.name.", "Shell bash."),
            ("%(proc.name)/%proc.aname[1]", "bash/<NA>"),
            ("100%% sure, 5% off", "100% sure, 5% off"),
            (
                "cmd=%proc.cmdline user=%user.name",
                "cmd=bash -c id user=<NA>",
            ),
        ];
        for (template, expected) in cases {
            match OutputTemplate::parse(template) {
                Ok(output) => assert_eq!(output.render(&event), expected, "{template}"),
                Err(error) => assert_eq!(error.message, expected, "{template}"),
            }
        }
        assert!(OutputTemplate::parse("%tolower(proc.name)").is_err());
        let error = OutputTemplate::parse("x %proc.nope y").err().unwrap();
        assert_eq!(
            (error.offset, error.message.as_str()),
            (3, "unknown field 'proc.nope'")
        );
    }
}
