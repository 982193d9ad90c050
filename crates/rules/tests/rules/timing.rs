//! The `evt` fields that relate an event's time to other times: `evt.around[T]=D`, libsinsp's
//! window around a timestamp, and `evt.deltatime`, the time since the previous event that
//! the same check read (libsinsp keeps it in each filter check: each rule's condition, each
//! output placeholder).

use crate::support::{check_fires, check_rule, diagnostics, ev, load, rule};

/// An exec `ms` milliseconds after 1700000000 s since the epoch by a process named `name`.
fn exec_at(ms: u64, name: &str) -> palisade_event::Event {
    let timestamp_ns = (1_700_000_000_000 + ms) * 1_000_000;
    ev(&format!(
        r#"{{"kind":"execve","timestamp_ns":{timestamp_ns},"process":{{"pid":7,"tid":7,"name":"{name}"}}}}"#
    ))
}

const EXEC: &str = r#"{"kind":"execve","timestamp_ns":1700000002500000000,
  "process":{"pid":42,"tid":42,"name":"miner"}}"#;

#[test]
fn around_accepts_the_events_within_the_window_ends_included() {
    check_fires(&[
        // 500 ms before and after the event, exactly: both ends are in the window.
        ("evt.around[1700000002000000000] = 500", EXEC, true),
        ("evt.around[1700000003000000000]=500", EXEC, true),
        ("evt.around[1700000002000000000] = 499", EXEC, false),
        ("evt.around[1700000003000000001] = 500", EXEC, false),
        ("evt.around[1700000002500000000] = 0", EXEC, true),
        // A window reaching past the epoch or past the last representable time.
        ("evt.around[1] = 18446744073709", EXEC, true),
        ("evt.around[18446744073709551615] = 1", EXEC, false),
        ("not evt.around[1600000000000000000] = 1000", EXEC, true),
    ]);
}

#[test]
fn around_takes_only_equals_a_time_and_milliseconds() {
    let refused = [
        ("evt.around[1700000002000000000] != 500", "not '!='"),
        ("evt.around[1700000002000000000] > 500", "not '>'"),
        ("evt.around[1700000002000000000] in (500, 600)", "not 'in'"),
        ("evt.around[yesterday] = 500", "not 'yesterday'"),
        ("evt.around[1700000002000000000] = 0.5", "not '0.5'"),
        ("evt.around[1700000002000000000] = -1", "not '-1'"),
        (
            "evt.around[1700000002000000000] = evt.rawtime",
            "milliseconds",
        ),
        ("evt.around = 500", "needs an argument"),
    ];
    for (condition, message) in refused {
        let rule_set = load(&[&rule(condition)]);
        let errors = diagnostics(&rule_set);
        assert!(
            errors.starts_with("error") && errors.contains(message),
            "{condition}: {errors}"
        );
    }
}

#[test]
fn around_is_a_filter_field_that_outputs_print_as_absent() {
    check_rule(
        r#"
- rule: R
  desc: d
  condition: evt.around[1700000002000000000] = 1000
  output: "%proc.name %evt.around[1700000002000000000] %evt.rawtime"
  priority: WARNING
"#,
        &[ev(EXEC)],
        "0: R: miner <NA> 1700000002500000000",
    );
}

#[test]
fn deltatime_counts_from_the_last_event_the_same_check_read() {
    // Rule A's check reads every exec; rule B's only those of b (its name test comes first,
    // as written), and the macro they share is each rule's own, as in libsinsp. Each
    // output placeholder counts from the rule's previous alert.
    let rules = r#"
- macro: within_a_second
  condition: proc.pid > 0 and evt.deltatime < 1000000000
- rule: A
  desc: d
  condition: evt.type = execve and within_a_second
  output: "A %proc.name %evt.deltatime"
  priority: WARNING
- rule: B
  desc: d
  condition: evt.type = execve and proc.name = b and within_a_second
  output: "B %proc.name %evt.deltatime"
  priority: WARNING
"#;
    let events = [
        exec_at(10000, "a"),
        exec_at(10500, "b"),
        exec_at(11400, "a"),
        // A's check read the exec at 11.4 (0.6 s ago); B's last read the one at 10.5.
        exec_at(12000, "b"),
    ];
    check_rule(
        rules,
        &events,
        "0: A: A a 0
         1: A: A b 500000000
         1: B: B b 0
         2: A: A a 900000000
         3: A: A b 600000000",
    );
}

#[test]
fn deltatime_seconds_and_nanoseconds_parts() {
    let rules = r#"
- rule: R
  desc: d
  condition: evt.type = execve and evt.deltatime.s < 3
  output: "%evt.deltatime.s %evt.deltatime.ns %evt.deltatime"
  priority: WARNING
"#;
    let events = [
        exec_at(10000, "a"),
        exec_at(12250, "a"),
        // 3.5 s after the previous exec: the condition's check fails, the output's
        // placeholders do not read this event.
        exec_at(15750, "a"),
        exec_at(16000, "a"),
        // Older than the previous event (records of two CPUs): 0, not a wrapped difference.
        exec_at(15000, "a"),
    ];
    check_rule(
        rules,
        &events,
        "0: R: 0 0 0
         1: R: 2 250000000 2250000000
         2: -
         3: R: 3 750000000 3750000000
         4: R: 0 0 0",
    );
}
