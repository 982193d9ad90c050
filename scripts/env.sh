# Shared settings for the scripts in this folder (sourced, not run).
#
# One persistent target directory outside the checkout, so that every clone on this machine
# (a developer's, CI's) reuses the same build: clean builds are slow on two cores.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/palisade-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Cargo reuses a workspace crate built from another checkout of the same sources (it keys
# builds by paths relative to the workspace), but what a crate fixed at build time with
# env!("CARGO_MANIFEST_DIR") (its test fixtures, the shared data beside the checkout) still
# names that other checkout, which may be gone. So when the last script here ran from another
# checkout, the workspace's own crates are marked changed and rebuilt (their dependencies are
# not).
palisade_checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
palisade_checkout_marker="$CARGO_TARGET_DIR/.palisade-checkout"
if [ -f "$palisade_checkout_marker" ] && [ "$(cat "$palisade_checkout_marker")" != "$palisade_checkout" ]; then
    echo "$CARGO_TARGET_DIR was last used from $(cat "$palisade_checkout_marker"): rebuilding the workspace's crates" >&2
    touch -c "$palisade_checkout"/crates/*/src/lib.rs "$palisade_checkout"/crates/*/src/main.rs
fi
mkdir -p "$CARGO_TARGET_DIR" && echo "$palisade_checkout" > "$palisade_checkout_marker"

# Installs Debian packages that are missing (as root; otherwise says what to install).
install_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Missing packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "Installing ${missing[*]}..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Drops the target directory's incremental build state (its largest part, and only a speed-up)
# when less than 20 GB is free, so that a build or a test run never fails for lack of space.
ensure_build_space() {
    local free_kib
    free_kib=$(df -Pk "$(dirname "$CARGO_TARGET_DIR")" | awk 'NR == 2 {print $4}')
    if [ "${free_kib:-0}" -lt $((20 * 1024 * 1024)) ]; then
        echo "Less than 20 GB free: removing incremental build state under $CARGO_TARGET_DIR" >&2
        rm -rf "$CARGO_TARGET_DIR"/*/incremental
    fi
}
