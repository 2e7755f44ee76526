"""Records real transcripts of `xl` and `xen-livepatch` on the testbed's Xen hosts.

    python3 tests/testbed/capture_transcripts.py [--only SCENARIO ...] [--with-nop]

Starts its own hosts (one per Xen build, resumed from the booted snapshots), copies the
payloads of its build and of another build of its generation to each (4.17: /root/p4175/,
/root/p4177/; 4.20: /root/p4204/ and /root/p420s/, the payloads of the 4.20 hypervisor
built from source), runs every scenario below on each host, and writes
tests/fixtures/transcripts/xen-<version>/<scenario>.yml:

    build: {version, debian_version, build_id}
    scenario: NAME
    description: what the scenario provokes
    steps:
      - argv: [xen-livepatch, load, /root/p4175/xen_hello_world.livepatch]
        rc: 0
        stdout: |2
          Uploading ... completed
        stderr: ''

stdout and stderr are kept byte for byte (literal blocks with an explicit indentation
indicator and chomping; a value a literal block cannot carry exactly is written as a
double-quoted string). Every file is read back and compared before it is kept.
Between scenarios the host is brought back to "Nothing to list" (not recorded).
xen_nop crashes the hypervisor: it runs only with --with-nop, last, on its own clone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import testbed_lib as tb  # noqa: E402
import hosts as testbed_hosts  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT_ROOT = REPO / "tests" / "fixtures" / "transcripts"
# Where each set of payloads goes on a host. The recorded xen-4.20.4 transcripts were captured with
# /root/p4204 and /root/p420s (payloads built from upstream Xen's RELEASE-4.20.4 for Debian's build and
# for one built from that source); the testbed builds no 4.20 payloads (testbed_lib.PAYLOAD_SOURCES), so
# 4.20 cannot be captured again here.
PAYLOAD_DIRS = {"4.17.5": "/root/p4175", "4.17.7": "/root/p4177"}
# The payload set of "another build" each host is offered (wrong build-id).
OTHER_PAYLOADS = {"4.17.5": "4.17.7", "4.17.7": "4.17.5"}
LIVEPATCH = "xen-livepatch"


def lp(*args: str) -> list[str]:
    return [LIVEPATCH, *args]


# ------------------------------------------------------------------ scenarios
# A scenario is (name, description, steps(own, other)) where own / other are the payload
# directories of the host's own build and of the other build. Steps are argv lists.

def hello(d: str) -> str:
    return f"{d}/xen_hello_world.livepatch"


def scenarios(series: str = "4.17") -> list[tuple[str, str, object]]:
    def load_list_revert_unload(payload: str, name: str):
        return lambda own, other: [
            lp("load", f"{own}/{payload}.livepatch"), lp("list"),
            lp("revert", name), lp("list"), lp("unload", name), lp("list")]

    table = [
        ("xl-info", "xl info of the freshly booted host",
         lambda own, other: [["xl", "info"]]),
        ("xl-info-n", "xl info -n (with NUMA/CPU topology)",
         lambda own, other: [["xl", "info", "-n"]]),
        ("xl-list", "xl list: dom0 only",
         lambda own, other: [["xl", "list"]]),
        ("xl-dmesg-boot", "xl dmesg right after boot (no live patch activity yet)",
         lambda own, other: [["xl", "dmesg"]]),
        ("xen-livepatch-help", "xen-livepatch without arguments and with help",
         lambda own, other: [lp(), lp("help")]),
        ("list-empty", "list with nothing loaded",
         lambda own, other: [lp("list")]),
        ("hello-cycle", "upload, list CHECKED, apply, list APPLIED, xl info shows Hello "
         "World, revert, list CHECKED, xl info back, unload, list empty",
         lambda own, other: [
             lp("upload", "xen_hello_world", hello(own)), lp("list"),
             lp("apply", "xen_hello_world"), lp("list"), ["xl", "info"],
             lp("revert", "xen_hello_world"), lp("list"), ["xl", "info"],
             lp("unload", "xen_hello_world"), lp("list")]),
        ("load", "load (upload + apply, named after the file), list, revert, unload",
         lambda own, other: [
             lp("load", hello(own)), lp("list"), lp("revert", "xen_hello_world"),
             lp("unload", "xen_hello_world"), lp("list")]),
        ("already-in-state", "apply of an applied payload, revert of a checked one, "
         "upload of a loaded name and of the same payload under another name",
         lambda own, other: [
             lp("load", hello(own)), lp("apply", "xen_hello_world"),
             lp("upload", "xen_hello_world", hello(own)),
             lp("upload", "hello_again", hello(own)), lp("list"),
             lp("revert", "xen_hello_world"), lp("revert", "xen_hello_world"),
             lp("unload", "xen_hello_world"), lp("list")]),
        ("unload-applied", "unload of an APPLIED payload: wrong state",
         lambda own, other: [
             lp("load", hello(own)), lp("unload", "xen_hello_world"), lp("list"),
             lp("revert", "xen_hello_world"), lp("unload", "xen_hello_world")]),
        ("stacked-revert-ebusy", "xen_bye_world stacked on xen_hello_world: reverting the "
         "lower one is EBUSY (rc 2); revert top first",
         lambda own, other: [
             lp("load", hello(own)), lp("load", f"{own}/xen_bye_world.livepatch"),
             lp("list"), ["xl", "info"], lp("revert", "xen_hello_world"), lp("list"),
             lp("revert", "xen_bye_world"), lp("revert", "xen_hello_world"),
             lp("unload", "xen_bye_world"), lp("unload", "xen_hello_world"), lp("list")]),
        ("bye-without-hello", "xen_bye_world depends on xen_hello_world's build-id: "
         "apply without it",
         lambda own, other: [lp("load", f"{own}/xen_bye_world.livepatch"), lp("list")]),
        ("replace", "replace: xen_replace_world becomes the only applied payload",
         lambda own, other: [
             lp("upload", "replace", f"{own}/xen_replace_world.livepatch"),
             lp("load", hello(own)), lp("list"), lp("replace", "replace"), lp("list"),
             ["xl", "info"], lp("revert", "replace"), lp("unload", "replace"),
             lp("unload", "xen_hello_world"), lp("list")]),
        ("wrong-build-id", "the other build's payload: refused at upload (Error 22), "
         "with the hypervisor's log line",
         lambda own, other: [
             lp("upload", "wrongbid", hello(other)), lp("load", hello(other)), lp("list"),
             ["xl", "dmesg"]]),
        ("no-xen-buildid", "a payload without .livepatch.xen_depends",
         lambda own, other: [
             lp("upload", "nobid", f"{own}/xen_no_xen_buildid.livepatch"), lp("list")]),
        ("expectations", "xen_expectations on its own",
         load_list_revert_unload("xen_expectations", "xen_expectations")),
        ("expectations-fail", "xen_expectations_fail: apply fails, load unloads it again",
         lambda own, other: [lp("load", f"{own}/xen_expectations_fail.livepatch"),
                             lp("list")]),
        ("prepost-hooks", "pre/post apply and revert hooks; the pre-revert hook refuses "
         "once (Error 1), the second revert goes through",
         lambda own, other: [
             lp("load", f"{own}/xen_prepost_hooks.livepatch"), lp("list"),
             lp("revert", "xen_prepost_hooks"), lp("list"), lp("revert", "xen_prepost_hooks"),
             lp("list"), lp("unload", "xen_prepost_hooks"), lp("list")]),
        ("prepost-hooks-fail", "a pre-apply hook that fails",
         load_list_revert_unload("xen_prepost_hooks_fail", "xen_prepost_hooks_fail")),
        ("action-hooks", "action hooks",
         load_list_revert_unload("xen_action_hooks", "xen_action_hooks")),
        ("action-hooks-nofunc", "action hooks, no functions patched",
         load_list_revert_unload("xen_action_hooks_nofunc", "xen_action_hooks_nofunc")),
        ("action-hooks-marker", "action hooks with a marker function",
         load_list_revert_unload("xen_action_hooks_marker", "xen_action_hooks_marker")),
        ("action-hooks-noapply", "an apply action hook that fails",
         load_list_revert_unload("xen_action_hooks_noapply", "xen_action_hooks_noapply")),
        ("errors-misc", "unknown names, a missing file, a name longer than 127 bytes",
         lambda own, other: [
             lp("apply", "doesnotexist"), lp("revert", "doesnotexist"),
             lp("unload", "doesnotexist"), lp("upload", "hello2", "/nonexistent.livepatch"),
             lp("upload", "n" * 130, hello(own)), lp("list"), lp("frobnicate")]),
        # Last of the normal ones: a revert action hook that fails may leave it applied.
        ("action-hooks-norevert", "a revert action hook that fails",
         load_list_revert_unload("xen_action_hooks_norevert", "xen_action_hooks_norevert")),
        ("abbreviated-commands", "commands given by a prefix of their name (`lis`, `up`, "
         "`app`, `rev`, `unl`) and an empty command word",
         lambda own, other: [
             lp("lis"), lp("up", "xen_hello_world", hello(own)), lp("app", "xen_hello_world"),
             lp("list"), lp("rev", "xen_hello_world"), lp("unl", "xen_hello_world"), lp(""),
             lp("list")]),
    ]
    if series != "4.17":
        # xen-livepatch --force (Xen 4.19): the hypervisor takes the flag on upload only.
        table += [
            ("force", "xen-livepatch --force: alone, with list, upload of the other build's "
             "payload, load, and after the command",
             lambda own, other: [
                 lp("--force"), lp("--force", "list"),
                 lp("--force", "upload", "wrongbid", hello(other)),
                 lp("--force", "load", hello(own)), lp("list"),
                 lp("--force", "revert", "xen_hello_world"),
                 lp("unload", "xen_hello_world", "--force"),
                 lp("--force", "unload", "xen_hello_world"), lp("list")]),
            ("force-no-xen-buildid", "--force upload of a payload without "
             ".livepatch.xen_depends and of one whose expectations fail",
             lambda own, other: [
                 lp("--force", "upload", "nobid", f"{own}/xen_no_xen_buildid.livepatch"),
                 lp("--force", "load", f"{own}/xen_expectations_fail.livepatch"),
                 lp("list")]),
        ]
    table.append(("xl-dmesg-after", "xl dmesg after all of the above (livepatch log lines)",
                  lambda own, other: [["xl", "dmesg"]]))
    return table


# Steps whose EBUSY (rc 2) is the point of the scenario: not retried.
EXPECTED_BUSY = {("stacked-revert-ebusy", (LIVEPATCH, "revert", "xen_hello_world"))}
MAX_TRIES = 6

NOP_SCENARIO = ("nop-crash", "xen_nop does not fit this build (jmp __x86_return_thunk): "
                "applying it crashes the hypervisor; the SSH session dies")


# ------------------------------------------------------------------ running

class Host:
    def __init__(self, desc: dict):
        self.desc = desc
        self.port = desc["port"]
        self.key = Path(desc["identity_file"])
        self.version = desc.get("testbed_version", desc["xen_version"])
        # A short path: a UNIX socket path has at most 107 bytes.
        self.control_dir = tempfile.mkdtemp(prefix="nrx-ssh-")

    def close(self) -> None:
        """Ends the shared SSH connection and removes its socket directory."""
        subprocess.run(["ssh", "-o", f"ControlPath={self.control_dir}/%C", "-O", "exit",
                        "-p", str(self.port), "root@127.0.0.1"], capture_output=True,
                       check=False, timeout=30)
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def run(self, argv: list[str], timeout: float = 120, attempts: int = 3) -> dict:
        # One SSH connection per host, reused: key exchange is slow under emulation.
        argv_ssh = tb.ssh_argv(self.port, self.key, argv)
        control = ["-o", "ControlMaster=auto", "-o", "ControlPersist=120",
                   "-o", f"ControlPath={self.control_dir}/%C"]
        argv_ssh[1:1] = control
        for _attempt in range(attempts):  # rc 255 is SSH's own failure: connect again
            proc = subprocess.run(argv_ssh, capture_output=True, timeout=timeout, check=False)
            if proc.returncode != 255:
                break
            time.sleep(3)
        if proc.returncode == 255:
            raise tb.TestbedError(f"ssh to {self.desc['name']} failed for {argv}: "
                                  f"{proc.stderr.decode(errors='replace')}")
        return {"argv": list(argv), "rc": proc.returncode, "stdout": proc.stdout,
                "stderr": proc.stderr}

    def run_retrying(self, argv: list[str], expect_busy: bool = False,
                     timeout: float = 120) -> list[dict]:
        """Runs argv; when xen-livepatch answers rc 2 (busy: the CPUs could not be quiesced
        in time, which happens on a loaded machine) and that is not what the scenario
        provokes, records the answer and retries like an operator would: every try is a
        step of the transcript."""
        steps = [self.run(argv, timeout)]
        retryable = argv[:1] == [LIVEPATCH] and argv[1:2] != ["list"] and not expect_busy
        while retryable and steps[-1]["rc"] == 2 and len(steps) < MAX_TRIES:
            time.sleep(1)
            steps.append(self.run(argv, timeout))
        return steps

    def payload_names(self) -> list[tuple[str, str]]:
        out = self.run(lp("list"))["stdout"].decode()
        rows = []
        for line in out.splitlines()[2:]:
            if "|" in line and not line.startswith(" "):
                name, state = line.split("|")[0].strip(), line.split("|")[1].strip()
                rows.append((name, state.split(" ")[0]))
        return rows

    def reset(self) -> None:
        """Reverts and unloads every payload (top of the stack first)."""
        for _attempt in range(5):
            rows = self.payload_names()
            if not rows:
                return
            for name, state in reversed(rows):
                if state == "APPLIED":
                    self.run(lp("revert", name))
            for name, _state in reversed(self.payload_names()):
                self.run(lp("unload", name))
        raise tb.TestbedError(f"{self.desc['name']}: could not clean up: {self.payload_names()}")


# ------------------------------------------------------------------ YAML writing

def literal_block(text: str, indent: str) -> str | None:
    """`text` as a YAML literal block whose content sits at `indent`, or None when a
    literal block cannot hold it exactly."""
    if text.strip("\n") == "" or any((ord(c) < 32 and c not in "\n\t") or c in "\x7f\ufeff" for c in text):
        return None
    if text.endswith("\n\n"):
        chomp = "+"
    elif text.endswith("\n"):
        chomp = ""
    else:
        chomp = "-"
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    if chomp == "+":
        lines = text.split("\n")[:-1]
    out = [f"|2{chomp}"]
    for line in lines:
        out.append(indent + line if line else "")
    return "\n".join(out)


def scalar(text: str, indent: str) -> str:
    block = literal_block(text, indent)
    return block if block is not None else json.dumps(text)


def decode(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def render(build: tb.XenBuild, name: str, description: str, steps: list[dict]) -> str:
    lines = [
        "# Captured on a real Xen hypervisor by tests/testbed/capture_transcripts.py.",
        "# Do not edit: stdout and stderr are byte for byte what the commands printed.",
        "build:",
        f"  version: {json.dumps(build.version)}",
        f"  debian_version: {json.dumps(build.debian_version)}",
        f"  build_id: {json.dumps(build.build_id)}",
        *([f"  xen_version: {json.dumps(build.xen_version)}"]
          if build.xen_version != build.version else []),
        f"scenario: {json.dumps(name)}",
        f"description: {json.dumps(description)}",
        "steps:",
    ]
    for step in steps:
        lines.append(f"  - argv: {json.dumps(step['argv'])}")
        lines.append(f"    rc: {json.dumps(step['rc'])}")
        if step.get("note"):
            lines.append(f"    note: {json.dumps(step['note'])}")
        for stream in ("stdout", "stderr"):
            text, lossy = decode(step[stream])
            lines.append(f"    {stream}: {scalar(text, '      ')}")
            if lossy:
                lines.append(f"    {stream}_not_utf8: true")
    return "\n".join(lines) + "\n"


def check_round_trip(path: Path, steps: list[dict]) -> None:
    import yaml  # PyYAML: only for the check

    data = yaml.safe_load(path.read_text())
    for got, want in zip(data["steps"], steps, strict=True):
        for stream in ("stdout", "stderr"):
            if got[stream].encode() != want[stream] and not got.get(f"{stream}_not_utf8"):
                raise tb.TestbedError(f"{path}: {stream} of {want['argv']} does not read back "
                                      f"exactly")
        if got["argv"] != want["argv"] or got["rc"] != want["rc"]:
            raise tb.TestbedError(f"{path}: argv/rc do not read back")


def write_transcript(build: tb.XenBuild, name: str, description: str, steps: list[dict]) -> Path:
    out_dir = OUT_ROOT / f"xen-{build.version}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yml"
    path.write_text(render(build, name, description, steps))
    check_round_trip(path, steps)
    return path


# ------------------------------------------------------------------ main

def local_payloads(layout: tb.Layout, payload_set: str) -> Path:
    return layout.payloads(tb.ALL_BUILDS[payload_set])


def capturable(versions: list[str]) -> None:
    """Refuses a build the testbed has no payloads for (its transcripts need them)."""
    for version in versions:
        build = tb.ALL_BUILDS.get(version)
        if build is None or version not in PAYLOAD_DIRS:
            raise tb.TestbedError(
                f"{version}: cannot be captured: the testbed has payloads for {', '.join(PAYLOAD_DIRS)} only "
                f"(Debian's archive does not serve Xen {build.series if build else version}'s source; "
                "see testbed_lib.PAYLOAD_SOURCES)")


def copy_payloads(host: Host, layout: tb.Layout) -> None:
    for payload_set in (host.version, OTHER_PAYLOADS[host.version]):
        remote_dir = PAYLOAD_DIRS[payload_set]
        host.run(["mkdir", "-p", remote_dir])
        files = sorted(str(p) for p in local_payloads(layout, payload_set).glob("*.livepatch"))
        tb.run(["scp", "-q", "-P", str(host.port), "-i", str(host.key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", *files, f"root@127.0.0.1:{remote_dir}/"])


def capture_host(host: Host, only: set[str]) -> list[Path]:
    build = tb.ALL_BUILDS[host.version]
    own = PAYLOAD_DIRS[host.version]
    other = PAYLOAD_DIRS[OTHER_PAYLOADS[host.version]]
    written = []
    for name, description, make_steps in scenarios(build.series):
        if only and name not in only:
            continue
        host.reset()
        steps = []
        busy_left = {argv for scenario, argv in EXPECTED_BUSY if scenario == name}
        for argv in make_steps(own, other):
            expect_busy = tuple(argv) in busy_left
            busy_left.discard(tuple(argv))  # only its first occurrence is meant to be busy
            steps += host.run_retrying(argv, expect_busy=expect_busy)
        path = write_transcript(build, name, description, steps)
        rcs = ",".join(str(s["rc"]) for s in steps)
        tb.log(f"{host.version} {name}: {len(steps)} steps (rc {rcs}) -> "
               f"{path.relative_to(REPO)}")
        written.append(path)
    return written


def capture_nop(host: Host) -> Path:
    """Applies xen_nop, which kills this hypervisor build (DOUBLE FAULT). Busy answers
    (rc 2) are recorded and retried; the try that crashes never answers: it is recorded
    with rc null and a note, and the serial console from the crash on is saved beside."""
    build = tb.ALL_BUILDS[host.version]
    host.reset()
    own = PAYLOAD_DIRS[host.version]
    steps = [host.run(lp("upload", "xen_nop", f"{own}/xen_nop.livepatch")), host.run(lp("list"))]
    apply = lp("apply", "xen_nop")
    for _try in range(MAX_TRIES):
        try:
            step = host.run(apply, timeout=90, attempts=1)
        except subprocess.TimeoutExpired:
            step = None
        except tb.TestbedError:  # ssh itself failed: the connection died with Xen
            step = None
        if step is None:
            steps.append({"argv": apply, "rc": None, "stdout": b"", "stderr": b"",
                          "note": "no answer: the hypervisor crashed (see nop-crash.serial.txt)"})
            break
        steps.append(step)
        if step["rc"] != 2:
            break
        time.sleep(1)
    name, description = NOP_SCENARIO
    path = write_transcript(build, name, description, steps)
    time.sleep(5)
    serial = Path(host.desc["serial_log"]).read_text(errors="replace").splitlines()
    first = next((i for i, line in enumerate(serial) if "xen_nop" in line), 0)
    kept, repeats = [], 0
    for line in serial[first:]:
        if kept and line == kept[-1]:
            repeats += 1
            continue
        if repeats:
            kept.append(f"[the line above repeated {repeats} more times]")
            repeats = 0
        kept.append(line)
    if repeats:
        kept.append(f"[the line above repeated {repeats} more times]")
    crash = OUT_ROOT / f"xen-{host.version}" / "nop-crash.serial.txt"
    crash.write_text("\n".join(kept[:200]) + "\n")
    tb.log(f"{host.version} nop-crash -> {path.relative_to(REPO)} (+ serial console from the crash)")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="SCENARIO")
    parser.add_argument("--versions", default="4.17.5,4.17.7",
                        help="builds to capture, comma-separated")
    parser.add_argument("--with-nop", action="store_true",
                        help="finally crash a 4.17.5 host with xen_nop and record it")
    args = parser.parse_args()
    tb.require_root_and_apt()
    layout = tb.Layout()
    versions = [v for v in args.versions.split(",") if v]
    capturable(versions)
    run_dir = layout.root / "run" / "capture"
    if run_dir.exists():
        testbed_hosts.down(run_dir)
    specs = [f"cap{v.replace('.', '')}={v}" for v in versions]
    testbed_hosts.up(run_dir, specs, timeout=180)
    hosts: list[Host] = []
    try:
        hosts = [Host(h) for h in testbed_hosts.read_state(run_dir)]
        for host in hosts:
            copy_payloads(host, layout)
        for host in hosts:
            capture_host(host, set(args.only))
        if args.with_nop:
            target = next((h for h in hosts if h.version == "4.17.5"), hosts[0])
            capture_nop(target)
    finally:
        for host in hosts:
            host.close()
        testbed_hosts.down(run_dir)
    return 0


if __name__ == "__main__":
    tb.main_guard(main)
