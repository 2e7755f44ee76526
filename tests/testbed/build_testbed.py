"""Builds the real Xen testbed into one cache directory, or reuses what is cached.

Run as root on Debian 12 with the Debian archive reachable:

    python3 tests/testbed/build_testbed.py            # build what is missing
    NOREBOOT_XEN_TESTBED_CACHE=/some/dir python3 ...  # another cache

What it makes (see tests/testbed/README.md for the layout):
  * the Debian hypervisors 4.17.5 and 4.17.7 with their xen-syms (apt-get download);
  * Xen's test payloads (xen/test/livepatch) for both builds, from Debian's 4.17.5 source,
    checked to carry the right hypervisor build-id in .livepatch.xen_depends;
  * a small dom0 disk image (debootstrap minbase bookworm) with xen-utils, sshd, python3
    and a generated SSH key;
  * per build, a booted snapshot (disk + saved VM state) that hosts.py resumes clones from.

With `--generation 4.20` (or `--generation all`) it makes the same for Debian 13's Xen
4.20.4 but the payloads: trixie's hypervisor and -dbg (a private apt configuration in the
cache), a trixie dom0 with xen-utils-4.20 and its booted snapshot. Debian's archive does not
serve Debian 13's Xen source (testbed_lib.PAYLOAD_SOURCES), and nothing is built from other
sources, so 4.20 hosts have no payloads.

Every step leaves a `.done` marker after it succeeded; a second run skips what is done.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import testbed_lib as tb  # noqa: E402

HOST_PACKAGES = (
    "qemu-system-x86", "qemu-utils", "debootstrap", "build-essential", "bison", "flex",
    "python3", "dpkg-dev", "e2fsprogs", "openssh-client", "binutils", "xz-utils",
)
SOURCES_FILE = Path("/etc/apt/sources.list.d/noreboot-xen-testbed-src.sources")
SOURCES_TEXT = f"""\
# Written by noreboot.xen tests/testbed/build_testbed.py: Debian's Xen source for the test payloads.
Types: deb-src
URIs: {tb.DEBIAN_MIRROR}
Suites: {tb.SUITE}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

PAYLOAD_NAMES = (
    "xen_hello_world", "xen_bye_world", "xen_replace_world", "xen_nop", "xen_no_xen_buildid",
    "xen_prepost_hooks", "xen_prepost_hooks_fail", "xen_action_hooks",
    "xen_action_hooks_nofunc", "xen_action_hooks_marker", "xen_action_hooks_noapply",
    "xen_action_hooks_norevert", "xen_expectations", "xen_expectations_fail",
)
# Payloads that deliberately carry no .livepatch.xen_depends.
PAYLOADS_WITHOUT_XEN_DEPENDS = {"xen_no_xen_buildid"}


def done_marker(directory: Path) -> Path:
    return directory / ".done"


def is_done(directory: Path) -> bool:
    return done_marker(directory).exists()


def mark_done(directory: Path, info: dict | None = None) -> None:
    done_marker(directory).write_text(json.dumps(info or {}, indent=2, sort_keys=True) + "\n")


def fresh_dir(directory: Path) -> Path:
    """Empties directory for a step that did not finish before."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


# ------------------------------------------------------------------ host packages

def ensure_host_packages(logdir: Path) -> None:
    missing = [p for p in HOST_PACKAGES
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                 text=True, check=False).stdout != "install ok installed"]
    need_src = not SOURCES_FILE.exists()
    if need_src:
        tb.log(f"adding deb-src entry {SOURCES_FILE}")
        SOURCES_FILE.write_text(SOURCES_TEXT)
    if missing or need_src:
        tb.run(["apt-get", "update", "-q"], logfile=logdir / "apt.log")
    if missing:
        tb.log(f"apt-get install {' '.join(missing)}")
        tb.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
               env={"DEBIAN_FRONTEND": "noninteractive"}, logfile=logdir / "apt.log")


# ------------------------------------------------------------------ hypervisors

def fetch_hypervisor(layout: tb.Layout, build: tb.XenBuild, logdir: Path) -> None:
    """Downloads the hypervisor and its -dbg package; unpacks xen (uncompressed ELF, as
    QEMU's multiboot loader wants it) and xen-syms; checks the build-id."""
    out = layout.xen(build)
    if is_done(out):
        return
    package = f"xen-hypervisor-{build.series}-amd64"
    tb.log(f"{build.version}: downloading {package}{{,-dbg}}={build.debian_version}")
    debs = fresh_dir(layout.debs(build))
    log = logdir / f"hypervisor-{build.version}.log"
    apt = tb.apt_update(layout, build.suite, log)
    tb.run(["apt-get", *apt, "download", f"{package}={build.debian_version}",
            f"{package}-dbg={build.debian_version}"], cwd=debs, logfile=log)
    fresh_dir(out)
    with tempfile.TemporaryDirectory(dir=layout.root) as tmp:
        unpacked = Path(tmp)
        for deb in sorted(debs.glob("*.deb")):
            tb.run(["dpkg-deb", "-x", str(deb), str(unpacked)], logfile=log)
        gz = unpacked / "boot" / f"xen-{build.series}-amd64.gz"
        if not gz.exists():
            candidates = sorted((unpacked / "boot").glob("xen-*.gz"))
            if not candidates:
                raise tb.TestbedError(f"no /boot/xen-*.gz in the {build.debian_version} package")
            gz = candidates[0]
        with gzip.open(gz.resolve(), "rb") as src, open(layout.xen_elf(build), "wb") as dst:
            shutil.copyfileobj(src, dst)
        syms = sorted((unpacked / "usr" / "lib" / "debug" / "boot").glob("xen-syms-*"))
        if not syms:
            raise tb.TestbedError(f"no xen-syms in the {build.debian_version} -dbg package")
        shutil.copyfile(syms[0].resolve(), layout.xen_syms(build))
        config = unpacked / "boot" / f"xen-{build.series}-amd64.config"
        if config.exists():
            shutil.copyfile(config, layout.xen_config(build))
        build_id = tb.gnu_build_id_of_section(layout.xen_syms(build), ".note.gnu.build-id",
                                              Path(tmp))
    if build_id != build.build_id:
        raise tb.TestbedError(f"xen-syms of {build.debian_version} has build-id {build_id}, "
                              f"expected {build.build_id}")
    mark_done(out, {"build_id": build_id, "debian_version": build.debian_version})
    tb.log(f"{build.version}: hypervisor ready, build-id {build_id}")


# ------------------------------------------------------------------ payloads

def xen_make_args(src: Path) -> list[str]:
    """The make variables of Debian's debian/rules (make_args_xen) for amd64."""
    return [
        "CC=x86_64-linux-gnu-gcc", "LD=x86_64-linux-gnu-ld", "XEN_COMPILE_ARCH=x86_64",
        "XEN_TARGET_ARCH=x86_64",
        f"EXTRA_CFLAGS_XEN_CORE=-ffile-prefix-map={src}=. -fdebug-prefix-map={src}=.",
    ]


def source_date_env(src: Path) -> dict[str, str]:
    epoch = tb.run(["dpkg-parsechangelog", "-l", str(src / "debian" / "changelog"),
                    "-STimestamp"], capture=True).stdout.strip()

    def date(fmt: list[str]) -> str:
        return tb.run(["date", "-u", "-d", f"@{epoch}", *fmt], capture=True,
                      env={"LC_ALL": "C"}).stdout.strip()

    return {"SOURCE_DATE_EPOCH": epoch, "XEN_BUILD_DATE": date([]),
            "XEN_BUILD_TIME": date(["+%T"]), "LC_ALL": "C",
            "WGET": "/bin/false", "GIT": "/bin/false"}


def build_hypervisor_tree(layout: tb.Layout, logdir: Path) -> Path:
    """apt-get source of Debian's Xen 4.17.5 and a build of its hypervisor with Debian's
    own configuration: the objects and headers the test payloads are compiled against."""
    root = layout.source()
    src = root / "xen-src"
    if is_done(root):
        return src
    log = logdir / "hypervisor-source-build.log"
    fresh_dir(root)
    tb.log(f"apt-get source xen={tb.SOURCE_VERSION}")
    tb.run(["apt-get", "source", "-q", "--download-only", f"xen={tb.SOURCE_VERSION}"],
           cwd=root, logfile=log)
    dsc = next(root.glob("xen_*.dsc"))
    tb.run(["dpkg-source", "-x", str(dsc), str(src)], cwd=root, logfile=log)
    env = source_date_env(src)
    args = xen_make_args(src)
    shutil.copyfile(src / "debian" / "xen-kconfig", src / "xen" / ".config")
    tb.log("building the 4.17.5 hypervisor from source (about 1-3 min)")
    tb.run(["make", "-C", "xen", "olddefconfig", *args], cwd=src, env=env, logfile=log)
    jobs = str(os.cpu_count() or 2)
    tb.run(["make", f"-j{jobs}", "-C", "xen", *args], cwd=src, env=env, logfile=log)
    mark_done(root)
    return src


def build_payloads(layout: tb.Layout, build: tb.XenBuild, src: Path, logdir: Path) -> None:
    """Builds xen/test/livepatch against `build`'s xen-syms and checks every payload's
    .livepatch.xen_depends."""
    out = layout.payloads(build)
    syms_file = layout.xen_syms(build)
    build_id = build.build_id
    if is_done(out):
        return
    log = logdir / f"payloads-{out.name}.log"
    tb.log(f"{out.name}: building test payloads")
    testdir = src / "xen" / "test" / "livepatch"
    # Start from a clean test directory: config.h and note objects depend on xen-syms.
    for pattern in ("*.o", "*.livepatch", "config.h", ".*.cmd", "*.bin"):
        for path in testdir.glob(pattern):
            path.unlink()
    syms = src / "xen" / "xen-syms"
    shutil.copyfile(syms_file, syms)
    os.utime(syms)
    env = source_date_env(src)
    tb.run(["make", "-C", "xen", "tests", *xen_make_args(src)], cwd=src, env=env, logfile=log)
    fresh_dir(out)
    manifest = {}
    with tempfile.TemporaryDirectory(dir=layout.root) as tmp:
        for name in PAYLOAD_NAMES:
            built = testdir / f"{name}.livepatch"
            if not built.exists():
                raise tb.TestbedError(f"payload {name} was not built; see {log}")
            target = out / f"{name}.livepatch"
            shutil.copyfile(built, target)
            entry = {"sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                     "size": target.stat().st_size}
            if name in PAYLOADS_WITHOUT_XEN_DEPENDS:
                entry["xen_depends"] = None
            else:
                depends = tb.gnu_build_id_of_section(target, ".livepatch.xen_depends", Path(tmp))
                if depends != build_id:
                    raise tb.TestbedError(
                        f"{target}: .livepatch.xen_depends is {depends}, expected {build_id}")
                entry["xen_depends"] = depends
            manifest[name] = entry
    (out / "manifest.json").write_text(json.dumps(
        {"xen_version": build.version, "debian_version": build.debian_version, "build_id": build_id, "payloads": manifest}, indent=2, sort_keys=True) + "\n")
    mark_done(out, {"build_id": build_id})
    tb.log(f"{out.name}: {len(manifest)} payloads, xen_depends checked = {build_id}")


def hypervisors_and_payloads(layout: tb.Layout, logdir: Path,
                             builds: dict[str, tb.XenBuild]) -> None:
    for build in builds.values():
        fetch_hypervisor(layout, build, logdir)
    for series in sorted({b.series for b in builds.values()}):
        of_series = [b for b in builds.values() if b.series == series]
        if series not in tb.PAYLOAD_SOURCES:
            tb.log(f"{series}: no payloads (Debian's archive does not serve this generation's Xen source)")
            continue
        wanted = [layout.payloads(b) for b in of_series]
        if all(is_done(p) for p in wanted):
            continue
        src = build_hypervisor_tree(layout, logdir)
        for build in of_series:
            build_payloads(layout, build, src, logdir)


# ------------------------------------------------------------------ dom0 image

DOM0_FILES = {
    "etc/fstab": "/dev/vda / ext4 defaults,noatime 0 1\n",
    "etc/hostname": "dom0\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 dom0\n",
    "etc/systemd/network/10-wired.network": "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
    "etc/systemd/journald.conf.d/volatile.conf": "[Journal]\nStorage=volatile\n",
    "etc/ssh/sshd_config.d/noreboot-testbed.conf":
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n",
    # The C xenstored starts faster under emulation than the default oxenstored.
    "etc/default/xen": "XENSTORED=/usr/lib/xen-{series}/bin/xenstored\n",
}
DOM0_MASKED_UNITS = (
    "systemd-networkd-wait-online.service", "xendomains.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "getty@tty1.service", "e2scrub_all.timer", "fstrim.timer",
    "man-db.timer", "dpkg-db-backup.timer", "systemd-timesyncd.service",
)


def build_dom0_image(layout: tb.Layout, logdir: Path, suite: str = tb.SUITE) -> None:
    out = layout.dom0(suite)
    if is_done(out):
        return
    log = logdir / ("dom0-image.log" if suite == tb.SUITE else f"dom0-image-{suite}.log")
    fresh_dir(out)
    rootfs = out / "rootfs"
    packages = tb.dom0_packages(suite)
    series = tb.SUITE_SERIES[suite]
    tb.log(f"debootstrap {suite} minbase dom0 (about 1.5-4 min)")
    tb.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
            suite, str(rootfs), tb.DEBIAN_MIRROR], logfile=log)
    xenstored = rootfs / f"usr/lib/xen-{series}/bin/xenstored"
    for rel, text in DOM0_FILES.items():
        if rel == "etc/default/xen" and not xenstored.exists():
            continue  # keep Debian's default oxenstored
        path = rootfs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(series=series) if rel == "etc/default/xen" else text)
    tb.run(["chroot", str(rootfs), "systemctl", "enable", "systemd-networkd.service"],
           logfile=log)
    tb.run(["chroot", str(rootfs), "systemctl", "mask", *DOM0_MASKED_UNITS], logfile=log)
    # Root's SSH key, generated here and kept beside the image.
    tb.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "noreboot-xen-testbed",
            "-f", str(layout.ssh_key(suite))], logfile=log)
    ssh_dir = rootfs / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    shutil.copyfile(layout.ssh_key(suite).with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    # Kernel and initrd go beside the image: QEMU hands them to Xen as multiboot modules.
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise tb.TestbedError(f"no kernel/initrd in {rootfs}/boot; see {log}")
    shutil.copyfile(kernels[-1], layout.dom0_kernel(suite))
    shutil.copyfile(initrds[-1], layout.dom0_initrd(suite))
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    raw = out / "dom0.raw"
    tb.log("making the ext4 image and its qcow2")
    tb.run(["mkfs.ext4", "-q", "-F", "-L", "dom0root", "-d", str(rootfs), str(raw), "3G"],
           logfile=log)
    tb.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(layout.dom0_disk(suite))],
           logfile=log)
    raw.unlink()
    shutil.rmtree(rootfs)
    layout.dom0_disk(suite).chmod(0o444)
    mark_done(out, {"kernel": kernels[-1].name, "packages": list(packages)})
    tb.log(f"dom0 image ready: {layout.dom0_disk(suite)} ({kernels[-1].name})")


# ------------------------------------------------------------------ booted snapshots

def make_golden(layout: tb.Layout, build: tb.XenBuild, logdir: Path,
                boot_timeout: float) -> dict:
    """Boots `build` once on the dom0 image, checks `xl info`, and saves the booted VM
    (disk overlay + state) for clones to resume from."""
    out = layout.golden(build)
    if is_done(out):
        return json.loads(done_marker(out).read_text())
    fresh_dir(out)
    disk = layout.golden_disk(build)
    tb.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
            "-b", str(layout.dom0_disk(build.suite)), str(disk)])
    port = tb.free_port()
    serial = out / "boot-serial.log"
    qmp_path = out / "qmp.sock"
    argv = tb.qemu_argv(xen_elf=layout.xen_elf(build), kernel=layout.dom0_kernel(build.suite),
                        initrd=layout.dom0_initrd(build.suite), disk=disk, port=port,
                        serial_log=serial, qmp_socket=qmp_path)
    tb.log(f"{build.version}: first boot on port {port} (about 35-150 s)")
    start = time.monotonic()
    with open(out / "qemu.log", "wb") as qlog:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        key = layout.ssh_key(build.suite)
        try:
            tb.wait_for_ssh(port, key, boot_timeout, alive=lambda: proc.poll() is None)
        except tb.TestbedError as exc:
            raise tb.TestbedError(f"{build.version}: {exc}\n--- serial log tail "
                                  f"({serial}) ---\n{tb.tail(serial)}") from None
        boot_seconds = time.monotonic() - start
        # Let the boot settle so the snapshot holds no half-started units.
        try:
            tb.ssh(port, key, ["systemctl", "is-system-running", "--wait"], timeout=300,
                   check=False, attempts=1)
        except tb.TestbedError as exc:
            tb.log(f"{build.version}: boot did not settle ({exc}); saving it as it is")
        info = tb.xl_info(port, key)
        if info.get("build_id") != build.build_id or info.get("xen_version") != build.xen_version:
            raise tb.TestbedError(f"{build.version}: booted Xen reports xen_version "
                                  f"{info.get('xen_version')} build_id {info.get('build_id')}")
        tb.ssh(port, key, ["sync"])
        qmp = tb.Qmp(qmp_path)
        tb.save_vm_state(qmp, layout.golden_state(build))
        try:
            qmp.command("quit")
        except tb.TestbedError:
            pass
        qmp.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    qmp_path.unlink(missing_ok=True)
    disk.chmod(0o444)
    info = {"version": build.version, "xen_version": build.xen_version,
            "debian_version": build.debian_version,
            "build_id": build.build_id, "boot_seconds": round(boot_seconds, 1),
            "image": tb.image_key(build.suite), "dom0_release": info.get("release")}
    mark_done(out, info)
    tb.log(f"{build.version}: booted in {boot_seconds:.0f} s, snapshot saved")
    return info


# ------------------------------------------------------------------ main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boot-timeout", type=float, default=900,
                        help="seconds to wait for a first boot to answer on SSH")
    parser.add_argument("--no-snapshots", action="store_true",
                        help="stop after images and payloads (no first boots)")
    parser.add_argument("--generation", action="append", choices=[*tb.GENERATIONS, "all"],
                        help="Xen generation(s) to build: 4.17 (Debian 12, the default), "
                             "4.20 (Debian 13), or all; repeatable")
    args = parser.parse_args()
    generations = args.generation or ["4.17"]
    if "all" in generations:
        generations = list(tb.GENERATIONS)
    builds = {v: b for g in generations for v, b in tb.GENERATIONS[g].items()}
    suites = sorted({b.suite for b in builds.values()})
    tb.require_root_and_apt()
    layout = tb.Layout()
    started = time.monotonic()
    was_complete = all(is_done(p) for p in all_step_dirs(layout, builds))
    layout.root.mkdir(parents=True, exist_ok=True)
    logdir = layout.root / "logs"
    logdir.mkdir(exist_ok=True)
    tb.log(f"cache: {layout.root}")
    ensure_host_packages(logdir)
    # The payload build (CPU) and the dom0 debootstrap (network, disk) run side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1 + len(suites)) as pool:
        jobs = [pool.submit(hypervisors_and_payloads, layout, logdir, builds),
                *(pool.submit(build_dom0_image, layout, logdir, suite) for suite in suites)]
        for job in jobs:
            job.result()
    boots = {}
    if not args.no_snapshots:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(builds)) as pool:
            futures = {v: pool.submit(make_golden, layout, b, logdir, args.boot_timeout)
                       for v, b in builds.items()}
            boots = {v: f.result() for v, f in futures.items()}
    elapsed = time.monotonic() - started
    kind = "warm (all cached)" if was_complete else "cold/partial build"
    tb.log(f"testbed ready in {elapsed:.1f} s [{kind}]; cache {layout.root}")
    for version, info in boots.items():
        tb.log(f"  {version}: build_id {info['build_id']}, first boot {info['boot_seconds']} s")
    for build in builds.values():
        if build.series in tb.PAYLOAD_SOURCES:
            tb.log(f"  payloads {build.version}: {layout.payloads(build)}")
    return 0


def all_step_dirs(layout: tb.Layout, builds: dict[str, tb.XenBuild] | None = None) -> list[Path]:
    builds = tb.BUILDS if builds is None else builds
    dirs = []
    for build in builds.values():
        dirs += [layout.dom0(build.suite), layout.xen(build), layout.golden(build)]
        if build.series in tb.PAYLOAD_SOURCES:
            dirs += [layout.source(build.series), layout.payloads(build)]
    return list(dict.fromkeys(dirs))


if __name__ == "__main__":
    tb.main_guard(main)
