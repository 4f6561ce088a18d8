# scripts/lib/install.sh — install helpers shared by the scripts (source it; needs bash).
#
#   ensure_project_venv             the project's Python venv, .stack/venv, with the requirements
#                                   of the interop tests and of the Python example (one venv: they
#                                   share grpcio and grpcio-tools, the slow part of an install)
#   ensure_venv VENV REQUIREMENTS...  a Python venv at VENV with REQUIREMENTS installed; re-installed
#                                   only when those files change (their hash is kept in the venv)
#   ensure_npm_ci DIR               `npm ci` in DIR when node_modules is missing or older than
#                                   DIR/package-lock.json; installs nodejs + npm with apt-get when
#                                   npm is missing
#   apt_install PACKAGE...          apt-get update + install (with sudo when not root)

INSTALL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

ensure_project_venv() {
  ensure_venv "$INSTALL_ROOT/.stack/venv" \
    "$INSTALL_ROOT/tests/interop/requirements.txt" "$INSTALL_ROOT/examples/python/requirements.txt"
}

ensure_venv() {
  local venv=$1 stamp hash requirement
  shift
  local pip_args=()
  for requirement in "$@"; do pip_args+=(-r "$requirement"); done
  stamp="$venv/.requirements.sha256"
  hash=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
    echo "pip install ${pip_args[*]} into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pip_args[@]}" >&2
    echo "$hash" >"$stamp"
  fi
}

ensure_npm_ci() {
  local dir=$1
  # npm writes this hidden lockfile on every install; older than the committed one = stale
  local installed="$dir/node_modules/.package-lock.json"
  if [ -f "$installed" ] && [ ! "$dir/package-lock.json" -nt "$installed" ]; then
    return 0
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  echo "npm ci --prefix $dir" >&2
  # --ignore-scripts: no package here needs an install script (@bufbuild/buf's postinstall only
  # optimises its launcher)
  npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  touch "$installed"
}

apt_install() {
  echo "apt-get install $*" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
