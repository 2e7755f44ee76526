#!/usr/bin/env bash
# make core-matrix: the unit tests and `ansible-test sanity` on every ansible-core of the tested
# matrix besides the main venv's (requirements/test.txt). One requirements file per core,
# requirements/core-<version>.txt, names its Python in a `# python: X.Y` line; its venv is
# .cache/core-matrix/<version>/venv, rebuilt only when that file changed (a copy is the stamp).
# Usage: core_matrix.sh [version...]   (default: every requirements/core-*.txt)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
export ANSIBLE_COLLECTIONS_PATH="$repo/.cache/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export PYTHONPATH="$repo/.cache/collections"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# python3.X on PATH when it runs (a pyenv shim may not), else pyenv's newest 3.X.
find_python() {
  local want=$1 candidate
  if "python$want" -c '' 2>/dev/null; then command -v "python$want"; return; fi
  if command -v pyenv >/dev/null; then
    for candidate in $(printf '%s\n' "$(pyenv root)/versions/$want".*/bin/python"$want" | sort -V -r); do
      [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
  fi
  echo "core-matrix: no Python $want (python$want on PATH or under pyenv) for $2" >&2
  return 1
}

if [ $# -gt 0 ]; then versions=("$@")
else mapfile -t versions < <(printf '%s\n' requirements/core-*.txt | sed 's|.*/core-||; s|\.txt$||' | sort -V); fi
[ ${#versions[@]} -gt 0 ] || { echo "core-matrix: no requirements/core-*.txt" >&2; exit 1; }

mkdir -p .cache/collections/ansible_collections/noreboot
ln -sfn "$repo" .cache/collections/ansible_collections/noreboot/xen
for version in "${versions[@]}"; do
  reqs=requirements/core-$version.txt
  [ -f "$reqs" ] || { echo "core-matrix: $reqs not found" >&2; exit 1; }
  py=$(sed -n 's/^# python: *\([0-9.]*\).*/\1/p' "$reqs")
  [ -n "$py" ] || { echo "core-matrix: $reqs has no '# python: X.Y' line" >&2; exit 1; }
  dir=.cache/core-matrix/$version
  venv=$repo/$dir/venv
  started=$(date +%s)
  if ! cmp -s "$reqs" "$dir/requirements.stamp"; then
    interpreter=$(find_python "$py" "ansible-core $version")
    rm -rf "$dir"
    mkdir -p "$dir"
    "$interpreter" -m venv "$venv"
    "$venv/bin/pip" install -q -r "$reqs"
    cp "$reqs" "$dir/requirements.stamp"
  fi
  core=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
  echo "== core-matrix: ansible-core $core, Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
  "$venv/bin/python" tests/tools/pytest_no_skips.py -q tests/unit
  VENV=$venv SANITY_ROOT=$repo/$dir/sanity tests/tools/run_sanity.sh
  echo "== core-matrix: ansible-core $core passed in $(( $(date +%s) - started )) s"
done
