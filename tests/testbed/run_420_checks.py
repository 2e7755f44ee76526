# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection on Debian 13's real Xen 4.20.4 (issue 20), run on request only.

    python -m pytest tests/testbed/run_420_checks.py -q      # after build_testbed.py --generation 4.20

The file name keeps it out of `pytest tests/testbed` (make testbed-test): 4.20 is not in the
default testbed. One 4.20.4 host from its booted snapshot: noreboot.xen.xen_facts reports the
running 4.20.4 build (version, build-id). Nothing is live patched: the testbed has no 4.20
payloads (Debian's archive does not serve Debian 13's Xen source; testbed_lib.PAYLOAD_SOURCES).
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

BUILD = tb.ALL_BUILDS["4.20.4"]


@pytest.fixture(scope="module")
def host_420(tmp_path_factory):
    layout = tb.Layout()
    for needed in (layout.golden(BUILD),):
        if not (needed / ".done").is_file():
            pytest.fail(f"{needed} is not built: run python3 tests/testbed/build_testbed.py --generation 4.20")
    work = tmp_path_factory.mktemp("xen420")
    run_dir = work / "tb"
    subprocess.run([sys.executable, str(HERE / "hosts.py"), "up", "--host", "lm4204=4.20.4",
                    "--run-dir", str(run_dir)], check=True)
    try:
        host = json.loads((run_dir / "hosts.json").read_text())["hosts"][0]
        inventory = work / "inventory.ini"
        inventory.write_text(
            f"{host['name']} ansible_host={host['address']} ansible_port={host['port']} ansible_user=root "
            f"ansible_ssh_private_key_file={host['identity_file']} ansible_python_interpreter=/usr/bin/python3 "
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o LogLevel=ERROR'\n")
        yield dict(work=work, host=host, inventory=inventory)
    finally:
        subprocess.run([sys.executable, str(HERE / "hosts.py"), "down", "--run-dir", str(run_dir)], check=False)


def ansible(host_420, argv, log_name):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_TIMEOUT="120",
               ANSIBLE_SSH_RETRIES="3", ANSIBLE_PIPELINING="1", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run([*argv, "-i", str(host_420["inventory"])], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = proc.stdout.decode("utf-8", "replace")
    (host_420["work"] / log_name).write_text(log)
    return proc.returncode, log


def test_xen_facts_on_real_420(host_420):
    rc, log = ansible(host_420, [str(REPO / ".venv" / "bin" / "ansible"), "all", "-m", "noreboot.xen.xen_facts",
                                 "-o"], "xen_facts.log")
    assert rc == 0, log[-4000:]
    facts = json.loads(log.split(" => ", 1)[1])["ansible_facts"]["xen"]
    (host_420["work"] / "xen_facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True))
    assert facts["hypervisor"]["version"] == BUILD.xen_version == "4.20.5-pre"
    assert facts["hypervisor"]["build_id"] == BUILD.build_id
