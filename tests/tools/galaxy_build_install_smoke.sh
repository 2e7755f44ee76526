#!/usr/bin/env bash
# Build the collection tarball, install it into a temporary path, and run a playbook that
# uses the installed copy by FQCN (and nothing from the checkout).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$repo/.venv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/ansible-galaxy" collection build "$repo" --output-path "$work/dist" --force
tarball=$(ls "$work"/dist/noreboot-xen-*.tar.gz)
echo "built: $(basename "$tarball") ($(stat -c %s "$tarball") bytes)"
# A packager gets the license text with the artifact, and MANIFEST.json names it.
members=$(tar -tzf "$tarball")
grep -qx COPYING <<<"$members" || { echo "galaxy-smoke: COPYING missing from $tarball" >&2; exit 1; }
tar -xzOf "$tarball" MANIFEST.json | python3 -c 'import json, sys; info = json.load(sys.stdin)["collection_info"]; assert info["license"] == ["GPL-3.0-or-later"], info; print("license:", info["license"][0], "+ COPYING")'
# Only the temporary path counts: the checkout may be on ANSIBLE_COLLECTIONS_PATH (make sets it),
# and ansible-galaxy would then call the collection "already installed" and install nothing.
ANSIBLE_COLLECTIONS_PATH="$work/collections" \
  "$venv/bin/ansible-galaxy" collection install "$tarball" -p "$work/collections" --offline --force
test -f "$work/collections/ansible_collections/noreboot/xen/plugins/modules/xen_facts.py"
ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
  "$venv/bin/ansible-playbook" -i localhost, -c local \
  "$work/collections/ansible_collections/noreboot/xen/playbooks/inventory_report.yml" \
  -e noreboot_xen_report_dir="$work/report" \
  -e ansible_python_interpreter="$venv/bin/python"
python3 - "$work/report/fleet_summary.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
# localhost is no Xen dom0: detection must say so (present: false), not fail.
assert summary["hosts_total"] == 1, summary
assert summary["hosts_failed"] == 0, summary
assert summary["hosts_present"] == 0, summary
print("installed collection ran: %d host(s), %d failed, %d Xen dom0(s)"
      % (summary["hosts_total"], summary["hosts_failed"], summary["hosts_present"]))
PY
