# Paired per-round comparison of monitored runs against unmonitored ones (gawk), for
# scripts/bench/sensor: input lines "round config wall_seconds cpu_seconds", one per run; the
# config "none" is the baseline every other config is compared with, round by round.
#
# A config run several times in a round stands for the round with the least time of each
# measure. For wall time and for the workload's CPU time, each config's rounds as median
# [min-max] and the sum of all its runs, then the median of its per-round ratios to the same round's "none" run as a
# slowdown, with a 95 % bootstrap interval (rounds resampled with replacement, B = 4000,
# fixed seed) and the range of the per-round ratios; and "palisade" against "auditd" as the
# ratio of their median slowdowns, bootstrapped over the same resampled rounds; with a config
# "previous" (an older build's sensor), "palisade" against it the same way. A shared
# machine's load changes between rounds, not within one round's few seconds, so pairing the
# runs of a round removes most of it; the interval says what is left.
#
# With -v target=P, whether the upper end of Palisade's interval is at most P per cent.
#
#   gawk -v target=5 -f scripts/bench/sensor-paired.awk runs

function median(values, n,    sorted, m) {
    m = asort(values, sorted)
    if (m == 0) return "nan"
    return (m % 2) ? sorted[(m + 1) / 2] : (sorted[m / 2] + sorted[m / 2 + 1]) / 2
}

# quantile q of values[1..n] (sorted copy, nearest rank)
function quantile(values, q,    sorted, m, k) {
    m = asort(values, sorted)
    k = int(q * m + 0.5)
    if (k < 1) k = 1
    if (k > m) k = m
    return sorted[k]
}

# out[i]: config's measure (1 wall, 2 cpu) over base's, in each round that ran both
function paired(config, base, measure, out,    i, r, n) {
    n = 0
    delete out
    for (i = 1; i <= n_rounds; i++) {
        r = round_list[i]
        if ((r, config) in value && (r, base) in value) {
            out[++n] = field(r, config, measure) / field(r, base, measure)
        }
    }
    return n
}

function field(r, config, measure,    parts) {
    split(value[r, config], parts, " ")
    return parts[measure]
}

function percent(ratio) { return sprintf("%+.1f %%", (ratio - 1) * 100) }

# Median slowdown of `ratios` and its bootstrap interval, into result["median"], ["lo"],
# ["hi"], ["min"], ["max"]; the resampled medians stay in boot[config] for joint ratios.
function summarize(config, ratios, n, result,    b, j, sample, medians, copy) {
    for (j = 1; j <= n; j++) copy[j] = ratios[j]
    result["median"] = median(copy, n)
    result["min"] = quantile(ratios, 0)
    result["max"] = quantile(ratios, 1)
    for (b = 1; b <= B; b++) {
        delete sample
        for (j = 1; j <= n; j++) sample[j] = ratios[pick[b, j]]
        medians[b] = median(sample, n)
        boot[config, b] = medians[b]
    }
    result["lo"] = quantile(medians, 0.025)
    result["hi"] = quantile(medians, 0.975)
}

{
    # A config's repeats within a round: the least time of each measure stands for the
    # round (other work on the machine only ever adds time); the sums count every run.
    if (($1, $2) in value) {
        split(value[$1, $2], kept, " ")
        value[$1, $2] = ($3 < kept[1] ? $3 : kept[1]) " " ($4 < kept[2] ? $4 : kept[2])
    } else {
        value[$1, $2] = $3 " " $4
    }
    total[$2, 1] += $3
    total[$2, 2] += $4
    n_runs[$2]++
    if (!($1 in round_seen)) { round_seen[$1] = 1; round_list[++n_rounds] = $1 }
    if (!($2 in config_seen)) { config_seen[$2] = 1; if ($2 != "none") others[++n_others] = $2 }
}

END {
    # The baseline first: the others' sums are compared with its sum.
    config_list[n_configs = 1] = "none"
    for (i = 1; i <= n_others; i++) config_list[++n_configs] = others[i]
    B = 4000
    srand(1)
    for (b = 1; b <= B; b++)
        for (j = 1; j <= n_rounds; j++) pick[b, j] = int(rand() * n_rounds) + 1
    split("wall CPU", measure_name, " ")
    for (measure = 1; measure <= 2; measure++) {
        delete slowdown
        for (c = 1; c <= n_configs; c++) {
            config = config_list[c]
            n = 0
            delete runs
            for (i = 1; i <= n_rounds; i++) {
                if ((round_list[i], config) in value) {
                    runs[++n] = field(round_list[i], config, measure)
                }
            }
            sums[config] = total[config, measure]
            line = sprintf("  %-4s %-9s %.3f s [%.3f-%.3f], sum of %d runs %.2f s",
                measure_name[measure], config, median(runs, n), quantile(runs, 0),
                quantile(runs, 1), n_runs[config], sums[config])
            n_paired = (config == "none") ? 0 : paired(config, "none", measure, ratios)
            if (n_paired > 0) {
                delete result
                summarize(config, ratios, n_paired, result)
                slowdown[config] = result["median"] - 1
                upper[config] = result["hi"] - 1
                line = line sprintf(": per round %s (95 %% CI %s .. %s; range %s .. %s), sums %s",
                    percent(result["median"]), percent(result["lo"]), percent(result["hi"]),
                    percent(result["min"]), percent(result["max"]),
                    percent(sums[config] / sums["none"]))
            }
            print line
        }
        if (("palisade", 1) in boot && ("auditd", 1) in boot) {
            delete joint
            k = 0
            for (b = 1; b <= B; b++) {
                if (boot["auditd", b] > 1) joint[++k] = (boot["palisade", b] - 1) / (boot["auditd", b] - 1)
            }
            relative = (slowdown["auditd"] > 0) ? sprintf("%.2f", slowdown["palisade"] / slowdown["auditd"]) : "n/a (auditd not slower)"
            interval = (k >= B * 0.95) ? sprintf("95 %% CI %.2f .. %.2f", quantile(joint, 0.025), quantile(joint, 0.975)) : "no interval: auditd not slower in every resample"
            verdict = ""
            if (target != "")
                verdict = sprintf("; palisade <= %s %%: %s (upper bound %s)", target,
                    (upper["palisade"] * 100 <= target) ? "yes" : "not shown",
                    percent(upper["palisade"] + 1))
            printf "  %-4s palisade/auditd slowdown %s (%s)%s\n", measure_name[measure],
                relative, interval, verdict
        }
        # Two builds of the sensor in the same rounds: the new one against the previous.
        if ("previous" in config_seen && "palisade" in config_seen) {
            n = paired("palisade", "previous", measure, ratios)
            delete result
            summarize("builds", ratios, n, result)
            printf "  %-4s palisade against the previous build: %s (95 %% CI %s .. %s; rounds %s .. %s)\n",
                measure_name[measure], percent(result["median"]), percent(result["lo"]),
                percent(result["hi"]), percent(result["min"]), percent(result["max"])
        }
        delete boot
    }
}
