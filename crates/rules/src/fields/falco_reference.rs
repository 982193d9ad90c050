//! The field table against Falco's reference list of syscall-source fields
//! (`tests/data/falco_fields.tsv`: the supported-fields page and the names libsinsp's
//! filterchecks accept beyond it): every name is known, with libsinsp's value type and
//! argument form, and `docs/falco-fields.md`, the coverage table, is what the table says.
//! `PALISADE_BLESS=1` rewrites that document from the table.

use std::fmt::Write as _;

use super::{ArgSpec, FieldType, KindSet, lookup};

const REFERENCE: &str = include_str!("../../tests/data/falco_fields.tsv");
const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/falco-fields.md");

struct Reference<'a> {
    name: &'a str,
    falco_type: &'a str,
    argument: &'a str,
    source: &'a str,
}

fn reference() -> Vec<Reference<'static>> {
    REFERENCE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            assert_eq!(columns.len(), 4, "{line}");
            Reference {
                name: columns[0],
                falco_type: columns[1],
                argument: columns[2],
                source: columns[3],
            }
        })
        .collect()
}

/// The engine's value type for a libsinsp type.
fn engine_type(falco_type: &str) -> FieldType {
    match falco_type {
        "CHARBUF" | "BYTEBUF" | "DYNAMIC" => FieldType::Str,
        "BOOL" => FieldType::Bool,
        "DOUBLE" => FieldType::Double,
        "IPADDR" => FieldType::Ip,
        "IPNET" => FieldType::IpNet,
        "PORT" | "INT16" | "INT32" | "INT64" | "UINT32" | "UINT64" | "RELTIME" | "ABSTIME" => {
            FieldType::Int
        }
        other => panic!("unknown libsinsp type {other}"),
    }
}

/// The argument's form as the reference writes it.
fn reference_form(arg: ArgSpec) -> &'static str {
    match arg {
        ArgSpec::None => "-",
        ArgSpec::OptionalIndex => "index?",
        ArgSpec::Key | ArgSpec::IndexOrGlob => "key",
        ArgSpec::OptionalKey => "key?",
    }
}

#[test]
fn every_reference_field_is_known_with_its_type_and_argument() {
    let mut wrong = Vec::new();
    for field in reference() {
        let Some((def, _)) = lookup(field.name) else {
            wrong.push(format!("{}: unknown", field.name));
            continue;
        };
        if def.ty != engine_type(field.falco_type) {
            wrong.push(format!(
                "{}: {:?}, not {}",
                field.name, def.ty, field.falco_type
            ));
        }
        if reference_form(def.arg) != field.argument {
            wrong.push(format!(
                "{}: {:?}, not {}",
                field.name, def.arg, field.argument
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn render_document() -> String {
    let fields = reference();
    let mut rows = String::new();
    let (mut derived, mut absent) = (0, 0);
    for field in &fields {
        let (def, _) = lookup(field.name).expect("known");
        let here = if def.kinds == KindSet::NONE {
            absent += 1;
            "absent"
        } else {
            derived += 1;
            "yes"
        };
        let argument = match field.argument {
            "-" => "",
            other => other,
        };
        writeln!(
            rows,
            "| `{}` | {} | {} | {} | {} | {} |",
            field.name,
            field.falco_type,
            argument,
            field.source,
            here,
            def.desc.replace('|', "\\|")
        )
        .unwrap();
    }
    format!(
        "# Falco field coverage\n\n\
         Every field of Falco's syscall source, as its reference lists them (the supported-fields \
         page, \"docs\") and as libsinsp's filterchecks accept them beyond that page (\"libsinsp\": \
         table-only fields and the deprecated Kubernetes API server and Mesos classes), and what \
         Palisade's rules engine does with each. All {total} load: a rule using any of them is \
         valid. {derived} are derived from the sensor's events (\"yes\"; the description says \
         when a value can still be absent, as in Falco); {absent} are never supplied on this \
         sensor (\"absent\": every check on them is false, as on an absent field in Falco) and \
         the description says why.\n\n\
         Generated from the field table (`crates/rules/src/fields.rs` and `fields/`) and the \
         reference list (`crates/rules/tests/data/falco_fields.tsv`) by the test \
         `fields::falco_reference::the_coverage_document_is_current`; \
         `PALISADE_BLESS=1 cargo nextest run -p palisade-rules the_coverage_document` rewrites \
         it.\n\n\
         | field | libsinsp type | argument | source | here | description |\n\
         |---|---|---|---|---|---|\n{rows}",
        total = fields.len(),
    )
}

#[test]
fn the_coverage_document_is_current() {
    let expected = render_document();
    if std::env::var_os("PALISADE_BLESS").is_some() {
        std::fs::write(DOC_PATH, &expected).unwrap();
    }
    let committed = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    assert!(
        committed == expected,
        "docs/falco-fields.md is out of date: run PALISADE_BLESS=1 cargo nextest run -p \
         palisade-rules the_coverage_document"
    );
}

const EVERY_FIELD_RULES: &str = include_str!("../../tests/data/every_falco_field.yaml");

/// The rules file `palisade rules validate` is tested on uses every reference field, and it
/// loads without an error or a warning.
#[test]
fn the_rules_file_using_every_field_loads_and_covers_the_list() {
    for field in reference() {
        assert!(
            EVERY_FIELD_RULES.contains(&format!(" {} exists", field.name))
                || EVERY_FIELD_RULES.contains(&format!(" {}.", field.name))
                || EVERY_FIELD_RULES.contains(&format!(" {}[", field.name)),
            "{} is not used",
            field.name
        );
    }
    let rule_set = crate::RuleSet::load(&[crate::RuleSource {
        name: "every_falco_field.yaml".into(),
        text: EVERY_FIELD_RULES.into(),
    }]);
    assert_eq!(rule_set.errors(), &[]);
    assert_eq!(rule_set.warnings(), &[]);
}
