#!/usr/bin/env python3
"""The Kubernetes manifests, alerts and dashboard, checked offline (no cluster).

  kubernetes_test.py manifests KUBECTL SPILLWAYD
      every overlay renders with kubectl kustomize; the config each one ships
      validates with spillwayd --check-config; the shape the docs promise
      (no replicas under an autoscaler, probes, drain time, hardening, the
      article's HPA, Redis split, cookie names, /metrics not exposed)
  kubernetes_test.py schemas KUBECTL NODE
      every rendered object validates against its schema, unknown fields
      refused (tests/deploy/validate_manifests.mjs)
  kubernetes_test.py metric-names SPILLWAYD
      every metric the rules, dashboard, adapter rule and KEDA triggers name
      is in the /metrics of a running spillwayd (default and GPU demo configs)

Exit 77 (CTest's skip) when kubectl or node is missing, with the reason.
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

import yaml

import spillwayd_process

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").exists())
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL {what}")


def need(program, why):
    if not program or not shutil.which(program):
        print(f"SKIP: {program or why} is not available ({why})")
        sys.exit(77)


def render(kubectl, overlay):
    out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"{overlay.name}: kubectl kustomize failed: {out.stderr.strip()}")
        print(f"FAIL {failures[-1]}")
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs, kind, name=None):
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def manifests(kubectl, spillwayd):
    need(kubectl, "kubectl with kustomize renders the overlays")
    for overlay in OVERLAYS:
        docs = render(kubectl, overlay)
        if not docs:
            continue
        name = overlay.name
        print(f"{name}: {len(docs)} objects")
        # The config each overlay ships is one spillwayd accepts.
        configs = find(docs, "ConfigMap", "spillway-config")
        check(len(configs) == 1, f"{name}: one spillway-config ConfigMap")
        with tempfile.TemporaryDirectory() as tmp:
            for cm in configs:
                path = pathlib.Path(tmp) / "spillway.yaml"
                path.write_text(cm["data"]["spillway.yaml"])
                res = subprocess.run([spillwayd, "--check-config", str(path)], capture_output=True, text=True)
                check(res.returncode == 0, f"{name}: the config does not validate: {res.stderr.strip()}")
                cfg = yaml.safe_load(cm["data"]["spillway.yaml"])
        dep = find(docs, "Deployment", "spillway")
        check(len(dep) == 1, f"{name}: the spillway Deployment")
        if not dep:
            continue
        spec = dep[0]["spec"]
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        check("replicas" not in spec, f"{name}: the Deployment sets no replicas (an autoscaler owns them)")
        check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{name}: readiness on /readyz")
        check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{name}: liveness on /healthz")
        check("--watch-config" in c["args"], f"{name}: the config is applied on change (--watch-config)")
        drain_s = int(cfg.get("server", {}).get("drain_timeout_ms", 30000)) / 1000
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
        check(pod["terminationGracePeriodSeconds"] > pre_stop + drain_s,
              f"{name}: terminationGracePeriodSeconds outlasts preStop + the drain ({pre_stop} + {drain_s} s)")
        sc = c["securityContext"]
        check(pod["securityContext"]["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
              and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"],
              f"{name}: non-root, read-only root, no privilege escalation, capabilities dropped")
        check(all(k in c["resources"]["requests"] for k in ("cpu", "memory")), f"{name}: CPU and memory requests")
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        check("subPath" not in mounts["/etc/spillway"], f"{name}: the config is mounted as a directory (updates reach it)")
        vols = {v["name"]: v for v in pod["volumes"]}
        check(vols["control-token"]["secret"]["secretName"] == "spillway-control-token",
              f"{name}: the control token comes from a Secret")
        token_files = [t.get("token_file") for t in cfg.get("control", {}).get("tokens", [])]
        check(any(t and t.startswith(mounts["/etc/spillway-secrets"]["mountPath"]) for t in token_files),
              f"{name}: the config reads the control token from the mounted Secret")
        for kind in ("Service", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy"):
            check(find(docs, kind), f"{name}: a {kind}")
        for hpa in find(docs, "HorizontalPodAutoscaler"):
            s = hpa["spec"]
            check((s["minReplicas"], s["maxReplicas"]) == (3, 20), f"{name}: HPA 3-20 replicas")
            metrics = {m["type"]: m for m in s["metrics"]}
            check(metrics["Resource"]["resource"]["target"]["averageUtilization"] == 70, f"{name}: HPA CPU 70 %")
            ext = metrics["External"]["external"]
            check(ext["metric"]["name"] == "requests_per_second" and ext["target"] == {"type": "AverageValue", "averageValue": "500"},
                  f"{name}: HPA requests_per_second AverageValue 500")
            check(s["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= pod["terminationGracePeriodSeconds"],
                  f"{name}: scale-down stabilisation no shorter than the drain")
        for so in find(docs, "ScaledObject", "spillway"):
            s = so["spec"]
            check((s["minReplicaCount"], s["maxReplicaCount"]) == (3, 20), f"{name}: KEDA 3-20 replicas")
            types = {t["type"]: t for t in s["triggers"]}
            check(types["cpu"]["metadata"]["value"] == "70", f"{name}: KEDA CPU 70 %")
            check(types["prometheus"]["metadata"]["threshold"] == "500", f"{name}: KEDA 500 requests/s per pod")
        if find(docs, "Deployment", "redis-limits"):
            args = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
                    for d in find(docs, "Deployment") if d["metadata"]["name"].startswith("redis-")}
            policy = {n: a[a.index("--maxmemory-policy") + 1] for n, a in args.items()}
            check(policy == {"redis-limits": "noeviction", "redis-cache": "allkeys-lru"},
                  f"{name}: limits in a Redis that never evicts, the cache in another")
            check(cfg["limits"]["redis"]["address"].startswith("redis-limits:")
                  and cfg["cache"]["redis"]["address"].startswith("redis-cache:"),
                  f"{name}: the config points limits and cache at their own Redis")
            np = find(docs, "NetworkPolicy", "redis")
            check(np and np[0]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "spillway",
                  f"{name}: only Spillway reaches Redis")
        for ing in find(docs, "Ingress"):
            a = ing["metadata"]["annotations"]
            check(a["nginx.ingress.kubernetes.io/affinity"] == "cookie", f"{name}: cookie affinity")
            check(a["nginx.ingress.kubernetes.io/session-cookie-name"] != "route",
                  f"{name}: the ingress cookie is not Spillway's own 'route'")
            check(a["nginx.ingress.kubernetes.io/proxy-buffering"] == "off", f"{name}: SSE unbuffered")
            paths = [p["path"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]]
            check(all(p.startswith("/v1") for p in paths), f"{name}: only /v1 exposed (not /metrics)")
        for route in find(docs, "HTTPRoute"):
            for rule in route["spec"]["rules"]:
                check(rule["sessionPersistence"]["sessionName"] != "route", f"{name}: the route cookie is not 'route'")
                check(all(m["path"]["value"].startswith("/v1") for m in rule["matches"]), f"{name}: only /v1 routed")
        for sm in find(docs, "ServiceMonitor") + find(docs, "PrometheusRule"):
            check(sm["metadata"]["labels"].get("release"), f"{name}: {sm['kind']} carries the release label")
        for cm in find(docs, "ConfigMap", "spillway-dashboard"):
            check(cm["metadata"]["labels"].get("grafana_dashboard") == "1", f"{name}: the dashboard has the sidecar label")
            json.loads(cm["data"]["dashboard.json"])


def schemas(kubectl, node):
    need(kubectl, "kubectl with kustomize renders the overlays")
    need(node, "Node.js runs the schema validation")
    validator = ROOT / "tests" / "deploy" / "validate_manifests.mjs"
    if not (ROOT / "tests" / "deploy" / "node_modules" / "kubernetes-models").exists():
        check(False, "tests/deploy/node_modules is missing: installer/sdk-deps.sh installs it (make test runs it)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for overlay in OVERLAYS:
            out = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True)
            check(out.returncode == 0, f"{overlay.name}: kubectl kustomize: {out.stderr.strip()}")
            path = pathlib.Path(tmp) / f"{overlay.name}.yaml"
            path.write_text(out.stdout)
            files.append(str(path))
        res = subprocess.run([node, str(validator), *files], capture_output=True, text=True)
        print(res.stdout + res.stderr)
        check(res.returncode == 0, "every rendered object validates against its schema")


# --- metric names ---------------------------------------------------------------
METRIC = re.compile(r"\b(spillway_[a-z0-9_]+)")


def used_metric_names():
    sources = {
        "alert rules": (DEPLOY / "components/monitoring/alerts.yaml").read_text(),
        "dashboard": (DEPLOY / "components/monitoring/dashboard.json").read_text(),
        "prometheus-adapter rule": (DEPLOY / "components/hpa/prometheus-adapter-rules.yaml").read_text(),
        "KEDA triggers": (DEPLOY / "components/keda/scaledobject.yaml").read_text()
        + (DEPLOY / "components/gpu-workers/scaledobjects.yaml").read_text(),
    }
    names = {}
    for where, text in sources.items():
        # Comments may mention names in prose; only queries count.
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for name in METRIC.findall(text):
            names.setdefault(name, set()).add(where)
    return names


def exposed_families(spillwayd, config):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--listen", "127.0.0.1:0", "--control-listen", "none", "--data-dir", tmp]
        if config:
            args += ["--config", str(config)]
        proc, port = spillwayd_process.start(spillwayd, args)
        try:
            if port is None:
                proc.wait(timeout=30)
                check(False, f"spillwayd did not start with {config or 'the default config'} (exit {proc.returncode})")
                return set()
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
            except OSError as e:
                check(False, f"GET /metrics with {config or 'the default config'}: {e}")
                return set()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    out = set()
    for name, kind in families:
        out.add(name)
        if kind == "histogram":
            out |= {name + "_bucket", name + "_sum", name + "_count"}
    return out


def metric_names(spillwayd):
    used = used_metric_names()
    check(len(used) >= 20, f"the monitoring files name {len(used)} metrics (expected at least 20)")
    exposed = exposed_families(spillwayd, None) | exposed_families(spillwayd, ROOT / "resources/config/gpu-demo.yaml")
    print(f"{len(used)} metric names used, {len(exposed)} exposed")
    for name, where in sorted(used.items()):
        check(name in exposed, f"{name} (used by {', '.join(sorted(where))}) is not in spillwayd's /metrics")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "manifests" and len(sys.argv) == 4:
        manifests(sys.argv[2], sys.argv[3])
    elif mode == "schemas" and len(sys.argv) == 4:
        schemas(sys.argv[2], sys.argv[3])
    elif mode == "metric-names" and len(sys.argv) == 3:
        metric_names(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
