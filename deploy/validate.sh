#!/usr/bin/env bash
# Checks the deployment files without a Docker engine or a cluster:
#   - docker/docker-compose.yml with Debian's docker-compose (`config -q`);
#   - deploy/kubernetes/*.yaml with kubernetes-validate (PyPI) in strict mode against the
#     built-in Kubernetes schemas; the PodMonitor CRD has no built-in schema, so it gets a
#     structural check of the fields the Prometheus Operator requires instead;
#   - deploy/grafana/*.json parse as JSON dashboards, deploy/prometheus/alerts.yaml as a rules file.
# That the dashboard and alert queries name only exported metrics is checked by
# `cargo test -p runnel --test dashboard`.
# Installs what is missing: docker-compose via apt-get (as root), kubernetes-validate into
# deploy/.venv. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf -- '--- %s\n' "$*"; }

if ! command -v docker-compose >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "docker-compose is missing and we are not root: apt-get install docker-compose" >&2
    exit 1
  fi
  say "installing docker-compose (apt)"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq docker-compose; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi

venv=deploy/.venv
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  say "installing kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate
fi

say "docker-compose config: docker/docker-compose.yml"
docker-compose -f docker/docker-compose.yml config -q
echo "ok"

builtin=()
crds=()
for f in deploy/kubernetes/*.yaml; do
  if grep -q '^apiVersion: monitoring.coreos.com/' "$f"; then crds+=("$f"); else builtin+=("$f"); fi
done

say "kubernetes-validate --strict: ${builtin[*]}"
"$venv/bin/kubernetes-validate" --strict --quiet "${builtin[@]}"
echo "ok (${#builtin[@]} files)"

say "Prometheus Operator resources (kubernetes-validate has no schema for them; structural check), Grafana dashboards, alert rules"
"$venv/bin/python" - "${crds[@]}" <<'PY'
import glob, json, sys
import yaml

def fail(msg):
    sys.exit(f"FAIL: {msg}")

for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        kind = doc.get("kind")
        meta = doc.get("metadata") or {}
        if not meta.get("name") or not meta.get("namespace"):
            fail(f"{path}: {kind} needs metadata.name and metadata.namespace")
        spec = doc.get("spec") or {}
        if kind == "PodMonitor":
            if not (spec.get("selector") or {}).get("matchLabels"):
                fail(f"{path}: PodMonitor needs spec.selector.matchLabels")
            eps = spec.get("podMetricsEndpoints")
            if not eps or not all(isinstance(e, dict) and e.get("port") for e in eps):
                fail(f"{path}: PodMonitor needs podMetricsEndpoints with a named port")
        else:
            fail(f"{path}: no check for {kind}")
    print(f"ok {path}")

for path in sorted(glob.glob("deploy/grafana/*.json")):
    d = json.load(open(path))
    panels = d.get("panels") or fail(f"{path}: no panels")
    for p in panels:
        if p.get("type") != "row" and not p.get("targets"):
            fail(f"{path}: panel {p.get('title')!r} has no targets")
        for t in p.get("targets", []):
            if not t.get("expr"):
                fail(f"{path}: panel {p.get('title')!r} has a target without expr")
    print(f"ok {path} ({len(panels)} panels)")

path = "deploy/prometheus/alerts.yaml"
rules = yaml.safe_load(open(path))
count = 0
for g in rules.get("groups") or fail(f"{path}: no groups"):
    for r in g.get("rules") or fail(f"{path}: group {g.get('name')} has no rules"):
        if not r.get("alert") or not isinstance(r.get("expr"), str):
            fail(f"{path}: every rule needs alert and expr: {r}")
        count += 1
print(f"ok {path} ({count} alerts)")
PY
say "all deployment files valid"
