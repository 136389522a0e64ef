#!/usr/bin/python3
"""tests/schema_check.py - rules/schema.json against the rules files and the validator.

usage: schema_check.py SOURCE_DIR

Checks, in order:
  1. rules/schema.json is a valid JSON Schema draft 2020-12, every property in it
     has a description (editors show it on hover) and every object with properties
     refuses unknown keys, as `stakeout check` does;
  2. every rules/**/*.yaml starts with a yaml-language-server modeline pointing at
     rules/schema.json and is valid against the schema;
  3. every tests/config/good/*.yaml is valid against the schema;
  4. a list of small invalid documents is rejected by the schema, and a few edge
     cases that are valid are accepted;
  5. `stakeout check` (run with an empty environment, so every ${VAR} takes its
     default) accepts the files of 2 and 3, accepts the valid edge cases of 4 and
     rejects the invalid ones (exit 1, not a crash): the schema and the validator
     must agree on each.
Files in tests/config/bad/ are listed with the schema's verdict, for information
only: many of their mistakes (duplicate names, cross-key ranges) are beyond a schema.

YAML is read the way editors and stakeout read it, not with PyYAML's YAML 1.1
rules: `yes`/`on` stay strings, `2024-01-01` is not a date, `12:30` is not 750,
`010` is ten. Only true/false, null, and decimal/0o/0x numbers are typed (the
YAML 1.2 core schema), mapping keys are always strings (as in JSON), and a
duplicate key is an error.

The stakeout binary: $STAKEOUT_BIN, else ../stakeout or ./stakeout from the working
directory (ctest runs this from <build>/tests). Without one, step 5 fails unless
--schema-only is given.

Exits 0 when every check passes, 1 otherwise (with one line per failure), 2 on a
usage error.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

# ---- YAML as stakeout and editors see it -------------------------------------


class CoreLoader(yaml.SafeLoader):
    """SafeLoader restricted to the YAML 1.2 core schema, rejecting duplicate keys."""


CoreLoader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
]:
    CoreLoader.add_implicit_resolver("tag:yaml.org,2002:" + _tag, re.compile(_regexp),
                                     list(_first))


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)  # "010" is ten in YAML 1.2, not eight


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain strings", key_node.start_mark)
        key = key_node.value  # the text, as JSON and stakeout see keys: `1:` is "1"
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


CoreLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
CoreLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml(text):
    return yaml.load(text, Loader=CoreLoader)


# ---- results ---------------------------------------------------------------


class Report:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def ok(self, what):
        self.passed += 1
        print("ok    " + what)

    def fail(self, what, why):
        self.failures.append(what)
        print("FAIL  %s: %s" % (what, why))

    def note(self, what):
        print("      " + what)


def error_text(err):
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    msg = err.message if len(err.message) < 300 else err.message[:300] + "..."
    return "at %s: %s" % (where, msg)


def schema_errors(validator, doc):
    return sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))


# ---- 1. the schema itself ------------------------------------------------------


def resolve_local(schema, sub):
    """The schema whose description an editor shows for sub: sub itself when it has
    one, else what its local $ref (or allOf of one $ref) names, followed."""
    for _ in range(10):
        if not isinstance(sub, dict) or "description" in sub:
            return sub
        ref = sub.get("$ref")
        if ref is None and len(sub.get("allOf", [])) == 1:
            ref = sub["allOf"][0].get("$ref")
        if not ref or not ref.startswith("#/"):
            return sub
        sub = schema
        for part in ref[2:].split("/"):
            sub = sub[part]
    return sub


def check_schema_shape(schema, report):
    """Every property documented; every object with properties closed."""
    undocumented, open_objects = [], []

    def walk(node, path):
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                if node.get("additionalProperties") is not False:
                    open_objects.append(path or "/")
                for name, sub in node["properties"].items():
                    target = resolve_local(schema, sub)
                    if not isinstance(target, dict) or not target.get("description"):
                        undocumented.append("%s/properties/%s" % (path, name))
            for key, value in node.items():
                walk(value, "%s/%s" % (path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s/%d" % (path, i))

    walk(schema, "")
    if undocumented:
        report.fail("schema descriptions", "no description on " + ", ".join(undocumented))
    else:
        report.ok("schema: every property has a description")
    if open_objects:
        report.fail("schema strictness", "additionalProperties is not false at " +
                    ", ".join(open_objects))
    else:
        report.ok("schema: every object refuses unknown keys")
    for key in ("$id", "title", "description"):
        if not schema.get(key):
            report.fail("schema " + key, "missing")


# ---- 4. inline documents -------------------------------------------------------

TARGET = """targets:
  - name: app
    match:
      process: '^app$'
"""


def doc(rules="", top="", target=TARGET, alert=""):
    """A small rules file: one target, optional rules, extra top-level text."""
    text = "version: 1\n" + top + target
    text += ("rules:\n" + rules) if rules else "rules: []\n"
    return text + alert


def rule(body):
    """One rule named r, its keys given as YAML lines."""
    return "  - name: r\n" + "".join("    " + line + "\n" for line in body.strip().split("\n"))


INVALID = [
    ("unknown top-level key", doc(top="pol_interval: 1s\n")),
    ("unknown rule key", doc(rule("when: cpu > 80%\ncooldwon: 5m"))),
    ("unknown target key", doc(target=TARGET + "    label: {a: b}\n")),
    ("match with both pid and process",
     doc(target="targets:\n  - name: app\n    match: {pid: 1, process: app}\n")),
    ("match with nothing", doc(target="targets:\n  - name: app\n    match: {}\n")),
    ("target without match", doc(target="targets:\n  - name: app\n")),
    ("no targets", "version: 1\ntargets: []\nrules: []\n"),
    ("missing version", "targets:\n  - name: a\n    match: {pid: 1}\nrules: []\n"),
    ("version 2", doc().replace("version: 1", "version: 2")),
    ("duration 1.5m", doc(rule("when: cpu > 80%\ncooldown: 1.5m"))),
    ("duration with a space", doc(rule("when: cpu > 80%\ncooldown: 5 m"))),
    ("duration in upper case", doc(rule("when: cpu > 80%\ncooldown: 5M"))),
    ("duration without unit", doc(rule("when: cpu > 80%\ncooldown: 30"))),
    ("duration units out of order", doc(rule("when: cpu > 80%\ncooldown: 30m1h"))),
    ("duration in weeks", doc(rule("when: cpu > 80%\ncooldown: 1w"))),
    ("poll_interval 0", doc(top="poll_interval: 0s\n")),
    ("poll_interval under 100ms", doc(top="poll_interval: 50ms\n")),
    ("every under 10s", doc(rule("every: 9s999ms\ncapture: {profile: cpu, duration: 1s}"))),
    ("baseline_window under 1m", doc(rule("when: cpu > 2 sigma\nbaseline_window: 59s"))),
    ("rate 2000", doc(rule("when: cpu > 80%\ncapture: {profile: cpu, rate: 2000}"))),
    ("rate 0", doc(rule("when: cpu > 80%\ncapture: {profile: cpu, rate: 0}"))),
    ("rate as a fraction", doc(rule("when: cpu > 80%\ncapture: {profile: cpu, rate: 9.5}"))),
    ("capture without profile", doc(rule("when: cpu > 80%\ncapture: {duration: 5s}"))),
    ("unknown profile", doc(rule("when: cpu > 80%\ncapture: {profile: heap}"))),
    ("severity page", doc(rule("when: cpu > 80%\nseverity: page"))),
    ("rule without when or every", doc(rule("cooldown: 5m\ncapture: {profile: cpu}"))),
    ("rule targets empty", doc(rule("when: cpu > 80%\ntargets: []"))),
    ("rule targets listed twice", doc(rule("when: cpu > 80%\ntargets: [app, app]"))),
    ("for N of M without spaces", doc(rule("when: cpu > 80%\nfor: 3of5"))),
    ("empty quoted number", doc(top='alert: {max_captures_per_hour: ""}\n')),
    ("rule with when and every",
     doc(rule("when: cpu > 80%\nevery: 1h\ncapture: {profile: cpu}"))),
    ("every without capture", doc(rule("every: 1h"))),
    ("for on a scheduled rule", doc(rule("every: 1h\nfor: 5m\ncapture: {profile: cpu}"))),
    ("resolve_when on a scheduled rule",
     doc(rule("every: 1h\nresolve_when: cpu < 5%\ncapture: {profile: cpu}"))),
    ("for: N of with M missing", doc(rule("when: cpu > 80%\nfor: 3 of"))),
    ("for: M above 1000", doc(rule("when: cpu > 80%\nfor: 3 of 1001"))),
    ("for: 0 of M", doc(rule("when: cpu > 80%\nfor: 0 of 5"))),
    ("unknown metric", doc(rule("when: cpux > 80%"))),
    ("= is not an operator", doc(rule("when: cpu = 80%"))),
    ("expression without a value", doc(rule("when: cpu >"))),
    ("expression with a dangling and", doc(rule("when: cpu > 80% and"))),
    ("unknown webhook format",
     doc(alert="alert:\n  webhook: {url: 'http://h/x', format: teams}\n")),
    ("webhook url not http", doc(alert="alert:\n  webhook: {url: 'ftp://h/x'}\n")),
    ("webhook without url", doc(alert="alert:\n  webhook: {format: json}\n")),
    ("unknown alert key", doc(alert="alert:\n  webhok: {url: 'http://h/x'}\n")),
    ("webhook and webhooks together",
     doc(alert="alert:\n  webhook: {url: 'http://a/'}\n  webhooks: [{url: 'http://b/'}]\n")),
    ("webhooks as a mapping", doc(alert="alert:\n  webhooks: {url: 'http://h/x'}\n")),
    ("webhooks empty", doc(alert="alert:\n  webhooks: []\n")),
    ("max_inline_bytes with a fraction",
     doc(alert="alert:\n  webhook: {url: 'http://h/', max_inline_bytes: 1.5MiB}\n")),
    ("max_inline_bytes with a space",
     doc(alert="alert:\n  webhook: {url: 'http://h/', max_inline_bytes: 10 MiB}\n")),
    ("max_inline_bytes above 64MiB",
     doc(alert="alert:\n  webhook: {url: 'http://h/', max_inline_bytes: 67108865}\n")),
    ("spool_max_bytes under 1MiB", doc(alert="alert:\n  spool_max_bytes: 1000\n")),
    ("tls insecure_skip_verify quoted",
     doc(alert="alert:\n  webhook: {url: 'https://h/', tls: {insecure_skip_verify: 'true'}}\n")),
    ("tls unknown key", doc(alert="alert:\n  webhook: {url: 'https://h/', tls: {verify: false}}\n")),
    ("connect_timeout 0", doc(alert="alert:\n  webhook: {url: 'http://h/', connect_timeout: 0}\n")),
    ("max_age under 1m", doc(alert="alert:\n  webhooks: [{url: 'http://h/', max_age: 30s}]\n")),
    ("redact not a list", doc(alert="alert:\n  redact: 'token=\\S+'\n")),
    ("redact item a mapping", doc(alert="alert:\n  redact: [{a: b}]\n")),
    ("max_captures_per_hour 3601", doc(alert="alert:\n  max_captures_per_hour: 3601\n")),
    ("webhook timeout 0", doc(alert="alert:\n  webhook: {url: 'http://h/', timeout: 0}\n")),
    ("name starting with a dash",
     doc(target="targets:\n  - name: -app\n    match: {pid: 1}\n")),
    ("name with a space", doc(target="targets:\n  - name: my app\n    match: {pid: 1}\n")),
    ("name of 65 characters",
     doc(target="targets:\n  - name: %s\n    match: {pid: 1}\n" % ("a" * 65))),
    ("negative name", doc(target="targets:\n  - name: -1\n    match: {pid: 1}\n")),
    ("label key with a dash", doc(rule("when: cpu > 80%\nlabels: {team-name: a}"))),
    ("label key starting with a digit", doc(rule("when: cpu > 80%\nlabels: {1team: a}"))),
    ("label without a value", doc(rule("when: cpu > 80%\nlabels: {team: }"))),
    ("annotations as a list", doc(rule("when: cpu > 80%\nannotations: [a, b]"))),
    ("pid 0", doc(target="targets:\n  - name: app\n    match: {pid: 0}\n")),
    ("pid above pid_max", doc(target="targets:\n  - name: app\n    match: {pid: 4194305}\n")),
    ("empty pid_file", doc(target="targets:\n  - name: app\n    match: {pid_file: ''}\n")),
    ("unknown log format",
     doc(target=TARGET + "    logs:\n      - {path: /var/log/a, format: json}\n")),
    ("log without path", doc(target=TARGET + "    logs:\n      - {format: cri}\n")),
    ("unknown log root",
     doc(target=TARGET + "    logs:\n      - {path: /var/log/a, root: node}\n")),
    ("log path under /proc",
     doc(target=TARGET + "    logs:\n      - {path: /proc/1/root/var/log/a}\n")),
    ("${ without a name", doc(rule("when: cpu > ${1X:-80}%"))),
    ("${ not closed", doc(target="targets:\n  - name: app\n    match: {process: '${APP'}\n")),
    ("rule targets not a list", doc(rule("when: cpu > 80%\ntargets: app"))),
    ("listen without a port", doc(top="listen: 127.0.0.1\n")),
    ("symbol_cache_max_bytes under 1MiB", doc(top="symbol_cache_max_bytes: 1000\n")),
    ("symbol_cache_max_bytes above 64GiB", doc(top="symbol_cache_max_bytes: 68719476737\n")),
    ("symbol_cache_max_bytes with a fraction", doc(top="symbol_cache_max_bytes: 1.5GiB\n")),
]

VALID = [
    ("plain 0 durations", doc(rule("when: cpu > 80%\nfor: 0\ncooldown: 0\nresolve_after: 0"))),
    ("quoted \"0\" durations", doc(rule("when: cpu > 80%\ncooldown: '0'"))),
    ("for: 3 of 5 unquoted", doc(rule("when: cpu > 80%\nfor: 3 of 5"))),
    ("every duration unit", doc(rule("when: cpu > 80%\ncooldown: 1d2h3m4s5ms"))),
    ("leading zeros in a duration", doc(rule("when: cpu > 80%\ncooldown: 05m"))),
    ("expression glued and spaced",
     doc(rule("when: (cpu>80%)and(rss > 512 MiB or rss_growth > 1.5 x baseline)"))),
    ("expression over lines", doc(rule("when: >-\n  cpu > 2sigma and\n  cpu > .5x baseline"))),
    ("oom_eta and size rates", doc(rule("when: oom_eta < 1h30m or rss_growth > 100KiB/s"))),
    ("expression from the environment", doc(rule("when: '${STAKEOUT_UNSET_X:-cpu > 80%}'"))),
    ("numbers as quoted strings",
     doc(rule("when: cpu > 80%\ncapture: {profile: cpu, rate: '1000'}"),
         alert="alert:\n  max_captures_per_hour: '3600'\n").replace("version: 1",
                                                                  "version: '1'")),
    ("YAML 1.1 booleans as label values",
     doc(rule("when: cpu > 80%\nlabels: {on: off, yes: no, page: true}"))),
    ("webhook url in upper case", doc(alert="alert:\n  webhook: {url: 'HTTPS://h/x'}\n")),
    ("empty webhook secret",
     doc(alert="alert:\n  webhook: {url: 'http://h/', secret: '${STAKEOUT_UNSET_S:-}'}\n")),
    ("$$ in a string", doc(rule("when: cpu > 80%\nannotations: {cost: 'over $$5'}"))),
    ("webhooks with every hook key",
     doc(alert="alert:\n  webhooks:\n"
               "    - {url: 'https://a/', format: slack, secret: 'whsec_c2VjcmV0', timeout: 30s,\n"
               "       connect_timeout: 2s, max_age: 12h, max_inline_bytes: 2MiB,\n"
               "       tls: {ca_file: /etc/ca.pem}}\n"
               "    - {url: 'https://b/', tls: {insecure_skip_verify: True}}\n"
               "  spool_max_bytes: 1GiB\n  redact: ['corp-[0-9]+']\n")),
    ("listen from the environment", doc(top="listen: '${STAKEOUT_UNSET_IP:-127.0.0.1}:9464'\n")),
    ("sizes as plain numbers",
     doc(alert="alert:\n  webhook: {url: 'http://h/', max_inline_bytes: 0}\n"
               "  spool_max_bytes: 1048576\n")),
    ("symbol_cache_max_bytes with a unit", doc(top="symbol_cache_max_bytes: 24MiB\n")),
    ("host logs with the target's ids",
     doc(target=TARGET + "    logs:\n"
                         "      - {path: '/var/log/containers/*-${container_id}.log', root: host}\n"
                         "      - {path: '/var/log/pods/*_${pod_uid}/app/*.log', root: host}\n"
                         "      - {path: /var/log/app.log, root: target}\n"
                         "      - {path: /procfs/app.log}\n")),
    ("symbol_cache_max_bytes of 1MiB in bytes", doc(top="symbol_cache_max_bytes: 1048576\n")),
]


# ---- the validator ---------------------------------------------------------------


def find_stakeout():
    env = os.environ.get("STAKEOUT_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    for cand in (Path("..") / "stakeout", Path("stakeout")):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand.resolve()
    return None


def stakeout_check(binary, path):
    """(exit code, stderr) of `stakeout check -q PATH` with an empty environment."""
    proc = subprocess.run([str(binary), "check", "-q", str(path)], env={},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30)
    return proc.returncode, proc.stderr.strip()


# ---- main ------------------------------------------------------------------------


MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def check_file(path, src, schema_path, validator, report, want_modeline):
    """Modeline (when wanted) and schema validity of one file; False on failure."""
    rel = path.relative_to(src)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        report.fail(str(rel), "cannot read: %s" % e)
        return False
    if want_modeline:
        first = text.split("\n", 1)[0]
        m = MODELINE.match(first)
        if not m:
            report.fail(str(rel), "first line is not '# yaml-language-server: $schema=...'")
        elif (path.parent / m.group(1)).resolve() != schema_path.resolve():
            report.fail(str(rel), "modeline points at %s, not at rules/schema.json" % m.group(1))
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        report.fail(str(rel), "not valid YAML: %s" % e)
        return False
    errors = schema_errors(validator, data)
    if errors:
        report.fail(str(rel), "; ".join(error_text(e) for e in errors[:5]))
        return False
    report.ok("%s: valid against the schema" % rel)
    return True


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    schema_only = "--schema-only" in argv[1:]
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src = Path(args[0]).resolve()
    schema_path = src / "rules" / "schema.json"
    report = Report()

    # 1. the schema
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        report.fail("rules/schema.json", "not a valid draft 2020-12 schema: %s" % e)
        print("\n1 failure: the schema itself; nothing else checked")
        return 1
    report.ok("rules/schema.json: a valid draft 2020-12 schema")
    check_schema_shape(schema, report)
    validator = jsonschema.Draft202012Validator(schema)

    # 2, 3. files that must be valid
    rules_files = sorted(p for p in (src / "rules").rglob("*") if p.suffix in (".yaml", ".yml"))
    good_files = sorted((src / "tests" / "config" / "good").glob("*.yaml"))
    if not rules_files:
        report.fail("rules/", "no YAML files found")
    if len(good_files) < 5:
        report.fail("tests/config/good", "expected at least 5 files, found %d" % len(good_files))
    for path in rules_files:
        check_file(path, src, schema_path, validator, report, want_modeline=True)
    for path in good_files:
        check_file(path, src, schema_path, validator, report, want_modeline=False)

    # 4. inline documents
    for name, text in INVALID:
        if not schema_errors(validator, load_yaml(text)):
            report.fail("invalid: " + name, "the schema accepts it:\n" + text)
        else:
            report.ok("invalid: %s: rejected by the schema" % name)
    for name, text in VALID:
        errors = schema_errors(validator, load_yaml(text))
        if errors:
            report.fail("valid: " + name, error_text(errors[0]) + "\n" + text)
        else:
            report.ok("valid: %s: accepted by the schema" % name)

    # 5. the validator agrees
    binary = None if schema_only else find_stakeout()
    if schema_only:
        report.note("stakeout check: skipped (--schema-only)")
    elif binary is None:
        report.fail("stakeout check", "no stakeout binary: set STAKEOUT_BIN, run from "
                    "<build>/tests as ctest does, or pass --schema-only")
    else:
        for path in rules_files + good_files:
            rc, err = stakeout_check(binary, path)
            if rc != 0:
                report.fail("stakeout check %s" % path.relative_to(src), err)
            else:
                report.ok("stakeout check %s: ok" % path.relative_to(src))
        with tempfile.TemporaryDirectory(prefix="schema_check.") as tmp:
            for i, (name, text) in enumerate(INVALID + VALID):
                want_ok = i >= len(INVALID)
                path = Path(tmp) / ("case%02d.yaml" % i)
                path.write_text(text, encoding="utf-8")
                rc, err = stakeout_check(binary, path)
                if rc != (0 if want_ok else 1):
                    report.fail("stakeout check on '%s'" % name,
                                "exit %d where the schema says %s: %s" %
                                (rc, "valid" if want_ok else "invalid", err or "(no message)"))
                else:
                    report.ok("stakeout check agrees on '%s'" % name)

    # Information only: the bad corpus.
    bad_dir = src / "tests" / "config" / "bad"
    for path in sorted(bad_dir.glob("*.yaml")) if bad_dir.is_dir() else []:
        try:
            seen = bool(schema_errors(validator, load_yaml(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, RecursionError, yaml.YAMLError):
            seen = True
        report.note("bad/%s: %s" % (path.name, "rejected by the schema" if seen else
                                    "accepted by the schema (only stakeout check sees it)"))

    print()
    if report.failures:
        print("schema_check: %d failed, %d passed. Failed:" % (len(report.failures),
                                                                report.passed))
        for what in report.failures:
            print("  - " + what)
        return 1
    print("schema_check: all %d checks passed" % report.passed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
