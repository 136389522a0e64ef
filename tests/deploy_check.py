#!/usr/bin/env python3
"""tests/deploy_check.py - lint the deploy files and check what they promise.

Run by ctest as `deploy_check.py SOURCE_DIR STAKEOUT_BIN`:
  - yamllint (the repository's .yamllint) over deploy/;
  - `kubectl label --local` parses every Kubernetes manifest, when kubectl is
    installed (it needs no cluster);
  - the sidecar pod shares its process namespace, runs stakeout as a native
    sidecar (init container, restartPolicy Always) with SYS_PTRACE and probes
    on /healthz of the port it listens on; the DaemonSet uses hostPID, mounts
    the node's /var/log read-only at the same path and follows each target's
    container log there (root: host, by ${container_id}, CRI format);
  - the listener of every manifest binds the pod IP (POD_IP from the
    downward API's status.podIP), not 0.0.0.0, on the port its probes use;
  - every rules file embedded in a ConfigMap passes `stakeout check`, with
    and without POD_IP set;
  - every file a deploy file refers to exists: repository paths named in
    them, what compose builds, mounts and copies into the image, the
    ConfigMaps and Secrets a workload uses (or a `kubectl create secret`
    line for it) and the rules file its args name;
  - the rules compose bakes into the image pass `stakeout check` with the
    service's environment, and none is bind-mounted from the checkout; the
    image's default rules pass and are made 0644; the build context leaves
    out build trees;
  - docker-compose joins the app's PID namespace with SYS_PTRACE;
  - the systemd unit keeps CAP_SYS_PTRACE only, does not filter @debug and
    sets its descriptor limit; its user comes from deploy/stakeout.sysusers;
    systemd-analyze verify and systemd-sysusers --dry-run accept them
    (skipped where systemd is not installed, a failure under CI=1).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

failures = []


def ok(what):
    print("ok    " + what)


def fail(what, why):
    failures.append(what)
    print("FAIL  %s: %s" % (what, why))


def check(cond, what, why=""):
    (ok if cond else lambda w: fail(w, why or "condition false"))(what)


def unit_values(unit, key):
    """The values of key= in a unit file's text, in order."""
    return [l.split("=", 1)[1].strip() for l in unit.splitlines() if l.startswith(key + "=")]


def check_systemd(deploy, unit, binary):
    """The unit's user comes from the sysusers.d entry shipped beside it, and
    systemd-analyze verify finds nothing to say about the unit (run on a copy
    whose ExecStart is the binary just built: the unit names the installed
    path, which need not exist here; package_check verifies the installed
    unit itself)."""
    users = unit_values(unit, "User")
    check(users == ["stakeout"] and not any(v.startswith("yes") for v in
                                            unit_values(unit, "DynamicUser")),
          "systemd: runs as the fixed user stakeout", str(users))
    sysusers = os.path.join(deploy, "stakeout.sysusers")
    entries = []
    if os.path.exists(sysusers):
        with open(sysusers) as f:
            entries = [l.split() for l in f if l.strip() and not l.startswith("#")]
    check(any(e[:2] == ["u", users[0] if users else ""] for e in entries),
          "systemd: deploy/stakeout.sysusers creates the unit's user", str(entries))
    exec_start = unit_values(unit, "ExecStart")
    check(len(exec_start) == 1 and exec_start[0].startswith("/usr/bin/stakeout run -c "),
          "systemd: ExecStart runs /usr/bin/stakeout (where the package puts it)",
          str(exec_start))

    analyze, sysusers_bin = shutil.which("systemd-analyze"), shutil.which("systemd-sysusers")
    if not analyze or not sysusers_bin:
        why = "systemd-analyze or systemd-sysusers is not installed (package systemd)"
        if os.environ.get("CI"):
            fail("systemd: systemd-analyze verify", why)
        else:
            print("skip  systemd-analyze verify: " + why)
        return
    r = subprocess.run([sysusers_bin, "--dry-run", os.path.abspath(sysusers)],
                       capture_output=True, text=True)
    noise = [l for l in (r.stdout + r.stderr).splitlines()
             if not l.startswith(("Creating ", "Would write "))]
    check(r.returncode == 0 and not noise, "systemd: systemd-sysusers --dry-run accepts the entry",
          r.stdout + r.stderr)
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "stakeout.service")
        with open(copy, "w") as f:
            f.write(unit.replace("ExecStart=/usr/bin/stakeout ",
                                 "ExecStart=%s " % os.path.abspath(binary)))
        r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True,
                           timeout=60)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and not out, "systemd: systemd-analyze verify has nothing to say",
          out or "exit %d" % r.returncode)


# A path of this repository named in a deploy file: deploy/..., rules/... and
# so on, not part of a longer path (./build/tests/... is a build output).
REPO_PATH = re.compile(r"(?<![\w./${-])((?:deploy|rules|tests|sidecar|triggers)/[\w./-]*\w)")
# Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}.
COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def clean_env(extra):
    """This environment without stakeout's or the pod's variables (a
    developer's shell may set them), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STAKEOUT_", "POD_"))}
    env.update(extra)
    return env


def stakeout_check(binary, path, env, what):
    r = subprocess.run([binary, "check", path], capture_output=True, text=True, env=env,
                       timeout=30)
    check(r.returncode == 0, "stakeout check %s" % what, r.stdout + r.stderr)


def compose_value(v):
    """A compose value with its interpolation resolved as on a machine that
    sets none of the variables: ${VAR:-default} is default, ${VAR} empty."""
    return COMPOSE_VAR.sub(lambda m: m.group(2) or "", str(v))


def dockerfile_copies(path, args):
    """(sources, destination) of each COPY/ADD of the Dockerfile at path that
    reads the build context (not --from=stage), with ARG defaults, overridden
    by args, substituted."""
    values, copies = {}, []
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("ARG", "COPY", "ADD"):
            continue
        if words[0].upper() == "ARG":
            name, _, default = words[1].partition("=")
            values[name] = args.get(name, default)
            continue
        words = [w for w in words[1:] if not w.startswith(("--chown", "--chmod"))]
        if any(w.startswith("--from") for w in words):
            continue
        words = [re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ""), w) for w in words]
        copies.append((words[:-1], words[-1]))
    return copies


def check_repo_paths(src, deploy, binary):
    """Every repository path a deploy file names exists; every file of rules/
    among them passes stakeout check with no environment (they work as they
    are; deploy/'s rules are checked where they are used, with the
    environment given there)."""
    named = set()
    for d, _, files in os.walk(deploy):
        for name in sorted(files):
            where = os.path.relpath(os.path.join(d, name), src)
            with open(os.path.join(d, name), errors="replace") as f:
                for m in REPO_PATH.finditer(f.read()):
                    if m.group(1) != where:
                        named.add((where, m.group(1)))
    for where, path in sorted(named):
        check(os.path.exists(os.path.join(src, path)), "%s names %s, which exists" % (where, path))
    for path in sorted({p for _, p in named if p.startswith("rules/") and p.endswith(".yaml")}):
        if os.path.exists(os.path.join(src, path)):
            stakeout_check(binary, os.path.join(src, path), clean_env({}), path)


def check_compose(src, deploy, binary):
    """What the compose file builds, mounts and bakes in exists, and the rules
    the stakeout container gets pass stakeout check with the environment the
    compose file gives it."""
    with open(os.path.join(deploy, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    for name, svc in compose["services"].items():
        env = {k: compose_value(v) for k, v in (svc.get("environment") or {}).items()}
        for v in svc.get("volumes", []):
            source, target = ((v.get("source") or "", v.get("target")) if isinstance(v, dict)
                              else (v.split(":") + [""])[:2])
            if not target or not source.startswith((".", "/")):
                continue  # a named or anonymous volume
            if source.startswith("."):
                host = os.path.normpath(os.path.join(deploy, source))
                check(os.path.exists(host), "compose: %s mounts %s, which exists" % (name, source))
                check(not target.startswith("/etc/stakeout"),
                      "compose: %s mounts no rules from the checkout" % name,
                      "%s: a checkout's files belong to whoever cloned it, and stakeout (uid "
                      "10001) refuses rules owned by anyone but root or itself" % source)
        build = svc.get("build")
        if not build:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = os.path.normpath(os.path.join(deploy, build.get("context", ".")))
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        check(os.path.isfile(dockerfile), "compose: %s builds %s, which exists" %
              (name, os.path.relpath(dockerfile, src)))
        if not os.path.isfile(dockerfile):
            continue
        args = {k: compose_value(v) for k, v in (build.get("args") or {}).items()}
        for sources, dest in dockerfile_copies(dockerfile, args):
            for s in sources:
                path = os.path.join(context, s)
                check(os.path.exists(path),
                      "compose: %s's image copies %s, which exists" % (name, s))
                if dest.startswith("/etc/stakeout/") and os.path.isfile(path):
                    stakeout_check(binary, path, clean_env(env),
                                   "%s (the rules of compose's %s, its environment)" % (s, name))
        ignore = os.path.join(context, ".dockerignore")
        ignored = []
        if os.path.exists(ignore):
            with open(ignore) as f:
                ignored = f.read().split()
        check("build" in ignored and "build-*" in ignored,
              "compose: the build context leaves out build trees (their CMakeCache.txt stops "
              "the image's cmake)")

    # The image without compose: the Dockerfile's own defaults.
    dockerfile = os.path.join(deploy, "Dockerfile")
    with open(dockerfile) as f:
        docker = f.read()
    for sources, dest in dockerfile_copies(dockerfile, {}):
        for s in sources:
            check(os.path.exists(os.path.join(src, s)), "Dockerfile copies %s, which exists" % s)
            if dest.startswith("/etc/stakeout/") and os.path.isfile(os.path.join(src, s)):
                stakeout_check(binary, os.path.join(src, s), clean_env({}),
                               "%s (the image's default rules)" % s)
                check(re.search(r"chmod 0?644 %s\b" % re.escape(dest), docker) is not None,
                      "Dockerfile: %s is made 0644 (the checkout's mode may be group-writable)"
                      % dest)


def check_kubernetes_refs(manifests):
    """Each workload's ConfigMap volumes and Secret references resolve in its
    namespace (a Secret the user must create is named in a `kubectl create
    secret` line of the manifest), and the rules file its args name is a key
    of a ConfigMap mounted there."""
    for m in manifests:
        with open(m) as f:
            text = f.read()
        docs = [d for d in yaml.safe_load_all(text) if d]
        have = {(d["kind"], d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d
                for d in docs}
        told = set(re.findall(r"create secret generic ([\w.-]+)", text))
        for d in docs:
            spec = d.get("spec", {})
            spec = spec.get("template", {}).get("spec", spec)
            if "containers" not in spec:
                continue
            ns = d["metadata"].get("namespace", "default")
            what = "%s %s" % (os.path.basename(m), d["kind"])
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for v in volumes.values():
                if "configMap" in v:
                    cm = v["configMap"]["name"]
                    check(("ConfigMap", ns, cm) in have,
                          "%s: ConfigMap %s/%s is in the file" % (what, ns, cm))
            containers = spec.get("initContainers", []) + spec.get("containers", [])
            secrets = {e["valueFrom"]["secretKeyRef"]["name"] for c in containers
                       for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            for name in sorted(secrets):
                check(("Secret", ns, name) in have or name in told,
                      "%s: Secret %s/%s is in the file or its kubectl create line" %
                      (what, ns, name))
            for c in containers:
                args = c.get("args", [])
                if "-c" not in args or c["name"] != "stakeout":
                    continue
                rules = args[args.index("-c") + 1]
                found = False
                for vm in c.get("volumeMounts", []):
                    cm = volumes.get(vm["name"], {}).get("configMap")
                    if cm and rules.startswith(vm["mountPath"].rstrip("/") + "/"):
                        key = rules[len(vm["mountPath"].rstrip("/")) + 1:]
                        data = have.get(("ConfigMap", ns, cm["name"]), {}).get("data", {})
                        found = key in data
                check(found, "%s: its rules %s are a key of a mounted ConfigMap" % (what, rules))


def main():
    src, binary = sys.argv[1], sys.argv[2]
    deploy = os.path.join(src, "deploy")

    r = subprocess.run(["yamllint", "-c", os.path.join(src, ".yamllint"), deploy],
                       capture_output=True, text=True)
    check(r.returncode == 0, "yamllint deploy/", r.stdout + r.stderr)

    kdir = os.path.join(deploy, "kubernetes")
    manifests = sorted(os.path.join(kdir, f) for f in os.listdir(kdir) if f.endswith(".yaml"))
    if shutil.which("kubectl"):
        for m in manifests:
            r = subprocess.run(["kubectl", "label", "--local", "-f", m, "lint=ok", "-o", "name"],
                               capture_output=True, text=True)
            check(r.returncode == 0, "kubectl parses " + os.path.basename(m), r.stderr)
    else:
        print("note  kubectl not installed: manifests checked by yamllint and below only")

    check_repo_paths(src, deploy, binary)
    check_compose(src, deploy, binary)
    check_kubernetes_refs(manifests)

    docs = {}
    for m in manifests:
        with open(m) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.setdefault(d["kind"], []).append((os.path.basename(m), d))

    pod = next(d for _, d in docs.get("Pod", []))
    spec = pod["spec"]
    check(spec.get("shareProcessNamespace") is True, "sidecar pod: shareProcessNamespace")
    side = next(c for c in spec.get("initContainers", []) if c["name"] == "stakeout")
    check(side.get("restartPolicy") == "Always", "sidecar pod: native sidecar (restartPolicy Always)")
    caps = side["securityContext"]["capabilities"]
    check("SYS_PTRACE" in caps.get("add", []) and "ALL" in caps.get("drop", []),
          "sidecar pod: drops ALL, adds SYS_PTRACE only")
    check(side["securityContext"].get("allowPrivilegeEscalation") is True,
          "sidecar pod: allowPrivilegeEscalation for the file capability of a non-root user")
    ports = {p["name"]: p["containerPort"] for p in side.get("ports", [])}
    for probe in ("startupProbe", "livenessProbe"):
        g = side.get(probe, {}).get("httpGet", {})
        check(g.get("path") == "/healthz" and g.get("port") in ports,
              "sidecar pod: %s on /healthz of a declared port" % probe)
    check(not any(m.get("subPath") for m in side.get("volumeMounts", [])),
          "sidecar pod: rules mounted as a directory (subPath never sees updates)")

    ds = next(d for _, d in docs.get("DaemonSet", []))
    check(ds["spec"]["template"]["spec"].get("hostPID") is True, "daemonset: hostPID")
    node = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "stakeout")

    # The containers' logs are the node's files: /var/log at the same path
    # (the /var/log/containers symlinks are absolute), read-only.
    vols = {v["name"]: v for v in ds["spec"]["template"]["spec"].get("volumes", [])}
    varlog = [m for m in node.get("volumeMounts", []) if m.get("mountPath") == "/var/log"]
    check(len(varlog) == 1 and varlog[0].get("readOnly") is True and
          vols.get(varlog[0]["name"], {}).get("hostPath", {}).get("path") == "/var/log",
          "daemonset: the node's /var/log mounted read-only at /var/log")
    node_rules = next(yaml.safe_load(d["data"]["rules.yaml"]) for _, d in docs.get("ConfigMap", [])
                      if d["metadata"]["name"] == "stakeout-node-rules")
    for t in node_rules.get("targets", []):
        logs = t.get("logs", [])
        check(any(l.get("root") == "host" and l.get("format") == "cri" and
                  str(l.get("path", "")).startswith("/var/log/") and
                  "${container_id}" in str(l.get("path", "")) for l in logs),
              "daemonset: target %s follows its container's CRI log on the node" % t.get("name"))

    # The listener binds the pod IP: where the kubelet's probes arrive, and
    # not every address of the pod. The port is the probes' port.
    for what, c, cm in (("sidecar pod", side, "stakeout-rules"),
                        ("daemonset", node, "stakeout-node-rules")):
        env = {e["name"]: e for e in c.get("env", [])}
        field = env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        check(field == "status.podIP", "%s: POD_IP from status.podIP" % what)
        rules = next(yaml.safe_load(d["data"]["rules.yaml"]) for _, d in docs.get("ConfigMap", [])
                     if d["metadata"]["name"] == cm)
        listen = str(rules.get("listen", ""))
        check(listen.startswith("${POD_IP") and "0.0.0.0" not in listen,
              "%s: listens on the pod IP" % what, listen)
        c_ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        probe = c.get("livenessProbe", {}).get("httpGet", {})
        check(listen.endswith(":%s" % c_ports.get(probe.get("port"))),
              "%s: the liveness probe's port is the listener's" % what, listen)

    for name, cm in docs.get("ConfigMap", []):
        for key, text in cm.get("data", {}).items():
            if not key.endswith(".yaml"):
                continue
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as t:
                t.write(text)
            for pod_ip in (None, "10.1.2.3"):
                env = clean_env({"STAKEOUT_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
                if pod_ip:
                    env["POD_IP"] = pod_ip
                r = subprocess.run([binary, "check", t.name], capture_output=True, text=True,
                                   env=env)
                check(r.returncode == 0, "stakeout check %s %s/%s (POD_IP %s)" %
                      (name, cm["metadata"]["name"], key, pod_ip or "unset"), r.stderr)
            os.unlink(t.name)

    with open(os.path.join(deploy, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)
    st = compose["services"]["stakeout"]
    check(st.get("pid") == "service:app", "compose: pid service:app")
    check("SYS_PTRACE" in st.get("cap_add", []), "compose: cap_add SYS_PTRACE")
    check("security_opt" not in st, "compose: no seccomp=unconfined (not needed for ptrace)")

    with open(os.path.join(deploy, "stakeout.service")) as f:
        unit = f.read()
    check("AmbientCapabilities=CAP_SYS_PTRACE" in unit and
          "CapabilityBoundingSet=CAP_SYS_PTRACE" in unit, "systemd: CAP_SYS_PTRACE only")
    check("NoNewPrivileges=yes" in unit, "systemd: NoNewPrivileges")
    filters = [l for l in unit.splitlines() if l.startswith("SystemCallFilter=")]
    check(not any("@debug" in l or "ptrace" in l for l in filters),
          "systemd: @debug (ptrace, process_vm_readv) not filtered")
    check(any(l.startswith("LimitNOFILE=") for l in unit.splitlines()),
          "systemd: LimitNOFILE set (systemd's default soft limit is 1,024)")
    check_systemd(deploy, unit, binary)

    with open(os.path.join(deploy, "Dockerfile")) as f:
        docker = f.read()
    check("setcap cap_sys_ptrace+ep" in docker and "\nUSER " in docker,
          "Dockerfile: non-root user with the ptrace file capability")

    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
