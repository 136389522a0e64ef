#!/usr/bin/env python3
"""tests/package_check.py - what `cmake --install` and the .deb install, and
that the .deb installs and starts on Debian 12.

Run by ctest as `package_check.py BUILD_DIR` after the build (stakeout built):
  - cmake --install into a DESTDIR: the binary, the unit (its ExecStart is
    the installed binary), the sysusers.d entry, the schema and
    /etc/stakeout/rules.yaml; a second install keeps edited rules; another
    prefix puts the rules under it and the unit says so;
  - cpack -G DEB: dpkg-deb -c lists exactly those files under /usr and
    /etc; dpkg-deb -f names the package, its version (the project's, which
    `stakeout version` prints) and amd64, and Depends names the package of
    every library the binary needs (libcurl4, libproc2-0, ...); the control
    archive marks the rules a conffile and holds executable maintainer
    scripts that sh parses;
  - dpkg -x: the packaged binary runs `version` and `check`s the packaged
    rules, and the unit's ExecStart and -c name files of the package;
  - a throwaway root (an overlay of / in a private mount namespace: needs
    root and overlayfs; skipped elsewhere, a failure under CI=1): dpkg -i
    succeeds without systemd running and creates the user and the spool;
    systemd-analyze verify accepts the installed unit; stakeout runs as the
    unit runs it (user stakeout, ambient CAP_SYS_PTRACE, the installed
    rules), starts and stops on SIGTERM with status 0; an edited conffile
    survives a reinstall; dpkg -r keeps it, dpkg -P removes it and the spool.
Everything is made in a temporary directory of BUILD_DIR, removed at the end.
"""
import glob
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

failures = []


def ok(what):
    print("ok    " + what)


def fail(what, why):
    failures.append(what)
    print("FAIL  %s: %s" % (what, why))


def check(cond, what, why=""):
    (ok if cond else lambda w: fail(w, why or "condition false"))(what)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


def skip_or_fail(what, why):
    if os.environ.get("CI"):
        fail(what, why + " (CI is set: this must run)")
    else:
        print("skip  %s: %s" % (what, why))


# The files of the package, under the prefix /usr and in /etc.
PACKAGE_FILES = {
    "/usr/bin/stakeout",
    "/usr/lib/systemd/system/stakeout.service",
    "/usr/lib/sysusers.d/stakeout.conf",
    "/usr/share/stakeout/schema.json",
    "/usr/share/stakeout/default.yaml",
    "/etc/stakeout/rules.yaml",
}


def unit_exec_start(text):
    """(binary, rules) of the unit's `ExecStart=BINARY run -c RULES`."""
    m = re.search(r"^ExecStart=(\S+) run -c (\S+)$", text, re.M)
    return (m.group(1), m.group(2)) if m else (None, None)


def check_cmake_install(build, tmp):
    dest = os.path.join(tmp, "destdir")
    env = dict(os.environ, DESTDIR=dest)
    r = run(["cmake", "--install", build, "--prefix", "/usr/local"], env=env)
    check(r.returncode == 0, "cmake --install --prefix /usr/local", r.stdout + r.stderr)
    for f in sorted(p.replace("/usr/", "/usr/local/", 1) for p in PACKAGE_FILES):
        check(os.path.isfile(dest + f), "cmake --install puts %s" % f)
    unit = dest + "/usr/local/lib/systemd/system/stakeout.service"
    if os.path.isfile(unit):
        with open(unit) as f:
            got = unit_exec_start(f.read())
        check(got == ("/usr/local/bin/stakeout", "/etc/stakeout/rules.yaml"),
              "cmake --install: the unit runs the installed binary on /etc/stakeout/rules.yaml",
              str(got))

    rules = dest + "/etc/stakeout/rules.yaml"
    if os.path.isfile(rules):
        with open(rules, "a") as f:
            f.write("# edited here\n")
        r = run(["cmake", "--install", build, "--prefix", "/usr/local"], env=env)
        with open(rules) as f:
            kept = f.read().endswith("# edited here\n")
        check(r.returncode == 0 and kept and "Keeping: " + rules in r.stdout,
              "cmake --install again keeps edited /etc/stakeout/rules.yaml and says so",
              r.stdout + r.stderr)

    dest = os.path.join(tmp, "destdir-opt")
    env = dict(os.environ, DESTDIR=dest)
    r = run(["cmake", "--install", build, "--prefix", "/opt/stakeout"], env=env)
    check(r.returncode == 0 and os.path.isfile(dest + "/opt/stakeout/etc/stakeout/rules.yaml")
          and not os.path.exists(dest + "/etc"),
          "cmake --install --prefix /opt/stakeout: the rules in /opt/stakeout/etc/stakeout",
          r.stdout + r.stderr)
    unit = dest + "/opt/stakeout/lib/systemd/system/stakeout.service"
    if os.path.isfile(unit):
        with open(unit) as f:
            got = unit_exec_start(f.read())
        check(got == ("/opt/stakeout/bin/stakeout", "/opt/stakeout/etc/stakeout/rules.yaml"),
              "cmake --install --prefix /opt/stakeout: the unit says where", str(got))


def needed_packages(binary):
    """The Debian package of each shared library the binary needs."""
    r = run(["readelf", "-d", binary])
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", r.stdout)
    multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).stdout.strip()
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    packages = {}
    for so in sonames:
        r = run(["dpkg", "-S", "*/%s/%s" % (multiarch, so)])
        pkgs = {line.split(":")[0] for line in r.stdout.splitlines()
                if line.split(": ")[0].endswith(":" + arch)}
        packages[so] = sorted(pkgs)
    return packages


def check_deb(build, tmp, version):
    out = os.path.join(tmp, "cpack")
    r = run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
             "-B", out], timeout=300)
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(r.returncode == 0 and len(debs) == 1, "cpack -G DEB builds one .deb",
          r.stdout + r.stderr)
    if len(debs) != 1:
        return None
    deb = debs[0]
    check(os.path.basename(deb) == "stakeout_%s-1_amd64.deb" % version,
          "the .deb is stakeout_%s-1_amd64.deb" % version, os.path.basename(deb))

    r = run(["dpkg-deb", "-c", deb])
    entries = [line.split() for line in r.stdout.splitlines()]
    files = {e[5][1:]: e for e in entries if not e[0].startswith("d")}
    check(set(files) == PACKAGE_FILES, "dpkg-deb -c: the package's files, and only those",
          "extra %s, missing %s" % (sorted(set(files) - PACKAGE_FILES),
                                    sorted(PACKAGE_FILES - set(files))))
    for path, e in sorted(files.items()):
        mode = "-rwxr-xr-x" if path == "/usr/bin/stakeout" else "-rw-r--r--"
        check(e[0] == mode and e[1] == "root/root", "dpkg-deb -c: %s %s root/root" % (path, mode),
              " ".join(e))

    fields = {}
    for name in ("Package", "Version", "Architecture", "Maintainer", "Description", "Depends"):
        fields[name] = run(["dpkg-deb", "-f", deb, name]).stdout.strip()
    check(fields["Package"] == "stakeout", "dpkg-deb -f Package: stakeout", fields["Package"])
    check(fields["Version"] == version + "-1", "dpkg-deb -f Version: %s-1" % version,
          fields["Version"])
    check(fields["Architecture"] == "amd64", "dpkg-deb -f Architecture: amd64",
          fields["Architecture"])
    check("<" in fields["Maintainer"] and fields["Description"],
          "dpkg-deb -f: a Maintainer and a Description", str(fields))
    depends = {d.strip().split()[0] for d in fields["Depends"].split(",") if d.strip()}
    for pkg in ("libcurl4", "libproc2-0", "libyaml-0-2", "libunwind8", "libmicrohttpd12",
                "libc6", "passwd", "procps"):
        check(pkg in depends, "dpkg-deb -f Depends names %s" % pkg, fields["Depends"])
    for so, pkgs in sorted(needed_packages(os.path.join(build, "stakeout")).items()):
        check(pkgs and any(p in depends for p in pkgs),
              "Depends names the package of %s (%s)" % (so, ", ".join(pkgs) or "none found"),
              fields["Depends"])

    ctrl = os.path.join(tmp, "control")
    r = run(["dpkg-deb", "-e", deb, ctrl])
    check(r.returncode == 0, "dpkg-deb -e", r.stderr)
    conffiles = os.path.join(ctrl, "conffiles")
    if os.path.isfile(conffiles):
        with open(conffiles) as f:
            listed = f.read().split()
    else:
        listed = []
    check(listed == ["/etc/stakeout/rules.yaml"], "conffiles: /etc/stakeout/rules.yaml",
          str(listed))
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(ctrl, script)
        good = os.path.isfile(path) and os.access(path, os.X_OK)
        check(good and run(["sh", "-n", path]).returncode == 0,
              "control: %s, executable, parsed by sh" % script)

    x = os.path.join(tmp, "extract")
    r = run(["dpkg", "-x", deb, x])
    check(r.returncode == 0, "dpkg -x", r.stderr)
    r = run([x + "/usr/bin/stakeout", "version"])
    check(r.returncode == 0 and r.stdout.splitlines()[:1] == ["stakeout " + version],
          "the packaged binary: stakeout version says %s" % version, r.stdout + r.stderr)
    r = run([x + "/usr/bin/stakeout", "check", x + "/etc/stakeout/rules.yaml"],
            env={k: v for k, v in os.environ.items() if not k.startswith("STAKEOUT_")})
    check(r.returncode == 0, "the packaged binary checks the packaged rules", r.stdout + r.stderr)
    with open(x + "/usr/lib/systemd/system/stakeout.service") as f:
        unit = f.read()
    binary, rules = unit_exec_start(unit)
    check(binary == "/usr/bin/stakeout" and rules and os.path.isfile(x + rules),
          "the packaged unit runs /usr/bin/stakeout on rules of the package", str((binary, rules)))
    user = re.search(r"^User=(\S+)$", unit, re.M)
    with open(x + "/usr/lib/sysusers.d/stakeout.conf") as f:
        entries = [line.split() for line in f if line.strip() and not line.startswith("#")]
    check(user and ["u", user.group(1)] in [e[:2] for e in entries],
          "the packaged sysusers.d entry creates the unit's User", str(entries))
    return deb


# ---- the throwaway root: this script again, under unshare ------------------

ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def in_root(root, cmd, **kw):
    env = {"PATH": ROOT_PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    return run(["chroot", root] + cmd, env=env, **kw)


def start_like_the_unit(root):
    """Run the installed stakeout as the unit does (its user, ambient
    CAP_SYS_PTRACE, the installed rules) until it logs 'starting', then stop
    it with SIGTERM. Returns (started, exit status, log)."""
    env = {"PATH": ROOT_PATH, "LANG": "C.UTF-8"}
    p = subprocess.Popen(["chroot", root, "setpriv", "--reuid=stakeout", "--regid=stakeout",
                          "--init-groups", "--inh-caps=-all,+sys_ptrace",
                          "--ambient-caps=-all,+sys_ptrace", "--bounding-set=-all,+sys_ptrace",
                          "/usr/bin/stakeout", "run", "-c", "/etc/stakeout/rules.yaml"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    log, started = b"", False
    try:
        deadline = time.monotonic() + 15
        while not started and time.monotonic() < deadline and p.poll() is None:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                log += chunk
                started = b"starting" in log
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        status = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log += p.stdout.read()
        p.stdout.close()
    return started, status, log.decode(errors="replace")


def root_test(deb, work):
    """Inside a private mount namespace: install the .deb in an overlay of /."""
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", work], check=True)
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(work, d))
        root = os.path.join(work, "root")
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "lowerdir=/,upperdir=%s/upper,workdir=%s/work" % (work, work), root],
                       check=True)
        for fs in ("/dev", "/proc", "/sys"):
            subprocess.run(["mount", "--rbind", fs, root + fs], check=True)
    except (subprocess.CalledProcessError, OSError) as e:
        print("SKIP  an overlay of / cannot be mounted here: %s" % e)
        return 0
    shutil.copy(deb, root + "/tmp/stakeout.deb")

    # a machine that has stakeout installed: start from none, in the overlay
    if in_root(root, ["dpkg-query", "-W", "stakeout"]).returncode == 0:
        in_root(root, ["dpkg", "--purge", "stakeout"])
    check(not os.path.isdir(root + "/run/systemd/system"),
          "throwaway root: systemd is not running in it (as in a container build)")
    r = in_root(root, ["dpkg", "-i", "/tmp/stakeout.deb"])
    check(r.returncode == 0, "throwaway root: dpkg -i succeeds", r.stdout + r.stderr)
    r = in_root(root, ["getent", "passwd", "stakeout"])
    check(r.returncode == 0 and r.stdout.split(":")[5] == "/var/lib/stakeout",
          "throwaway root: postinst created user stakeout (home /var/lib/stakeout)", r.stdout)
    r = in_root(root, ["stat", "-c", "%U:%G %a", "/var/lib/stakeout"])
    check(r.stdout.strip() == "stakeout:stakeout 750",
          "throwaway root: postinst made the spool, stakeout:stakeout 0750", r.stdout + r.stderr)
    r = in_root(root, ["stakeout", "version"])
    check(r.returncode == 0 and r.stdout.startswith("stakeout "),
          "throwaway root: stakeout version runs from PATH", r.stdout + r.stderr)

    if shutil.which("systemd-analyze"):
        r = in_root(root, ["systemd-analyze", "verify", "/usr/lib/systemd/system/stakeout.service"])
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out,
              "throwaway root: systemd-analyze verify accepts the installed unit",
              out or "exit %d" % r.returncode)
    else:
        skip_or_fail("throwaway root: systemd-analyze verify",
                     "systemd-analyze is not installed (package systemd)")

    started, status, log = start_like_the_unit(root)
    check(started and "cap_sys_ptrace" in log,
          "throwaway root: stakeout starts as the unit runs it, keeping cap_sys_ptrace", log)
    check(status == 0, "throwaway root: stakeout stops on SIGTERM with status 0",
          "status %s: %s" % (status, log))

    rules = root + "/etc/stakeout/rules.yaml"
    with open(rules, "a") as f:
        f.write("# a local edit\n")
    r = in_root(root, ["dpkg", "-i", "/tmp/stakeout.deb"])
    with open(rules) as f:
        kept = f.read().endswith("# a local edit\n")
    check(r.returncode == 0 and kept, "throwaway root: a reinstall keeps the edited conffile",
          r.stdout + r.stderr)
    r = in_root(root, ["dpkg", "-r", "stakeout"])
    check(r.returncode == 0 and not os.path.exists(root + "/usr/bin/stakeout")
          and os.path.isfile(rules), "throwaway root: dpkg -r removes the binary, keeps the rules",
          r.stdout + r.stderr)
    r = in_root(root, ["dpkg", "-P", "stakeout"])
    check(r.returncode == 0 and not os.path.exists(rules)
          and not os.path.exists(root + "/var/lib/stakeout"),
          "throwaway root: dpkg -P removes the rules and the spool", r.stdout + r.stderr)
    return len(failures)


def check_root(deb, tmp):
    if os.geteuid() != 0:
        skip_or_fail("throwaway root install", "needs root (mount namespace, overlayfs, chroot)")
        return
    if not shutil.which("unshare"):
        skip_or_fail("throwaway root install", "unshare is not installed (util-linux)")
        return
    work = os.path.join(tmp, "root")
    os.mkdir(work)
    r = run(["unshare", "--mount", "--propagation", "private", "--", sys.executable,
             os.path.abspath(__file__), "--root-test", deb, work], timeout=300)
    sys.stdout.write(r.stdout)
    if r.stderr.strip():
        print(r.stderr.rstrip())
    for line in r.stdout.splitlines():
        if line.startswith("FAIL  "):
            failures.append(line)
        elif line.startswith("SKIP  "):
            skip_or_fail("throwaway root install", line[6:])
    if r.returncode != 0 and not any(l.startswith("FAIL  ") for l in r.stdout.splitlines()):
        fail("throwaway root install", "exit %d" % r.returncode)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--root-test":
        return 1 if root_test(sys.argv[2], sys.argv[3]) else 0
    if len(sys.argv) != 2:
        print("usage: package_check.py BUILD_DIR", file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        m = re.search(r"^CMAKE_PROJECT_VERSION:STATIC=(\S+)$", f.read(), re.M)
    version = m.group(1)
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps", "readelf"):
        if not shutil.which(tool):
            fail("tools", "%s is not installed (deploy/setup.sh installs it)" % tool)
    if failures:
        return 1

    with tempfile.TemporaryDirectory(dir=build, prefix="package_check.") as tmp:
        check_cmake_install(build, tmp)
        deb = check_deb(build, tmp, version)
        if deb:
            check_root(deb, tmp)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
