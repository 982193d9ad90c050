//! Loading: exceptions, overrides, appends, file order, and diagnostics with positions.

use palisade_rules::{ErrorKind, WarningKind};

use crate::support::{check_load, check_rule, ev, load, run, trim_lines};

fn exec(name: &str, exepath: &str, parent: &str) -> palisade_event::Event {
    ev(&format!(
        r#"{{"kind":"execve","process":{{"name":"{name}","exepath":"{exepath}","cwd":"/srv"}},
            "ancestors":[{{"name":"{parent}"}}]}}"#
    ))
}

const BASE: &str = r#"
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type = execve
- rule: Shell
  desc: a shell
  condition: spawned and proc.name in (shells)
  output: "shell %proc.name"
  priority: WARNING
  tags: [shell]
"#;

#[test]
fn exceptions_in_every_form() {
    let rules = r#"
- list: trusted_parents
  items: [cron, make]
- rule: Shell
  desc: a shell
  condition: evt.type = execve and proc.name in (bash, sh)
  output: "shell %proc.name from %proc.pname"
  priority: WARNING
  exceptions:
    - name: by_parent_and_path
      fields: [proc.pname, proc.exepath]
      comps: [=, startswith]
      values:
        - [sshd, /usr/bin/]
    - name: default_comps
      fields: [proc.pname, proc.cwd]
      values:
        - [nginx, /srv]
    - name: parent_lists
      fields: [proc.pname]
      comps: [in]
      values:
        - [trusted_parents]
        - [[systemd, "init x"]]
    - name: single_field
      fields: proc.pname
      values: [tmux, screen]
    - name: single_field_comp
      fields: proc.exepath
      comps: pmatch
      values: [/opt/tools]
"#;
    check_rule(
        rules,
        &[
            exec("bash", "/usr/bin/bash", "sshd"),
            exec("bash", "/bin/bash", "sshd"),
            exec("sh", "/bin/sh", "nginx"),
            exec("sh", "/bin/sh", "cron"),
            exec("sh", "/bin/sh", "init x"),
            exec("sh", "/bin/sh", "screen"),
            exec("sh", "/opt/tools/sh", "x"),
            exec("sh", "/opt/toolsx/sh", "x"),
        ],
        "0: -
         1: Shell: shell bash from sshd
         2: -
         3: -
         4: -
         5: -
         6: -
         7: Shell: shell sh from x",
    );
}

#[test]
fn exception_errors_name_the_rule_and_position() {
    check_load(
        &[r#"- rule: A
  desc: x
  condition: evt.type = execve
  output: x
  priority: INFO
  exceptions:
    - name: mismatch
      fields: [proc.name, proc.pname]
      comps: [=]
      values: [[a, b]]
- rule: B
  desc: x
  condition: evt.type = execve
  output: x
  priority: INFO
  exceptions:
    - name: bad_field
      fields: [proc.nope]
      values: [[a]]
- rule: C
  desc: x
  condition: evt.type = execve
  output: x
  priority: INFO
  exceptions:
    - name: bad_comp
      fields: [proc.name]
      comps: [like]
      values: [[a]]
"#],
        "error a.yaml:9:14 rule 'A': exception 'mismatch': fields and comps lists must have equal length
         error a.yaml:18:16 rule 'B': unknown field 'proc.nope'
         error a.yaml:28:15 rule 'C': exception 'bad_comp': 'like' is not a supported comparison operator",
    );
}

#[test]
fn overrides_append_and_replace() {
    let local = r#"
- list: shells
  items: [zsh]
  override:
    items: append
- macro: spawned
  condition: or evt.type = execveat
  override:
    condition: append
- rule: Shell
  condition: and proc.pname != cron
  output: "(parent %proc.pname)"
  tags: [extra]
  exceptions:
    - name: by_cwd
      fields: [proc.cwd]
      values: [[/tmp]]
  override:
    condition: append
    output: append
    tags: append
    exceptions: append
- rule: Shell
  priority: ERROR
  override:
    priority: replace
"#;
    let rule_set = load(&[BASE, local]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    let shell = &rule_set.rules()[0];
    assert_eq!(shell.tags, ["shell", "extra"]);
    assert_eq!(shell.priority.to_string(), "Error");
    assert_eq!(shell.output, "shell %proc.name (parent %proc.pname)");
    let events = [
        exec("zsh", "/bin/zsh", "sshd"),
        ev(r#"{"kind":"execveat","process":{"name":"bash"},"ancestors":[{"name":"x"}]}"#),
        exec("bash", "/bin/bash", "cron"),
        ev(r#"{"kind":"execve","process":{"name":"sh","cwd":"/tmp"}}"#),
    ];
    assert_eq!(
        run(&[BASE, local], &Default::default(), &events),
        trim_lines(
            "0: Shell: shell zsh (parent sshd)
             1: Shell: shell bash (parent x)
             2: -
             3: -"
        )
    );

    let replaced = r#"
- rule: Shell
  condition: evt.type = execve and proc.name = ls
  enabled: false
  override:
    condition: replace
    enabled: replace
"#;
    let rule_set = load(&[BASE, replaced]);
    assert!(!rule_set.rules()[0].enabled);
    assert_eq!(rule_set.n_active_rules(), 0);
    assert_eq!(
        rule_set.rules()[0].condition,
        "evt.type = execve and proc.name = ls"
    );
}

#[test]
fn every_overridable_key_is_appended_or_replaced() {
    // Appends: the description (the other appendable keys are in
    // overrides_append_and_replace).
    let appended = "- rule: Shell\n  desc: (and its children)\n  override:\n    desc: append\n";
    let rule_set = load(&[BASE, appended]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    assert_eq!(rule_set.rules()[0].desc, "a shell (and its children)");

    // Replacements of every key Falco lets a rule, a macro and a list replace.
    let local = r#"
- list: shells
  items: [zsh]
  override:
    items: replace
- macro: spawned
  condition: evt.type = execveat
  override:
    condition: replace
- rule: Shell
  exceptions:
    - name: by_parent
      fields: [proc.pname]
      values: [[sshd]]
  override:
    exceptions: append
- rule: Shell
  desc: a replaced description
  output: "replaced %proc.name"
  tags: [replaced]
  exceptions:
    - name: by_cwd
      fields: [proc.cwd]
      values: [[/tmp]]
  warn_evttypes: false
  skip-if-unknown-filter: true
  override:
    desc: replace
    output: replace
    tags: replace
    exceptions: replace
    warn_evttypes: replace
    skip-if-unknown-filter: replace
"#;
    let rule_set = load(&[BASE, local]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    let shell = &rule_set.rules()[0];
    assert_eq!(shell.desc, "a replaced description");
    assert_eq!(shell.tags, ["replaced"]);
    assert_eq!(shell.output, "replaced %proc.name");
    let events = [
        // The list and the macro were replaced: zsh by execveat only.
        ev(
            r#"{"kind":"execveat","process":{"name":"zsh","cwd":"/srv"},"ancestors":[{"name":"sshd"}]}"#,
        ),
        ev(r#"{"kind":"execve","process":{"name":"zsh","cwd":"/srv"}}"#),
        ev(r#"{"kind":"execveat","process":{"name":"bash","cwd":"/srv"}}"#),
        // The exceptions were replaced: by_cwd holds, by_parent is gone (event 0 fired).
        ev(r#"{"kind":"execveat","process":{"name":"zsh","cwd":"/tmp"}}"#),
    ];
    assert_eq!(
        run(&[BASE, local], &Default::default(), &events),
        trim_lines(
            "0: Shell: replaced zsh
             1: -
             2: -
             3: -"
        )
    );
    // skip-if-unknown-filter, now true, makes a later unknown field a warning, not an error.
    let unknown = "- rule: Shell\n  condition: and proc.future_field = 1\n  override:\n    condition: append\n";
    let rule_set = load(&[BASE, local, unknown]);
    assert!(rule_set.errors().is_empty(), "{:?}", rule_set.errors());
    assert!(
        rule_set.warnings().iter().any(|warning| warning
            .to_string()
            .contains("rule skipped (skip-if-unknown-filter)")),
        "{:?}",
        rule_set.warnings()
    );
    assert_eq!(load(&[BASE, unknown]).errors().len(), 1);
}

#[test]
fn legacy_append_and_enabled_items() {
    let local = r#"
- list: shells
  items: [zsh]
  append: true
- rule: Shell
  condition: and not proc.pname = cron
  append: true
- rule: Shell
  enabled: false
- rule: Shell
  enabled: true
"#;
    let events = [
        exec("zsh", "/bin/zsh", "sshd"),
        exec("zsh", "/bin/zsh", "cron"),
    ];
    assert_eq!(
        run(&[BASE, local], &Default::default(), &events),
        "0: Shell: shell zsh\n1: -"
    );
    let rule_set = load(&[BASE, local]);
    let kinds: Vec<WarningKind> = rule_set.warnings().iter().map(|w| w.kind()).collect();
    assert_eq!(kinds, [WarningKind::Deprecated; 4]);
}

#[test]
fn later_definitions_replace_earlier_ones() {
    let local = r#"
- list: shells
  items: [fish]
- rule: Shell
  desc: replaced
  condition: spawned and proc.name in (shells) and proc.pid = 1
  output: "fish %proc.pid"
  priority: INFO
"#;
    let events = [
        ev(r#"{"kind":"execve","process":{"name":"fish","pid":1}}"#),
        ev(r#"{"kind":"execve","process":{"name":"bash","pid":1}}"#),
    ];
    assert_eq!(
        run(&[BASE, local], &Default::default(), &events),
        "0: Shell: fish 1\n1: -"
    );
    let rule_set = load(&[BASE, local]);
    assert_eq!((rule_set.rules().len(), rule_set.n_lists()), (1, 1));
}

#[test]
fn errors_carry_positions_and_others_still_load() {
    let text = r#"- macro: spawned
  condition: evt.type = execve
- macro: later_user
  condition: spawned and defined_later
- macro: defined_later
  condition: proc.name = x
- rule: Unknown field
  desc: x
  condition: >
    spawned and
      proc.nme = bash
  output: x
  priority: INFO
- rule: Undefined macro
  desc: x
  condition: "spawned and nope"
  output: x
  priority: INFO
- rule: Undefined list
  desc: x
  condition: spawned and proc.name in nolist
  output: x
  priority: INFO
- rule: Syntax
  desc: x
  condition: spawned and (proc.name = a
  output: x
  priority: INFO
- rule: Bad output
  desc: x
  condition: spawned
  output: "ok %proc.name bad %proc.nope"
  priority: INFO
- rule: Bad priority
  desc: x
  condition: spawned
  output: x
  priority: LOUD
- rule: Missing output
  desc: x
  condition: spawned
  priority: INFO
- rule: Bad value
  desc: x
  condition: spawned and proc.pid = abc
  output: x
  priority: INFO
- rule: Bad regex
  desc: x
  condition: spawned and proc.name regex "("
  output: x
  priority: INFO
- rule: Skipped
  desc: x
  condition: spawned and proc.future_field = 1
  output: x
  priority: INFO
  skip-if-unknown-filter: true
- rule: Good
  desc: x
  condition: spawned and proc.name = ok
  output: x
  priority: INFO
  unknown_key: 1
- rule: Other source
  desc: x
  condition: ct.name = CreateUser
  output: x
  priority: INFO
  source: aws_cloudtrail
- list: orphan
  items: []
- rule: Append to nothing
  condition: and x
  append: true
"#;
    check_load(
        &[text],
        "error a.yaml:4:26 macro 'later_user': undefined macro 'defined_later' used in filter
         error a.yaml:11:7 rule 'Unknown field': unknown field 'proc.nme'
         error a.yaml:16:27 rule 'Undefined macro': undefined macro 'nope' used in filter
         error a.yaml:21:39 rule 'Undefined list': undefined list 'nolist'
         error a.yaml:26:40 rule 'Syntax': expected ')'
         error a.yaml:32:31 rule 'Bad output': unknown field 'proc.nope' in output
         error a.yaml:38:13 rule 'Bad priority': invalid priority 'LOUD'
         error a.yaml:39:3 rule 'Missing output': item has no mapping for key 'output'
         error a.yaml:45:37 rule 'Bad value': value 'abc' is not valid for field 'proc.pid'
         error a.yaml:50:42 rule 'Bad regex': invalid regex '(': unclosed group
         error a.yaml:73:3 rule 'Append to nothing': rule has 'append' but no rule by that name already exists
         warning a.yaml:3:3 macro 'later_user': macro not referred to by any other rule/macro
         warning a.yaml:5:3 macro 'defined_later': macro not referred to by any other rule/macro
         warning a.yaml:55:26 rule 'Skipped': unknown field 'proc.future_field'; rule skipped (skip-if-unknown-filter)
         warning a.yaml:64:3 rule 'Good': unknown key 'unknown_key'
         warning a.yaml:65:3 rule 'Other source': source 'aws_cloudtrail' is not evaluated by this engine; rule skipped
         warning a.yaml:71:3 list 'orphan': list not referred to by any other rule/macro
         warning a.yaml:75:11 rule 'Append to nothing': 'append' is deprecated; use 'override' instead",
    );
    let rule_set = load(&[text]);
    let kinds: Vec<ErrorKind> = rule_set.errors().iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            ErrorKind::UnknownMacro,
            ErrorKind::UnknownField,
            ErrorKind::UnknownMacro,
            ErrorKind::UnknownList,
            ErrorKind::Syntax,
            ErrorKind::UnknownField,
            ErrorKind::Schema,
            ErrorKind::Schema,
            ErrorKind::InvalidOperand,
            ErrorKind::InvalidOperand,
            ErrorKind::UnknownItem,
        ]
    );
    // The broken items are reported; "Good" still runs.
    assert_eq!(rule_set.n_active_rules(), 1);
}

#[test]
fn engine_version_and_yaml_errors() {
    // Falco's forms: a semantic version, or an integer N meaning 0.N.0; a pre-release or build
    // suffix is ignored; this engine is 0.59.0.
    for (version, loads) in [
        ("0.59.0", true),
        ("0.26.0", true),
        ("59", true),
        ("\"0.50.0-rc1\"", true),
        ("0.60.0", false),
        ("60", false),
        ("1.0.0", false),
    ] {
        let rule_set = load(&[&format!("- required_engine_version: {version}\n")]);
        assert_eq!(
            rule_set.errors().is_empty(),
            loads,
            "{version}: {:?}",
            rule_set.errors()
        );
        if !loads {
            assert_eq!(rule_set.errors()[0].kind(), ErrorKind::EngineVersion);
        }
    }
    check_load(
        &["- required_engine_version: latest\n"],
        "error a.yaml:1:28 a.yaml: cannot parse engine version 'latest'; expected x.y.z",
    );
    check_load(
        &["- required_engine_version: 0.99.0\n", "- required_engine_version: 10\n", "- rule: [\n"],
        "error a.yaml:1:28 a.yaml: rules require engine version 0.99.0, but this engine is 0.59.0
         error c.yaml:2:1 c.yaml: invalid YAML: while parsing a node, did not find expected node content",
    );
    check_load(
        &[
            "- required_plugin_versions:\n  - name: container\n    version: 0.4.0\n  - name: cloudtrail\n    version: 0.1.0\n",
        ],
        "warning a.yaml:4:5 plugin 'cloudtrail': required plugin is not provided; rules for its source are skipped",
    );
}

#[test]
fn unused_macros_and_lists_warn_and_macros_see_only_earlier_macros() {
    check_load(
        &[r#"
- list: used_by_list
  items: [a]
- list: uses_list
  items: [used_by_list]
- macro: unused
  condition: proc.name in (uses_list)
- macro: loop_a
  condition: loop_b
- macro: loop_b
  condition: loop_a
"#],
        "error a.yaml:9:14 macro 'loop_a': undefined macro 'loop_b' used in filter
         warning a.yaml:6:3 macro 'unused': macro not referred to by any other rule/macro
         warning a.yaml:10:3 macro 'loop_b': macro not referred to by any other rule/macro",
    );
}

#[test]
fn falco_validations_of_exceptions_appends_and_sources() {
    check_load(
        &[r#"- rule: A
  desc: x
  condition: evt.type = execve
  output: "%proc.name"
  priority: INFO
  exceptions:
    - name: single
      fields: proc.name
      comps: "="
      values: [a]
    - name: pair
      fields: [proc.name, proc.pname]
      values: [[a, b]]
- rule: A
  exceptions:
    - name: pair
      fields: [proc.name]
      values: [[c]]
  override:
    exceptions: append
- rule: A
  exceptions:
    - name: fresh
      fields: [proc.cwd]
  override:
    exceptions: append
- rule: A
  desc: y
  append: true
- rule: A
  desc: x
  condition: evt.type = execve
  output: x
  priority: INFO
  source: k8s_audit
- rule: B
  desc: x
  condition: evt.type = container and proc.name = x
  output: "%proc.name %container.info"
  priority: INFO
"#],
        "error a.yaml:9:14 rule 'A': exception 'single': when fields is a single value, comps must be one of (in, pmatch, intersects)
         error a.yaml:14:3 rule 'A': exception 'pair': can not append fields or comps to an existing exception, only values
         error a.yaml:21:3 rule 'A': exception 'fresh' must have values property with a list of values
         error a.yaml:27:3 rule 'A': appended rule must have exceptions or condition property
         error a.yaml:30:3 rule 'A': rule has been re-defined with a different source
         warning a.yaml:23:7 rule 'A': overriding/appending exception with no values
         warning a.yaml:29:11 rule 'A': 'append' is deprecated; use 'override' instead
         warning a.yaml:36:3 rule 'B': %container.info is deprecated; it prints nothing (container fields belong in the output itself)
         warning a.yaml:36:3 rule 'B': rule's event types are not produced by this engine's sensor; it never fires",
    );
}

#[test]
fn hostile_nesting_is_an_error_not_a_crash() {
    // A chain of macros, each wrapping the previous one in parentheses.
    let mut text = String::from("- macro: m0\n  condition: proc.name = x\n");
    for index in 1..2000 {
        text.push_str(&format!(
            "- macro: m{index}\n  condition: (((m{})))\n",
            index - 1
        ));
    }
    text.push_str(
        "- rule: Deep\n  desc: x\n  condition: evt.type = execve and m1999\n  output: x\n  priority: INFO\n",
    );
    let rule_set = load(&[&text]);
    let messages: Vec<&str> = rule_set.errors().iter().map(|e| e.message()).collect();
    assert_eq!(
        messages,
        ["condition is nested too deeply after macro expansion"]
    );
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    let deep_yaml = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let rule_set = load(&[&deep_yaml]);
    assert_eq!(rule_set.rules().len(), 0);
    assert_eq!(rule_set.errors().len(), 1, "{:?}", rule_set.errors());
}

#[test]
fn macro_cycles_through_appends_are_errors() {
    let rule_set = load(&[r#"
- macro: first
  condition: proc.name = a
- macro: second
  condition: first or proc.name = b
- macro: first
  condition: or second
  override:
    condition: append
- rule: Loop
  desc: x
  condition: evt.type = execve and first
  output: x
  priority: INFO
"#]);
    let errors: Vec<(ErrorKind, String)> = rule_set
        .errors()
        .iter()
        .map(|e| (e.kind(), format!("{} {}", e.location(), e.message())))
        .collect();
    assert_eq!(
        errors,
        [(
            ErrorKind::MacroCycle,
            "a.yaml:5:14 macro 'first' refers to itself".to_owned()
        )]
    );
}

/// Forms found in Falco's own incubating and sandbox rules files, which load there: a flow
/// list closed at its key's indentation after a quoted item (yaml-cpp accepts it), a macro
/// whose `condition` key comes before `macro`, `exists` right before `)`, and `%proc.env`
/// without a variable name.
#[test]
fn forms_from_falcos_incubating_and_sandbox_files_load() {
    let rules = r#"
- list: https_miner_domains
  items: [
    "ca.minexmr.com",
    "pool.minexmr.com"
  ]
- condition: (proc.name in (https_miner_domains))
  macro: miner_named
- macro: allowed_containers
  condition: (container.id exists)
- rule: Miner in an unlisted container
  desc: x
  condition: evt.type = execve and miner_named and not allowed_containers and proc.env icontains HTTP_PROXY
  output: "miner %proc.name (env=%proc.env)"
  priority: WARNING
"#;
    check_load(&[rules], "");
    let events = [
        exec("pool.minexmr.com", "/usr/bin/x", "sh"),
        exec("ca.minexmr.com", "/usr/bin/x", "sh"),
        exec("xmrig", "/usr/bin/x", "sh"),
    ];
    // The sensor does not report environments, so proc.env is absent and the rule cannot
    // match; what matters here is that the file loads as it does in Falco.
    assert_eq!(
        run(&[rules], &Default::default(), &events),
        "0: -\n1: -\n2: -"
    );
    // Two closing brackets at the key's indentation, one after a nested quoted list.
    check_load(
        &[
            "- list: a\n  items: [\n    \"x\",\n    \"y\"\n  ]\n- list: b\n  items: [a,\n    \"z\"\n  ]\n- rule: R\n  desc: d\n  condition: evt.type = execve and proc.name in (b)\n  output: o\n  priority: INFO\n",
        ],
        "",
    );
    // libyaml, like yaml-cpp, even takes the bracket at column 0.
    check_load(
        &[
            "- list: b\n  items: [\n    \"z\"\n]\n- rule: R\n  desc: d\n  condition: evt.type = execve and proc.name in (b)\n  output: o\n  priority: INFO\n",
        ],
        "",
    );
}

/// Files that are not rules files fail with the reason, before being read whole: one over
/// the size limit, one that is not UTF-8; the files after them still load.
#[test]
fn oversized_and_binary_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(palisade_rules::MAX_RULES_FILE_BYTES + 1)
        .unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x2d]).unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, BASE).unwrap();
    let rule_set = palisade_rules::RuleSet::load_files(&[&huge, &binary, &good]);
    let messages: Vec<(ErrorKind, &str)> = rule_set
        .errors()
        .iter()
        .map(|error| (error.kind(), error.message()))
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0].0, ErrorKind::Io);
    assert_eq!(
        messages[0].1,
        "the file is larger than 8 MiB, the limit for a rules file"
    );
    assert!(messages[1].1.contains("not UTF-8"), "{}", messages[1].1);
    assert_eq!(rule_set.rules().len(), 1);
}
