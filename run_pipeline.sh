#!/usr/bin/env bash
# Bootstrap ./.venv with the pinned dependencies, then hand over to `python -m pipeline` (the
# pipeline, demo, units, prune: `./run_pipeline.sh help`). `test [--fast]` runs ruff, mypy, pytest.
set -euo pipefail
umask 027  # the venv, data and logs: readable by the owner's group at most
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
VENV="$HERE/.venv"
STAMP="$VENV/.deps-sha256"  # "<set> <sha256 of its dependency files>": what was installed

say() { printf 'run_pipeline: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# A set of dependencies: runtime (what runs) or test (the runtime and the test tools).
lock() { if [[ "$1" == test ]]; then echo requirements-test.lock; else echo requirements.lock; fi; }
deps() { echo setup.cfg pyproject.toml "$(lock "$1")"; }  # the files that pin a set
digest() {  # what the stamp holds of a set's files
    (cd "$HERE" && cat setup.cfg pyproject.toml "$(lock "$1")" | sha256sum | cut -d' ' -f1)
}

# Create ./.venv if missing; install set $1 (runtime or test) only when the venv lacks it or a
# file of the set changed (later calls: no network). A test venv serves a runtime run as it is.
bootstrap() {
    local need="$1" have="" sum="" py
    [[ -f "$STAMP" ]] && read -r have sum _ <"$STAMP"
    if [[ -x "$VENV/bin/python" && ("$have" == "$need" || "$have" == test) ]] \
        && [[ "$sum" == "$(digest "$have")" ]]; then
        return
    fi
    [[ "$have" == test ]] && need="test"  # never downgrade a test venv
    [[ "${PIPELINE_NO_BOOTSTRAP:-}" != 1 ]] || die "PIPELINE_NO_BOOTSTRAP=1 and $VENV is missing" \
        "or out of date with $(deps "$need"); run '$HERE/run_pipeline.sh bootstrap' as" \
        "the service user"
    mkdir -p "$VENV"
    exec 9>"$VENV/.bootstrap.lock"
    flock 9  # one bootstrap at a time (a timer run and a person at the shell)
    if [[ ! -x "$VENV/bin/python" ]]; then
        for py in python3.11 python3 ""; do
            [[ -n "$py" ]] || die "Python >= 3.11 not found (tried python3.11, python3)"
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && break
        done
        say "creating $VENV with $py"
        "$py" -m venv "$VENV"
    fi
    have="" sum=""
    [[ -f "$STAMP" ]] && read -r have sum _ <"$STAMP"  # another bootstrap may have done it
    if [[ "$have" != "$need" || "$sum" != "$(digest "$need")" ]]; then
        local project=.
        [[ "$need" == runtime ]] || project=".[test]"
        say "installing the $need dependencies into $VENV ($(lock "$need"))"
        (cd "$HERE" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$(lock "$need")" -e "$project")
        printf '%s %s\n' "$need" "$(digest "$need")" >"$STAMP"
    fi
    exec 9>&-
}

SET=runtime
if [[ "${1:-}" == test || "${1:-} ${2:-}" == "bootstrap --test" ]]; then SET="test"; fi
bootstrap "$SET"  # a plain call: within `bootstrap && ...` errexit would be off
case "${1:-}" in
    bootstrap) ;;
    test)
        shift
        cd "$HERE"
        if [[ "${1:-}" == --fast ]]; then shift && set -- -m "not slow" "$@"; fi
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$VENV/bin/mypy"  # pipeline/, as configured in pyproject.toml
        exec "$VENV/bin/pytest" "$@" ;;
    help | -h | --help)
        printf '%s\n' "Usage: ./run_pipeline.sh bootstrap [--test] | test [--fast] [PYTEST ARGS] | [ARGS]" \
            "  bootstrap: only create/update ./.venv (the runtime: requirements.lock; all do)" \
            "  bootstrap --test, test: the test tools too (requirements-test.lock)" \
            "  test: ruff, mypy, then pytest (--fast: without the slow end-to-end tests)" \
            "  ARGS: python -m pipeline ARGS (below)" \
            "PIPELINE_NO_BOOTSTRAP=1: exit 2 rather than install (the systemd unit sets it)" ""
        exec "$VENV/bin/python" -P -m pipeline --help ;;
    *) exec "$VENV/bin/python" -P -m pipeline "$@" ;;
esac
