#!/usr/bin/env bash
# One entry point for people, systemd and CI: bootstrap ./.venv, then run the pipeline, the
# tests, an offline demo, or render the systemd units. `./run_pipeline.sh help` explains each.
set -euo pipefail

umask 027  # data and logs may hold personal fields: never world-readable
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CALLER_PWD="$PWD"
cd "$HERE"  # luigi.cfg and [core] logging_conf_file are resolved relative to the cwd

# Paths the caller gives are relative to where they called us from, not to the checkout; a URL
# (s3://bucket/prefix, or a scheme the pipeline refuses) is passed on as it is.
abspath() {
    if [[ "$1" == /* || "$1" == *://* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$CALLER_PWD/$1"; fi
}
if [[ -n "${PIPELINE_DATA_DIR:-}" ]]; then
    PIPELINE_DATA_DIR="$(abspath "$PIPELINE_DATA_DIR")"
    export PIPELINE_DATA_DIR
fi

VENV="$HERE/.venv"
STAMP="$VENV/.deps-sha256"

usage() {
    cat <<'EOF'
Usage: ./run_pipeline.sh [SUBCOMMAND] [ARGS...]

  (none) [LUIGI ARGS...]  Run `luigi --module pipeline Insights` for the current UTC hour;
                          extra args go to luigi (e.g. --date-hour 2026-11-25T17, --workers 2).
                          Uses the central scheduler when one is configured (--scheduler-url,
                          LUIGI_SCHEDULER_URL, or [core] default_scheduler_url in luigi.cfg),
                          else --local-scheduler. Output is also written to
                          $PIPELINE_DATA_DIR/logs/run-<UTC time>-<pid>.log; exit code is luigi's.
  test [PYTEST ARGS...]   ruff check, then the whole pytest suite (args go to pytest).
  demo [DIR]              Run the whole pipeline offline against a local demo API; outputs go to
                          DIR (default: data-demo in the checkout).
  units DEST [OPTIONS]    Render etl-pipeline.service/.timer and luigid.service into DEST for
                          this checkout (--user U, --data-dir D, --with-luigid; see --help).
  bootstrap               Only create/update ./.venv (done automatically by the others).
  help                    This text.

Environment: PIPELINE_API_URL (default https://dummyjson.com), PIPELINE_DATA_DIR (default: data
in the checkout; relative paths here and in DIR/DEST are from where you are; or
s3://bucket/prefix, whose run logs go to PIPELINE_LOG_DIR, default: logs in the checkout),
LUIGI_SCHEDULER_URL, PIPELINE_NO_BOOTSTRAP=1 (fail instead of installing; set by the systemd
unit, whose sandbox makes the checkout read-only).
EOF
}

say() { printf 'run_pipeline: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

find_python() {
    local py
    for py in python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 \
            && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            printf '%s\n' "$py"
            return
        fi
    done
    die "Python >= 3.11 not found (tried python3.11, python3)"
}

deps_hash() { cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1; }

# Create ./.venv if missing and (re)install the project only when setup.cfg or pyproject.toml
# changed since the last install, so every call after the first costs no network and ~no time.
bootstrap() {
    local want
    want="$(deps_hash)"
    if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(<"$STAMP")" == "$want" ]]; then
        return
    fi
    if [[ "${PIPELINE_NO_BOOTSTRAP:-}" == 1 ]]; then
        die "$VENV is missing or out of date with setup.cfg/pyproject.toml and" \
            "PIPELINE_NO_BOOTSTRAP=1; run '$HERE/run_pipeline.sh bootstrap' as the service user"
    fi
    mkdir -p "$VENV"
    # Serialise concurrent bootstraps (a timer run and a person at the shell).
    exec 9>"$VENV/.bootstrap.lock"
    flock 9
    if [[ ! -x "$VENV/bin/python" ]]; then
        local py
        py="$(find_python)"
        say "creating $VENV with $py"
        "$py" -m venv "$VENV"
    fi
    if [[ ! -f "$STAMP" || "$(<"$STAMP")" != "$want" ]]; then
        say "installing the project into $VENV (setup.cfg/pyproject.toml changed)"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
        printf '%s\n' "$want" >"$STAMP"
    fi
    exec 9>&-
}

# Print two lines read the way luigi and the pipeline read them: the scheduler URL from luigi's
# config files ('' when none) and the data root (PIPELINE_DATA_DIR, [paths] data_dir, data).
probe_config() {
    "$VENV/bin/python" -W ignore - <<'EOF'
import os
from luigi.configuration import get_config
c = get_config()
url = c.get("core", "default_scheduler_url", "")
host = c.get("core", "default_scheduler_host", "")
if not url and host:
    url = f"http://{host}:{c.get('core', 'default_scheduler_port', '8082')}"
print(url)
print(os.environ.get("PIPELINE_DATA_DIR") or c.get("paths", "data_dir", "data"))
EOF
}

# Run luigi with the right scheduler flag, teeing all output into a per-run log file under the
# data root; returns luigi's exit code.
run_luigi() {
    local probe cfg_url data_root arg sched="" log rc
    probe="$(probe_config)"
    cfg_url="$(sed -n 1p <<<"$probe")"
    data_root="$(sed -n 2p <<<"$probe")"
    for arg in "$@"; do
        case "$arg" in
            --local-scheduler) sched="local (--local-scheduler given)" ;;
            --scheduler-url | --scheduler-url=* | --scheduler-host | --scheduler-host=*)
                sched="central (from the command line)" ;;
        esac
    done
    local -a cmd=("$VENV/bin/luigi" --module pipeline Insights)
    if [[ -z "$sched" && -n "${LUIGI_SCHEDULER_URL:-}" ]]; then
        sched="central $LUIGI_SCHEDULER_URL (LUIGI_SCHEDULER_URL)"
        cmd+=(--scheduler-url "$LUIGI_SCHEDULER_URL")
    elif [[ -z "$sched" && -n "$cfg_url" ]]; then
        sched="central $cfg_url (luigi config)"
    elif [[ -z "$sched" ]]; then
        sched="local (no central scheduler configured)"
        cmd+=(--local-scheduler)
    fi
    cmd+=("$@")

    local logs="$data_root/logs"
    if [[ "$data_root" == *://* ]]; then  # an object store: the run log stays on this host
        logs="${PIPELINE_LOG_DIR:-$HERE/logs}"
    fi
    mkdir -p "$logs"
    log="$(cd "$logs" && pwd -P)/run-$(date -u +%Y%m%dT%H%M%SZ)-$$.log"
    say "scheduler: $sched"
    say "log file: $log"
    printf '# %s\n# cwd: %s\n# scheduler: %s\n' "${cmd[*]}" "$HERE" "$sched" >"$log"

    set +e +o pipefail
    "${cmd[@]}" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    set -e -o pipefail
    printf '# exit code: %s\n' "$rc" >>"$log"
    if ((rc != 0)); then
        say "luigi exited with $rc; see $log"
    fi
    return "$rc"
}

run_tests() {
    "$VENV/bin/ruff" check .
    "$VENV/bin/pytest" "$@"
}

DEMO_PID="" DEMO_OUT=""
# EXIT trap: must not fail half-way (errexit applies in traps), or the server outlives us.
stop_demo_api() {
    if [[ -n "$DEMO_PID" ]]; then
        kill "$DEMO_PID" 2>/dev/null || true
        wait "$DEMO_PID" 2>/dev/null || true
    fi
    rm -f "$DEMO_OUT"
}

# Serve the demo API on a free port, run the whole pipeline against it into DIR, stop the server.
run_demo() {
    local dir="$HERE/data-demo" out url="" pid rc=0 _
    if (($# > 0)); then dir="$(abspath "$1")"; fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd -P)"
    out="$(mktemp)"
    DEMO_OUT="$out"
    trap stop_demo_api EXIT
    "$VENV/bin/python" -m pipeline.devtools.demo_api >"$out" 2>&1 &
    pid=$!
    DEMO_PID=$pid
    for _ in $(seq 300); do
        url="$(sed -n 's/^serving \(http[^ ]*\).*/\1/p' "$out" | head -n1)"
        [[ -n "$url" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "demo API exited early"; }
        sleep 0.1
    done
    [[ -n "$url" ]] || { cat "$out" >&2; die "demo API did not report its URL within 30 s"; }
    say "demo API at $url; data in $dir"
    # --no-lock: luigi's host-wide lock is keyed on the command line, which every demo shares.
    PIPELINE_API_URL="$url" PIPELINE_DATA_DIR="$dir" run_luigi --local-scheduler --no-lock || rc=$?
    if ((rc != 0)); then
        return "$rc"
    fi
    printf '\nDemo outputs (latest -> %s):\n' "$(readlink "$dir/latest" || echo '?')"
    printf '  %s\n' "$dir/latest/" "$dir/latest/insights/"*
}

main() {
    local sub="${1:-}"
    case "$sub" in
        help | -h | --help) usage; return ;;
        "" | -*) bootstrap; run_luigi "$@" ;;
        test) shift; bootstrap; run_tests "$@" ;;
        demo) shift; (($# <= 1)) || die "usage: demo [DIR]"; bootstrap; run_demo "$@" ;;
        units)
            shift
            (($# >= 1)) || die "usage: units DEST [--user U] [--data-dir D] [--with-luigid]"
            local dest="$1"
            [[ "$dest" == -* ]] || dest="$(abspath "$dest")"  # keep `units --help` working
            shift
            bootstrap
            "$VENV/bin/python" -m pipeline.ops.units "$dest" "$@"
            ;;
        bootstrap) bootstrap ;;
        *) usage >&2; die "unknown subcommand: $sub" ;;
    esac
}

main "$@"
