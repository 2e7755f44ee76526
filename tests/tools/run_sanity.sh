#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection laid out as
# <root>/ansible_collections/noreboot/xen (ansible-test refuses symlinks), offline.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$repo/.venv}
root=${SANITY_ROOT:-$repo/.cache/sanity}
dest=$root/ansible_collections/noreboot/xen
# The pip version ansible-test bootstraps into its venvs gets the offline stand-in.
mkdir -p "$HOME/.ansible/test/cache"
pip_version=$("$venv/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": ""})())["pip"])')
cp "$repo/tests/tools/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
rm -rf "$dest"
mkdir -p "$dest"
# Copy what git tracks plus new, not ignored files: the same set a clean checkout has.
# Files deleted in the work tree but still in the index are left out.
cd "$repo"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$dest"
cd "$dest"
# ansible-test uses git to list files when it finds a repository; give it one.
git init -q . && git add -A >/dev/null && git -c user.email=ci@invalid -c user.name=ci commit -qm sanity >/dev/null
PY_VER=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
exec "$venv/bin/ansible-test" sanity --python "$PY_VER" --color no "$@"
