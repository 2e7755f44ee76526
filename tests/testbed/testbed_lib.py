"""Shared pieces of the real Xen testbed: the two Debian Xen builds, the cache layout,
running commands as argv lists, QEMU's command line and QMP, and SSH to a dom0.

Nothing here builds a shell string: every command is an argv list.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The real Xen builds Debian ships. build_id is what `xl info` reports and what a
# payload's .livepatch.xen_depends must carry.


@dataclass(frozen=True)
class XenBuild:
    version: str          # upstream version, as `xl info` reports xen_version
    debian_version: str   # the Debian package version
    build_id: str         # GNU build-id of the hypervisor (xen-syms)
    series: str = "4.17"  # Debian's package series: xen-hypervisor-<series>-amd64, xen-utils-<series>
    suite: str = "bookworm"  # the Debian release that ships it (and the dom0 image's suite)
    # What `xl info` reports as xen_version when it is not `version`: Debian 13's
    # 4.20.4+63-g7abfd2bce2 is upstream's stable-4.20 after RELEASE-4.20.4, which calls
    # itself 4.20.5-pre (Debian 12's 4.17.5+72 and 4.17.7+13 report 4.17.5 and 4.17.7).
    reported_version: str = ""

    @property
    def xen_version(self) -> str:
        return self.reported_version or self.version

    @property
    def generation(self) -> str:
        return self.series


# Debian 12 (bookworm): the default testbed (main and bookworm-security).
BUILDS = {
    "4.17.5": XenBuild("4.17.5", "4.17.5+72-g01140da4e8-1",
                       "39a640e6f1412319235087391df9f1c5e13ae920"),
    "4.17.7": XenBuild("4.17.7", "4.17.7+13-g2445b30a44-0+deb12u1",
                       "151b373fd64b321593bf987fd923cd10dabadac4"),
}
# Debian 13 (trixie): its one Xen 4.20 build (trixie and trixie-security carry the same
# version). Built only on request (build_testbed.py --generation 4.20).
BUILDS_420 = {
    "4.20.4": XenBuild("4.20.4", "4.20.4+63-g7abfd2bce2-0+deb13u1",
                       "576c0736b3e38388c5afe9aaccc43a18d514e88e", series="4.20",
                       suite="trixie", reported_version="4.20.5-pre"),
}
GENERATIONS = {"4.17": BUILDS, "4.20": BUILDS_420}
ALL_BUILDS = {**BUILDS, **BUILDS_420}

# The Debian source package the 4.17 payloads are compiled from (4.17.7's source is not
# downloadable from the archive; its payloads are built from this source against
# the 4.17.7 xen-syms, which is what gives them the 4.17.7 build-id).
SOURCE_VERSION = "4.17.5+72-g01140da4e8-1"
# The generations whose test payloads the testbed can build: from a Debian source package that
# Debian's archive serves. Debian 13's Xen source (xen_4.20.4+63-g7abfd2bce2-0+deb13u1, and sid's
# 4.20.4+39-gf1e1321c87-1) answers 404 for its .dsc and tarballs although the Sources indexes list
# it (checked 2026-12-03), so 4.20 hosts get no payloads: they boot, report facts and reboot, but
# nothing is live patched on them. The testbed builds nothing from sources outside Debian's archive.
PAYLOAD_SOURCES = {"4.17": SOURCE_VERSION}

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITE = "bookworm"  # the machine's own release, and the default dom0's

# Packages of the dom0 image (debootstrap --variant=minbase --include=...).
DOM0_PACKAGES = (
    "systemd-sysv", "udev", "dbus", "openssh-server", "python3", "iproute2", "kmod",
    "initramfs-tools", "linux-image-amd64", "xen-utils-4.17", "procps", "busybox",
    "ca-certificates",
)
# Bump when the image recipe (packages or the configuration in build_testbed.py) changes.
IMAGE_RECIPE_REVISION = "1"
SUITE_SERIES = {"bookworm": "4.17", "trixie": "4.20"}


def dom0_packages(suite: str = SUITE) -> tuple[str, ...]:
    """The dom0 image's packages for `suite`: the same list with that suite's xen-utils."""
    series = SUITE_SERIES[suite]
    return tuple(f"xen-utils-{series}" if p.startswith("xen-utils-") else p
                 for p in DOM0_PACKAGES)


GUEST_RAM_MB = 2048
DOM0_MEM = "1024M"
XEN_CMDLINE = (f"console=com1 com1=115200,8n1 dom0_mem={DOM0_MEM},max:{DOM0_MEM} "
               "loglvl=all guest_loglvl=all noreboot")
DOM0_CMDLINE = "root=/dev/vda ro console=hvc0 quiet"


class TestbedError(Exception):
    """A testbed step failed; the message says what and how to look further."""


def log(msg: str) -> None:
    print(f"[testbed {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("NOREBOOT_XEN_TESTBED_CACHE", "/var/cache/noreboot-xen-testbed"))


def image_key(suite: str = SUITE) -> str:
    """Names the dom0 image by its recipe, so a changed recipe builds a new one."""
    recipe = json.dumps({"suite": suite, "packages": dom0_packages(suite),
                         "revision": IMAGE_RECIPE_REVISION}, sort_keys=True)
    return f"{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


class Layout:
    """Where everything lives in the cache. payloads/<version>/ is a contract other
    developers rely on: keep it stable."""

    def __init__(self, root: Path | None = None):
        self.root = root or cache_dir()

    def debs(self, build: XenBuild) -> Path:
        return self.root / "debs" / build.debian_version

    def xen(self, build: XenBuild) -> Path:
        return self.root / "xen" / build.debian_version

    def xen_elf(self, build: XenBuild) -> Path:
        return self.xen(build) / f"xen-{build.series}-amd64"

    def xen_syms(self, build: XenBuild) -> Path:
        return self.xen(build) / f"xen-syms-{build.series}-amd64"

    def xen_config(self, build: XenBuild) -> Path:
        """The hypervisor's Kconfig as Debian ships it (/boot/xen-<series>-amd64.config;
        4.17's package has none: its config comes from its source package)."""
        return self.xen(build) / f"xen-{build.series}-amd64.config"

    def source(self, series: str = "4.17") -> Path:
        return self.root / "source" / PAYLOAD_SOURCES[series]

    def payloads(self, build: XenBuild) -> Path:
        return self.root / "payloads" / build.version

    def apt_dir(self, suite: str) -> Path:
        return self.root / "apt" / suite

    def dom0(self, suite: str = SUITE) -> Path:
        return self.root / "dom0" / image_key(suite)

    def dom0_disk(self, suite: str = SUITE) -> Path:
        return self.dom0(suite) / "dom0.qcow2"

    def dom0_kernel(self, suite: str = SUITE) -> Path:
        return self.dom0(suite) / "vmlinuz"

    def dom0_initrd(self, suite: str = SUITE) -> Path:
        return self.dom0(suite) / "initrd.img"

    def ssh_key(self, suite: str = SUITE) -> Path:
        return self.dom0(suite) / "id_ed25519"

    def golden(self, build: XenBuild) -> Path:
        return self.root / "golden" / f"{build.debian_version}-{image_key(build.suite)}"

    def golden_disk(self, build: XenBuild) -> Path:
        return self.golden(build) / "disk.qcow2"

    def golden_state(self, build: XenBuild) -> Path:
        return self.golden(build) / "vm.state"

    def default_run_dir(self) -> Path:
        return self.root / "run" / "default"


def run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None,
        check: bool = True, capture: bool = False, timeout: float | None = None,
        logfile: Path | None = None) -> subprocess.CompletedProcess:
    """Runs argv (a list, never a shell string). With logfile, output is appended there
    and the tail is shown if the command fails."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            out.write(("\n$ " + " ".join(argv) + "\n").encode())
            out.flush()
            proc = subprocess.run(argv, cwd=cwd, env=full_env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise TestbedError(f"command failed (rc={proc.returncode}): {' '.join(argv)}\n"
                               f"--- last lines of {logfile} ---\n{tail(logfile, 30)}")
        return proc
    proc = subprocess.run(argv, cwd=cwd, env=full_env, timeout=timeout, check=False,
                          capture_output=capture, text=capture)
    if check and proc.returncode != 0:
        detail = ""
        if capture:
            detail = f"\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        raise TestbedError(f"command failed (rc={proc.returncode}): {' '.join(argv)}{detail}")
    return proc


def apt_options(layout: Layout, suite: str) -> list[str]:
    """apt-get options that read `suite`'s archive (main and -security) through a private
    configuration in the cache, leaving the machine's own sources alone. The machine's
    own suite needs none. Call apt_update first."""
    if suite == SUITE:
        return []
    base = layout.apt_dir(suite)
    return ["-o", f"Dir::Etc::sourcelist={base / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=/nonexistent",
            "-o", f"Dir::State::Lists={base / 'lists'}", "-o", f"Dir::Cache={base / 'cache'}"]


def apt_update(layout: Layout, suite: str, logfile: Path) -> list[str]:
    """Writes the private apt configuration of `suite` and updates its lists (once per
    process); returns the options for apt-get."""
    if suite == SUITE:
        return []
    base = layout.apt_dir(suite)
    (base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    (base / "sources.list").write_text(
        f"deb [signed-by={keyring}] {DEBIAN_MIRROR} {suite} main\n"
        f"deb [signed-by={keyring}] {DEBIAN_SECURITY_MIRROR} {suite}-security main\n")
    options = apt_options(layout, suite)
    if suite not in _APT_UPDATED:
        run(["apt-get", "-q", *options, "update"], logfile=logfile)
        _APT_UPDATED.add(suite)
    return options


_APT_UPDATED: set[str] = set()


def tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def require_root_and_apt() -> None:
    if os.geteuid() != 0:
        raise TestbedError("the Xen testbed needs root (debootstrap, apt-get, QEMU images)")
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise TestbedError("the Xen testbed needs a Debian machine with apt-get and dpkg")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something still listens on (or holds) 127.0.0.1:port. Connections of a
    stopped host left in TIME-WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------- ELF notes

def gnu_build_id_of_section(elf: Path, section: str, workdir: Path) -> str:
    """The GNU build-id stored as a note in `section` of `elf` (objcopy extracts it)."""
    out = workdir / (elf.name + section.replace("/", "_") + ".bin")
    run(["objcopy", "-O", "binary", f"--only-section={section}", str(elf), str(out)])
    data = out.read_bytes()
    out.unlink()
    if len(data) < 16:
        raise TestbedError(f"{elf}: no {section} note found")
    namesz = int.from_bytes(data[0:4], "little")
    descsz = int.from_bytes(data[4:8], "little")
    note_type = int.from_bytes(data[8:12], "little")
    name_end = 12 + ((namesz + 3) & ~3)
    name = data[12:12 + namesz].rstrip(b"\0")
    if name != b"GNU" or note_type != 3:
        raise TestbedError(f"{elf}: {section} is not a GNU build-id note")
    return data[name_end:name_end + descsz].hex()


# ---------------------------------------------------------------- QEMU

def qemu_argv(*, xen_elf: Path, kernel: Path, initrd: Path, disk: Path, port: int,
              serial_log: Path, qmp_socket: Path, incoming_state: Path | None = None,
              pidfile: Path | None = None) -> list[str]:
    for path in (xen_elf, kernel, initrd, disk, serial_log, qmp_socket):
        if "," in str(path):
            raise TestbedError(f"QEMU cannot take a path with a comma: {path}")
    argv = [
        "qemu-system-x86_64", "-M", "pc", "-cpu", "max,-smap,-smep", "-smp", "2",
        "-m", str(GUEST_RAM_MB), "-accel", "tcg,thread=multi",
        "-display", "none", "-vga", "none", "-no-reboot", "-nodefaults",
        "-serial", f"file:{serial_log}",
        "-qmp", f"unix:{qmp_socket},server=on,wait=off",
        "-kernel", str(xen_elf), "-append", XEN_CMDLINE,
        "-initrd", f"{kernel} {DOM0_CMDLINE},{initrd}",
        "-drive", f"file={disk},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
    ]
    if pidfile is not None:
        argv += ["-pidfile", str(pidfile)]
    if incoming_state is not None:
        # QEMU runs `cat` itself; the path is one argument of that exec command line.
        if " " in str(incoming_state):
            raise TestbedError(f"state path must not contain spaces: {incoming_state}")
        argv += ["-incoming", f"exec:cat < {incoming_state}"]
    return argv


class Qmp:
    """A minimal QMP client on QEMU's UNIX socket."""

    def __init__(self, path: Path, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise TestbedError(f"QMP socket {path} did not come up")
                time.sleep(0.2)
        self.buf = b""
        self._read_message()  # greeting
        self.command("qmp_capabilities")

    def _read_message(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise TestbedError("QMP connection closed by QEMU")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name: str, **arguments) -> object:
        message = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read_message()
            if "event" in reply:
                continue
            if "error" in reply:
                raise TestbedError(f"QMP {name} failed: {reply['error']}")
            return reply.get("return")

    def status(self) -> str:
        return self.command("query-status")["status"]

    def close(self) -> None:
        self.sock.close()


def save_vm_state(qmp: Qmp, state_file: Path, timeout: float = 300) -> None:
    """Stops the VM and writes its whole state (RAM and devices) to state_file."""
    if " " in str(state_file):
        raise TestbedError(f"state path must not contain spaces: {state_file}")
    qmp.command("stop")
    qmp.command("migrate", uri=f"exec:cat > {state_file}")
    deadline = time.monotonic() + timeout
    while True:
        info = qmp.command("query-migrate")
        status = info.get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise TestbedError(f"saving VM state failed: {info}")
        if time.monotonic() > deadline:
            raise TestbedError(f"saving VM state timed out: {info}")
        time.sleep(0.5)


# ---------------------------------------------------------------- SSH

def ssh_argv(port: int, identity: Path, remote: list[str], user: str = "root",
             connect_timeout: int = 30) -> list[str]:
    """ssh to a dom0 on loopback. ssh hands the remote side one command line, so every
    word of the remote argv is quoted: the dom0 runs exactly that argv."""
    return ["ssh", "-p", str(port), "-i", str(identity),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=15",
            f"{user}@127.0.0.1", "--", shlex.join(remote)]


def ssh(port: int, identity: Path, remote: list[str], timeout: float = 180,
        check: bool = True, attempts: int = 3) -> subprocess.CompletedProcess:
    """Runs remote argv on the dom0; returns stdout/stderr as bytes. A failure of SSH
    itself (rc 255: on a loaded machine the emulated dom0 can miss the banner timeout)
    is retried; the remote command's own failures are not."""
    for attempt in range(1, attempts + 1):
        try:
            proc = subprocess.run(ssh_argv(port, identity, remote), capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            if attempt == attempts:
                raise TestbedError(f"ssh {shlex.join(remote)}: no answer in {timeout} s") from None
            continue
        if proc.returncode != 255:
            break
        time.sleep(2)
    if check and proc.returncode != 0:
        raise TestbedError(f"ssh {shlex.join(remote)} failed rc={proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-1000:]}")
    return proc


def wait_for_ssh(port: int, identity: Path, timeout: float, alive=None) -> float:
    """Waits until `true` runs over SSH; returns seconds waited. alive() (optional)
    says whether the VM still runs, so a dead QEMU fails fast."""
    start = time.monotonic()
    while True:
        if alive is not None and not alive():
            raise TestbedError("QEMU exited before dom0 answered on SSH")
        try:
            proc = subprocess.run(ssh_argv(port, identity, ["true"], connect_timeout=15),
                                  capture_output=True, timeout=60, check=False)
            if proc.returncode == 0:
                return time.monotonic() - start
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() - start > timeout:
            raise TestbedError(f"dom0 did not answer on SSH port {port} within {timeout:.0f} s")
        time.sleep(1)


def parse_xl_info(text: str) -> dict[str, str]:
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def xl_info(port: int, identity: Path) -> dict[str, str]:
    return parse_xl_info(ssh(port, identity, ["xl", "info"]).stdout.decode())


def main_guard(func) -> None:
    """Runs func(); a TestbedError becomes one clear message and exit status 1."""
    try:
        sys.exit(func())
    except TestbedError as exc:
        print(f"testbed: ERROR: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
