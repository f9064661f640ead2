# Sourced by scripts/demo and scripts/test: make sure .venv exists and holds Regard.
# Usage: ensure_venv [EXTRAS]   (e.g. ensure_venv dev)
# Reinstalls only when pyproject.toml changed since the last install.

ensure_venv() {
    local extras="${1:-}"
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    local python="${PYTHON:-python3}"
    if [ ! -x "$root/.venv/bin/python" ]; then
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "Regard needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
            return 1
        fi
        echo "Creating $root/.venv ..." >&2
        "$python" -m venv "$root/.venv"
    fi
    local spec="$root"
    [ -n "$extras" ] && spec="$root[$extras]"
    local stamp="$root/.venv/.regard-installed"
    local want
    want="$(sha256sum "$root/pyproject.toml" | cut -c1-16) $extras"
    if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
        echo "Installing Regard${extras:+ with [$extras]} into .venv (the first time takes a few minutes) ..." >&2
        "$root/.venv/bin/python" -m pip install --quiet --upgrade pip >&2
        "$root/.venv/bin/python" -m pip install --quiet -e "$spec" >&2
        echo "$want" > "$stamp"
    fi
}
