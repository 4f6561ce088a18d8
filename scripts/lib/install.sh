# scripts/lib/install.sh — install helpers shared by the scripts (source it; needs bash).
#
#   ensure_venv VENV REQUIREMENTS   a Python venv at VENV with REQUIREMENTS installed; re-installed
#                                   only when that file changes (its hash is kept in the venv)
#   ensure_npm_ci DIR               `npm ci` in DIR when node_modules is missing or older than
#                                   DIR/package-lock.json; installs nodejs + npm with apt-get when
#                                   npm is missing

ensure_venv() {
  local venv=$1 requirements=$2 stamp hash
  stamp="$venv/.requirements.sha256"
  hash=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
    echo "pip install -r ${requirements#"$PWD/"} into $venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
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
  if ! command -v npm >/dev/null; then
    echo "npm not found; installing nodejs + npm with apt-get" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
  fi
  echo "npm ci --prefix $dir" >&2
  # --ignore-scripts: no package here needs an install script (@bufbuild/buf's postinstall only
  # optimises its launcher)
  npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  touch "$installed"
}
