//! `proc.env` and `proc.aenv` with libsinsp's semantics (its `spawn_process` unit test's
//! environments, restated as our events), and the engine telling a sensor whether any rule
//! reads the environment at all.

use palisade_rules::{Engine, EngineConfig};

use crate::support::{check_fires, ev, load, rule, run};

/// An exec whose process has SHELL, SHELL_NEW, PWD and HOME set, and whose parent has
/// TEST_ENV_PARENT_LINEAGE and another HOME; the grandparent's environment was not captured.
const EXEC: &str = r#"{"kind":"execve","process":{"name":"test-exe",
  "env":["SHELL=/bin/bash","SHELL_NEW=/bin/sh","PWD=/home/user","HOME=/home/user"]},
  "ancestors":[
    {"pid":10,"name":"bash","env":["TEST_ENV_PARENT_LINEAGE=secret","HOME=/home/user/parent"]},
    {"pid":1,"name":"init"}]}"#;

/// The same exec recorded without any environment (no rule asked for it).
const EXEC_WITHOUT_ENV: &str = r#"{"kind":"execve","process":{"name":"test-exe"},
  "ancestors":[{"pid":1,"name":"init"}]}"#;

#[test]
fn proc_env_is_the_whole_environment_or_one_variable() {
    check_fires(&[
        (
            "proc.env = 'SHELL=/bin/bash SHELL_NEW=/bin/sh PWD=/home/user HOME=/home/user'",
            EXEC,
            true,
        ),
        ("proc.env[HOME] = /home/user", EXEC, true),
        ("proc.env[SHELL] = /bin/bash", EXEC, true),
        // A name that is a prefix of another's is not confused with it.
        ("proc.env[SHELL_NEW] = /bin/sh", EXEC, true),
        ("proc.env[SHELL_N] = ''", EXEC, true),
        ("proc.env contains 'PWD=/home/user'", EXEC, true),
        // Unset: empty, as in Falco, so `!=` holds.
        ("proc.env[NOT_SET] = ''", EXEC, true),
        ("proc.env[NOT_SET] != x", EXEC, true),
        // Nothing captured: absent, so every check fails.
        ("proc.env[HOME] exists", EXEC_WITHOUT_ENV, false),
        ("proc.env[HOME] != x", EXEC_WITHOUT_ENV, false),
        ("proc.env exists", EXEC_WITHOUT_ENV, false),
    ]);
}

#[test]
fn proc_aenv_searches_the_ancestors() {
    check_fires(&[
        // Generation 0 is the process, 1 the parent.
        (
            "proc.aenv[0] = 'SHELL=/bin/bash SHELL_NEW=/bin/sh PWD=/home/user HOME=/home/user'",
            EXEC,
            true,
        ),
        (
            "proc.aenv[1] = 'TEST_ENV_PARENT_LINEAGE=secret HOME=/home/user/parent'",
            EXEC,
            true,
        ),
        ("proc.aenv[2] exists", EXEC, false),
        // By name: the nearest ancestor's value, not the process's own.
        ("proc.aenv[HOME] = /home/user/parent", EXEC, true),
        ("proc.aenv[TEST_ENV_PARENT_LINEAGE] = secret", EXEC, true),
        ("proc.aenv[SHELL] = ''", EXEC, true),
        // Without argument: any ancestor's environment.
        (
            "proc.aenv contains 'TEST_ENV_PARENT_LINEAGE=secret'",
            EXEC,
            true,
        ),
        ("proc.aenv contains SHELL_NEW", EXEC, false),
        ("proc.aenv exists", EXEC_WITHOUT_ENV, false),
        ("proc.aenv[HOME] exists", EXEC_WITHOUT_ENV, false),
    ]);
}

#[test]
fn outputs_show_the_variables_a_rule_names() {
    let rules = "- rule: Test variable\n  desc: d\n  condition: evt.type = execve and \
                 proc.env[PWD] = /home/user\n  output: \"home=%proc.env[HOME] \
                 parent=%proc.aenv[HOME]\"\n  priority: WARNING\n";
    let out = run(&[rules], &EngineConfig::default(), &[ev(EXEC)]);
    assert!(
        out.contains("home=/home/user parent=/home/user/parent"),
        "{out}"
    );
}

#[test]
fn the_engine_says_whether_a_rule_reads_the_environment() {
    let engine = |rules: &[&str]| Engine::new(load(rules), &EngineConfig::default());
    let plain = engine(&[&rule("proc.name = sh")]);
    assert!(!plain.reads_field("proc.env") && !plain.reads_field("proc.aenv"));
    let in_condition = engine(&[&rule("proc.env[PALISADE_TEST] = x")]);
    assert!(in_condition.reads_field("proc.env"));
    assert!(!in_condition.reads_field("proc.aenv"));
    assert!(in_condition.reads_environment() && !plain.reads_environment());
    let in_output = engine(&["- rule: R\n  desc: d\n  condition: proc.name = sh\n  \
                              output: \"%proc.aenv[HOME]\"\n  priority: WARNING\n"]);
    assert!(in_output.reads_field("proc.aenv") && in_output.reads_environment());
    let disabled = engine(&["- rule: R\n  desc: d\n  condition: proc.env[X] = y\n  \
                             output: o\n  priority: WARNING\n  enabled: false\n"]);
    assert!(
        !disabled.reads_field("proc.env"),
        "a disabled rule needs nothing captured"
    );
}
