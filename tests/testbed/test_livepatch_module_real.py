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

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

import payload_note_signing as note_signing
import testbed_lib as tb
from xen_builds import XEN_4175
from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_signature_note as signature_note


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


def playbook(real_host, name, extra, log_name):
    """Runs tests/testbed/playbooks/<name> against the host; returns (rc, log)."""
    host = real_host["host"]
    inventory = real_host["work"] / "inventory.ini"
    inventory.write_text(
        f"{host['name']} ansible_host={host['address']} ansible_port={host['port']} ansible_user=root "
        f"ansible_ssh_private_key_file={host['identity_file']} ansible_python_interpreter=/usr/bin/python3 "
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".cache" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1",
               # A dom0 under TCG on a loaded machine can miss SSH's banner timeout: retry, as tb.ssh does.
               ANSIBLE_TIMEOUT="120", ANSIBLE_SSH_RETRIES="3",
               # One SSH exec per task instead of five (mkdir, put, chmod, run, rm): a TCG dom0 forks slowly.
               ANSIBLE_PIPELINING="1")
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory),
            str(HERE / "playbooks" / name), "-e", json.dumps(extra)]
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = proc.stdout.decode("utf-8", "replace")
    (real_host["work"] / log_name).write_text(log)
    return proc.returncode, log


def test_livepatch_module_four_ways_on_real_xen(real_host):
    rc, log = playbook(real_host, "livepatch_module_four_ways.yml",
                       {"testbed_payloads_dir": str(real_host["payloads"])}, "ansible.log")
    assert rc == 0, log[-6000:]


# The swaps below: A is what the advisory declares, B is what an attacker (or an accident) puts in its place.
SWAP_STATE_ROOT = "/var/lib/noreboot-xen-swap"
SWAP_B_ON_HOST = "/root/swap-b.livepatch"
SWAP_UPLOAD_LOG = "/root/swap-uploads.log"
SWAP_MODE_FILE = "/root/swap-mode"
# Found before /usr/sbin/xen-livepatch on root's PATH (and by get_bin_path): logs the sha256 of every file
# handed to `upload`/`load`, after doing the host-side swap /root/swap-mode asks for on the staged files.
SWAP_WRAPPER = f"""#!/bin/sh
# noreboot.xen test wrapper (tests/testbed/test_livepatch_module_real.py): removed after each case
case "$1" in
upload|load)
    for staged in {SWAP_STATE_ROOT}/*/staging/*/*; do
        [ -e "$staged" ] || [ -L "$staged" ] || continue
        case "$(cat {SWAP_MODE_FILE} 2>/dev/null)" in
            replace) cat {SWAP_B_ON_HOST} > "$staged" ;;
            symlink) ln -sfn {SWAP_B_ON_HOST} "$staged" ;;
        esac
    done
    if [ "$1" = upload ]; then file="$3"; else file="$2"; fi
    echo "$1 $(sha256sum < "$file" | cut -d' ' -f1) $file" >> {SWAP_UPLOAD_LOG}
    ;;
esac
exec /usr/sbin/xen-livepatch "$@"
"""
SWAP_ADVISORY = """schema: 1
id: TESTBED-SWAP-1
title: "testbed: a payload swapped after the check never reaches Xen"
affected:
  hypervisors:
    versions: [">=4.17.0,<4.18.0"]
livepatches:
  - xen_build_id: {xen_build_id}
    file: xen_hello_world.livepatch
    sha256: {sha}
    name: xen_hello_world
fallback:
  reboot: true
  fixed_build_ids: []
  packages:
    debian: {{package: xen-hypervisor-4.17-amd64, version: "4.17.7+13-g2445b30a44-0+deb12u1"}}
"""
# Back to a plain host whatever a case left: no wrapper, no payload loaded (revert, then unload).
SWAP_CLEANUP = f"""rm -f /usr/local/sbin/xen-livepatch {SWAP_MODE_FILE} {SWAP_UPLOAD_LOG} {SWAP_B_ON_HOST}
rm -rf {SWAP_STATE_ROOT}
for try in 1 2 3 4 5; do
    names=$(xen-livepatch list | awk 'NR > 2 && $1 != "" {{print $1}}')
    [ -z "$names" ] && exit 0
    for name in $names; do xen-livepatch revert "$name"; xen-livepatch unload "$name"; done
    sleep 1
done
xen-livepatch list
exit 1
"""
SWAP_CASES = ["controller_symlink", "controller_replace", "host_replace", "host_symlink", "unsafe_state_dir",
              "signed_note", "signed_note_flipped"]


def signed_payload(work, payload, flip):
    """``payload`` signed with a new RSA key (and, if ``flip``, one bit of its signature flipped): (bytes, [key])."""
    keys = work / "keys"
    keys.mkdir()
    private, public = note_signing.make_rsa_key(str(keys), "payload-signer")
    path = work / "signed.livepatch"
    path.write_bytes(payload)
    note_signing.sign_payload(str(path), private, str(keys))
    signed = bytearray(path.read_bytes())
    if flip:
        signed[signature_note.find_signature_note(bytes(signed))["file_offset"]] ^= 0x80
    return bytes(signed), [public]


def host_sh(real_host, script, check=True):
    host = real_host["host"]
    proc = tb.ssh(host["port"], Path(host["identity_file"]), ["sh", "-c", script], timeout=300, check=check)
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("case", SWAP_CASES)
def test_swapped_payload_never_reaches_real_xen(real_host, case):
    payloads = real_host["payloads"] / "4.17.5"
    payload_a = (payloads / "xen_hello_world.livepatch").read_bytes()
    payload_b = (payloads / "xen_replace_world.livepatch").read_bytes()
    work = real_host["work"] / f"swap-{case}"
    for sub in ("a", "b"):
        (work / sub).mkdir(parents=True)
    keys = []
    if case.startswith("signed_note"):
        # Issue 19: A as XenServer's livepatch-build-tools sign it (.note.Xen.signature, RSA over SHA-256).
        payload_a, keys = signed_payload(work, payload_a, flip=case == "signed_note_flipped")
    sha_a, sha_b = hashlib.sha256(payload_a).hexdigest(), hashlib.sha256(payload_b).hexdigest()
    (work / "a" / "xen_hello_world.livepatch").write_bytes(payload_a)
    (work / "b" / "xen_hello_world.livepatch").write_bytes(payload_b)
    declared = work / "xen_hello_world.livepatch"
    if case == "controller_symlink":
        declared.symlink_to("a/xen_hello_world.livepatch")
    else:
        declared.write_bytes(payload_a)
    advisory = work / "advisory.yml"
    advisory.write_text(SWAP_ADVISORY.format(sha=sha_a, xen_build_id=XEN_4175))
    state_dir = f"{SWAP_STATE_ROOT}/{case}"
    mode = {"host_replace": "replace", "host_symlink": "symlink"}.get(case, "none")
    setup = [f"mkdir -p -m 0700 {SWAP_STATE_ROOT}",
             f"echo {base64.b64encode(payload_b).decode()} | base64 -d > {SWAP_B_ON_HOST}",
             f"echo {mode} > {SWAP_MODE_FILE}", f": > {SWAP_UPLOAD_LOG}",
             f"cat > /usr/local/sbin/xen-livepatch <<'EOF'\n{SWAP_WRAPPER}EOF",
             "chmod 0755 /usr/local/sbin/xen-livepatch", "xen-livepatch list"]
    if case == "unsafe_state_dir":
        setup += [f"mkdir -p {state_dir}", f"chmod 0777 {state_dir}"]
    host_sh(real_host, "set -e\n" + "\n".join(setup))
    try:
        result_path = work / "result.json"
        rc, log = playbook(real_host, "livepatch_payload_swap.yml", {
            "swap_case": case, "swap_advisory": str(advisory), "swap_payload_b": str(work / "b" / "xen_hello_world.livepatch"),
            "swap_sha_a": sha_a, "swap_state_dir": state_dir, "swap_host": real_host["host"]["name"],
            "swap_result_path": str(result_path), "swap_payload_signature_keys": keys}, f"swap-{case}.log")
        if case == "signed_note_flipped":
            # The plan refuses the whole run: the role never starts, nothing is staged.
            assert rc != 0 and not result_path.exists(), log[-6000:]
            assert "payload signature note refused" in log and "xen_hello_world.livepatch" in log, log[-6000:]
            result = None
        else:
            assert rc == 0, log[-6000:]
            result = json.loads(result_path.read_text())
        # (xen-livepatch list draws its own rule of dashes: the parts are split on a line of their own)
        seen = host_sh(real_host, f"xl info | grep ^xen_extra; echo NRX-PART; xen-livepatch list; echo NRX-PART; "
                                  f"cat {SWAP_UPLOAD_LOG}; echo NRX-PART; ls -A {state_dir} 2>/dev/null || true")
        xen_extra, table, uploads, state_files = seen.split("NRX-PART\n")
        uploaded = [line.split()[1] for line in uploads.splitlines()]
        # B never reaches Xen, whatever the case.
        assert sha_b not in uploaded, seen
        assert "Hello Again" not in xen_extra, seen
        if case in ("controller_symlink", "host_replace", "host_symlink", "signed_note"):
            # The verified bytes are the ones uploaded and applied: their effect is A's.
            assert result["outcome"] == "patched", result
            if case == "signed_note":
                assert [(p["status"], p["key_file"]) for p in result["payload_signatures"]] == [("verified", keys[0])], result
            assert uploaded == [sha_a], seen
            assert "Hello World" in xen_extra, seen
            rows = [[cell.strip() for cell in line.split("|")] for line in table.splitlines()[2:] if line.strip()]
            assert [(row[0], row[1]) for row in rows] == [("xen_hello_world", "APPLIED")], seen
        else:
            # Refused before anything reached Xen: nothing uploaded, nothing loaded, xen_extra is the build's own.
            if case != "signed_note_flipped":
                # The role ran and refused (the flipped note stopped the run before it: no result, asserted above).
                assert result["outcome"] == "failed", result
            assert uploaded == [], seen
            assert table.strip() == "Nothing to list", seen
            assert xen_extra.split(":", 1)[1].strip() == ".5", seen
            if case == "controller_replace":
                assert "checksum mismatch" in result["result"]["msg"] and sha_b in result["result"]["msg"], result
            elif case == "unsafe_state_dir":
                assert "writable by its group or by others" in result["result"]["msg"], result
            if case in ("unsafe_state_dir", "signed_note_flipped"):
                # Refused before staging: the state directory is as the test left it (empty) or was never made.
                assert state_files.strip() == "", seen
    finally:
        host_sh(real_host, SWAP_CLEANUP)
