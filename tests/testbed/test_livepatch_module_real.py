# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.livepatch on a real Xen 4.17.5 hypervisor, four ways per state.

Starts one testbed host from its booted snapshot and runs
tests/testbed/playbooks/livepatch_module_four_ways.yml against it: `applied`, `replace` and
`absent` each in check mode, for real, again (idempotent) and again in check mode; a 4.17.7
payload refused before upload; a revert under a stacked payload failing with EBUSY. The
playbook's asserts are the checks; this test fails when the playbook fails.
Needs root and the testbed cache (tests/testbed/build_testbed.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import testbed_lib as tb  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def real_host(tmp_path_factory):
    payloads = tb.cache_dir() / "payloads"
    if not (payloads / "4.17.5" / "manifest.json").is_file():
        pytest.fail(f"the testbed is not built ({payloads} has no manifest): run python3 tests/testbed/build_testbed.py")
    work = tmp_path_factory.mktemp("livepatch-module")
    run_dir = work / "tb"
    subprocess.run([sys.executable, str(HERE / "hosts.py"), "up", "--host", "lm4175=4.17.5",
                    "--run-dir", str(run_dir)], check=True)
    try:
        host = json.loads((run_dir / "hosts.json").read_text())["hosts"][0]
        yield dict(work=work, host=host, payloads=payloads)
    finally:
        subprocess.run([sys.executable, str(HERE / "hosts.py"), "down", "--run-dir", str(run_dir)], check=False)


def test_livepatch_module_four_ways_on_real_xen(real_host):
    host = real_host["host"]
    inventory = real_host["work"] / "inventory.ini"
    inventory.write_text(
        f"{host['name']} ansible_host={host['address']} ansible_port={host['port']} ansible_user=root "
        f"ansible_ssh_private_key_file={host['identity_file']} ansible_python_interpreter=/usr/bin/python3 "
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1")
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
            str(HERE / "playbooks" / "livepatch_module_four_ways.yml"),
            "-e", json.dumps({"testbed_payloads_dir": str(real_host["payloads"])})]
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = proc.stdout.decode("utf-8", "replace")
    (real_host["work"] / "ansible.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]
