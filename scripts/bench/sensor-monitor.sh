# Sourced by the sensor benchmark scripts: waits until the `sensor_bench monitor` with process
# id $2, writing to file $1, says it is ready (every probe attached); exits the script if the
# monitor died first.
wait_for_monitor() {
    until grep -q ready "$1" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || { echo "the sensor failed to start" >&2; exit 1; }
        sleep 0.1
    done
}
