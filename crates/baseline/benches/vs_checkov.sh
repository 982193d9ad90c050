#!/usr/bin/env bash
# Times `palisade baseline workloads` against `checkov --framework kubernetes` on the same
# generated manifests, in the same run, and prints the ratio.
#
# Usage: crates/baseline/benches/vs_checkov.sh
# Environment: N (objects, default 10000), PER_FILE (objects per file, default 10),
# CHECKOV (path to a checkov binary; default: a venv under /tmp, created with pip if missing),
# CARGO_TARGET_DIR (where the release palisade binary is built), PALISADE (a prebuilt binary
# instead of building one), KEEP_DIR (a directory to generate into and keep, for profiling),
# BIG_JSON_ITEMS (when set, also time palisade alone on one `kubectl get -o json` style List of
# that many Deployments).
set -euo pipefail

N=${N:-10000}
PER_FILE=${PER_FILE:-10}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

if [[ -z "${PALISADE:-}" ]]; then
    echo "building palisade (release)" >&2
    cargo build --quiet --release -p palisade --manifest-path "$REPO/Cargo.toml"
    PALISADE=$TARGET/release/palisade
fi

if [[ -z "${CHECKOV:-}" ]]; then
    VENV=/tmp/palisade-bench-checkov
    if [[ ! -x $VENV/bin/checkov ]]; then
        echo "installing checkov into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet checkov
    fi
    CHECKOV=$VENV/bin/checkov
fi

if [[ -n "${KEEP_DIR:-}" ]]; then
    DIR=$KEEP_DIR
    mkdir -p "$DIR"
else
    DIR=$(mktemp -d /tmp/palisade-bench.XXXXXX)
    trap 'rm -rf "$DIR"' EXIT
fi

# Six workload kinds in rotation; a third of them carry typical misconfigurations.
emit() {
    local i=$1
    local kind=$((i % 6)) bad=$((i % 3 == 0))
    local privileged=false host_network=false image="registry.example/app-$i:1.$((i % 50)).0"
    if ((bad)); then privileged=true; host_network=true; image="nginx"; fi
    local pod_spec="      hostNetwork: $host_network
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: app
        image: $image
        ports: [{containerPort: 8080}]
        env:
        - {name: LOG_LEVEL, value: info}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: 500m, memory: 256Mi}
        livenessProbe: {httpGet: {path: /healthz, port: 8080}}
        securityContext:
          privileged: $privileged
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}"
    echo "---"
    case $kind in
    0 | 1 | 2)
        local api=apps/v1 name=Deployment
        ((kind == 1)) && name=StatefulSet
        ((kind == 2)) && name=DaemonSet
        printf 'apiVersion: %s\nkind: %s\nmetadata:\n  name: w-%d\n  namespace: team-%d\nspec:\n  selector: {matchLabels: {app: w-%d}}\n  template:\n    metadata:\n      labels: {app: w-%d}\n    spec:\n%s\n' \
            "$api" "$name" "$i" $((i % 17)) "$i" "$i" "$pod_spec"
        ;;
    3)
        printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: w-%d\n  namespace: team-%d\nspec:\n%s\n' \
            "$i" $((i % 17)) "$(sed 's/^    //' <<< "$pod_spec")"
        ;;
    4)
        printf 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: w-%d\n  namespace: team-%d\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n%s\n' \
            "$i" $((i % 17)) "$pod_spec"
        ;;
    5)
        printf 'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: w-%d\n  namespace: team-%d\nspec:\n  schedule: "*/5 * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n%s\n' \
            "$i" $((i % 17)) "$(sed 's/^/    /' <<< "$pod_spec")"
        ;;
    esac
}

echo "generating $N objects in $((N / PER_FILE)) files under $DIR" >&2
for ((file_idx = 0; file_idx < N / PER_FILE; file_idx++)); do
    for ((object_idx = 0; object_idx < PER_FILE; object_idx++)); do
        emit $((file_idx * PER_FILE + object_idx))
    done > "$DIR/workloads-$file_idx.yaml"
done
BYTES=$(du -sb "$DIR" | cut -f1)

now() { date +%s.%N; }

# Exit code 1 means "findings", which both tools report here; anything else is a failure.
run_timed() {
    local label=$1
    shift
    local start end code=0
    start=$(now)
    /usr/bin/time -f "%M %U %S" -o "$DIR.$label.rss" "$@" > "$DIR.$label.out" 2> "$DIR.$label.err" || code=$?
    end=$(now)
    if ((code > 1)); then
        echo "$label failed with exit code $code:" >&2
        tail -5 "$DIR.$label.err" >&2
        exit 1
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'
}

PALISADE_SECONDS=$(run_timed palisade "$PALISADE" baseline workloads -f "$DIR" --output json)
PALISADE_OBJECTS=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["objects"]))' "$DIR.palisade.out")
CHECKOV_SECONDS=$(run_timed checkov "$CHECKOV" -d "$DIR" --framework kubernetes --quiet --skip-download)

echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:   $(nproc) cores, $(uname -r)"
echo "input:     $N objects ($PALISADE_OBJECTS checked by palisade), $((N / PER_FILE)) files, $BYTES bytes"
# The last line of each usage file is "<max RSS KiB> <user s> <system s>".
usage() { tail -n1 "$DIR.$1.rss" | awk -v what="$2" '{ if (what == "rss") print $1; else printf "%.2f", $2 + $3 }'; }
PALISADE_CPU=$(usage palisade cpu)
CHECKOV_CPU=$(usage checkov cpu)
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min load average after the runs)"
echo "palisade:  $PALISADE_SECONDS s wall, $PALISADE_CPU s CPU, max RSS $(usage palisade rss) KiB ($("$PALISADE" --version))"
echo "checkov:   $CHECKOV_SECONDS s wall, $CHECKOV_CPU s CPU, max RSS $(usage checkov rss) KiB (checkov $("$CHECKOV" --version))"
echo "checkov summary: $(grep -m1 -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' "$DIR.checkov.out" || echo 'none printed')"
awk -v p="$PALISADE_SECONDS" -v c="$CHECKOV_SECONDS" -v pc="$PALISADE_CPU" -v cc="$CHECKOV_CPU" \
    'BEGIN {
        cpu = pc > 0 ? sprintf("%.1fx", cc / pc) : "n/a (palisade CPU time below 0.01 s)"
        printf "ratio:     checkov / palisade = %.1fx wall time, %s CPU time\n", c / p, cpu
    }'
rm -f "$DIR".*

if [[ -n "${BIG_JSON_ITEMS:-}" ]]; then
    python3 - "$BIG_JSON_ITEMS" "$DIR.list.json" <<'PYTHON'
import json, sys
n_items, path = int(sys.argv[1]), sys.argv[2]
def item(i):
    container = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                 "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"web-{i}", "namespace": "shop"},
            "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}},
                                                 "spec": {"containers": [container]}}}}
with open(path, "w") as out:
    out.write('{"apiVersion": "v1", "kind": "List", "items": [\n')
    out.write(",\n".join(json.dumps(item(i), separators=(",", ":")) for i in range(n_items)))
    out.write("\n]}\n")
PYTHON
    SECONDS_BIG=$(run_timed big "$PALISADE" baseline workloads -f "$DIR.list.json" --output json)
    echo "big JSON:  $BIG_JSON_ITEMS Deployments in one List, $(stat -c %s "$DIR.list.json") bytes: $SECONDS_BIG s wall, $(usage big cpu) s CPU, max RSS $(usage big rss) KiB"
    rm -f "$DIR".*
fi
