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
  - docker-compose joins the app's PID namespace with SYS_PTRACE;
  - the systemd unit keeps CAP_SYS_PTRACE only, does not filter @debug and
    sets its descriptor limit.
"""
import os
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
                env = dict(os.environ, STAKEOUT_WEBHOOK_URL="http://127.0.0.1:9/hook")
                env.pop("POD_IP", None)
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

    with open(os.path.join(deploy, "Dockerfile")) as f:
        docker = f.read()
    check("setcap cap_sys_ptrace+ep" in docker and "\nUSER " in docker,
          "Dockerfile: non-root user with the ptrace file capability")

    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
