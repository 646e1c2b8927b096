#!/usr/bin/env bash
# Bootstrap ./.venv with the pinned dependencies, then hand over to `python -m pipeline` (the
# pipeline, demo, units, prune: `./run_pipeline.sh help`). `test [--fast]` runs ruff, mypy, pytest.
set -euo pipefail
umask 027  # the venv, data and logs: readable by the owner's group at most
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
VENV="$HERE/.venv"
STAMP="$VENV/.deps-sha256"
DEPS=(setup.cfg pyproject.toml requirements.lock)

say() { printf 'run_pipeline: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# Create ./.venv if missing; install only when a file in DEPS changed (later calls: no network).
bootstrap() {
    local want py
    want="$(cd "$HERE" && cat "${DEPS[@]}" | sha256sum | cut -d' ' -f1)"
    [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(<"$STAMP")" == "$want" ]] && return
    [[ "${PIPELINE_NO_BOOTSTRAP:-}" != 1 ]] || die "PIPELINE_NO_BOOTSTRAP=1 and $VENV is missing" \
        "or out of date with ${DEPS[*]}; run '$HERE/run_pipeline.sh bootstrap' as the service user"
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
    if [[ ! -f "$STAMP" || "$(<"$STAMP")" != "$want" ]]; then
        say "installing the project into $VENV (${DEPS[*]} changed)"
        (cd "$HERE" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c requirements.lock -e '.[test]')
        printf '%s\n' "$want" >"$STAMP"
    fi
    exec 9>&-
}

bootstrap  # a plain call: within `bootstrap && ...` errexit would be off
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
        printf '%s\n' "Usage: ./run_pipeline.sh bootstrap | test [--fast] [PYTEST ARGS] | [ARGS]" \
            "  bootstrap: only create/update ./.venv (pinned by requirements.lock; all do it)" \
            "  test: ruff, then pytest (--fast: without the slow end-to-end tests)" \
            "  ARGS: python -m pipeline ARGS (below)" \
            "PIPELINE_NO_BOOTSTRAP=1: exit 2 rather than install (the systemd unit sets it)" ""
        exec "$VENV/bin/python" -P -m pipeline --help ;;
    *) exec "$VENV/bin/python" -P -m pipeline "$@" ;;
esac
