#!/usr/bin/env python3
"""Checks the Kubernetes manifests: every document of every deploy/k8s/*.yaml (or of the folder
given) is valid against Kubernetes' API schemas (kubernetes-validate, strict: an unknown field
is an error), and together they hold what FastBreak needs: per target a Deployment with native
gRPC liveness and readiness probes on its port and resource requests, a Service and a
PodDisruptionBudget; the shared ConfigMap, the Secret with the credentials and DATABASE_URL, the
migration Job, and the OpenTelemetry Collector forwarding to Jaeger. Prints what it checked;
exits 1 naming every problem.

    python3 deploy/check.py [folder]
"""

import pathlib
import sys

import kubernetes_validate
import yaml

VERSION = "1.30.0"
TARGETS = {"gateway": 50051, "user": 50052, "strategy": 50053, "risk": 50054, "marketplace": 50055,
           "scouting": 50056, "trading": 50057, "notification": 50058, "agents": 50059, "web": 50060}


def main():
    folder = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "k8s"
    problems, resources = [], {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        sys.exit(f"no manifests in {folder}")
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            try:
                kubernetes_validate.validate(doc, VERSION, strict=True)
            except kubernetes_validate.ValidationError as error:
                problems.append(f"{path.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}: "
                                f"{error.message} at {'.'.join(str(p) for p in error.path)}")
            except Exception as error:  # an unknown kind or version, say
                problems.append(f"{path.name}: {doc.get('kind')}: {error}")
            resources[(doc.get("kind"), doc.get("metadata", {}).get("name"))] = doc

    for target, port in TARGETS.items():
        deployment = resources.get(("Deployment", target))
        if not deployment:
            problems.append(f"no Deployment for {target}")
        else:
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            for probe in ("readinessProbe", "livenessProbe"):
                if container.get(probe, {}).get("grpc", {}).get("port") != port:
                    problems.append(f"{target}: no gRPC {probe} on port {port}")
            if not container.get("resources", {}).get("requests"):
                problems.append(f"{target}: no resource requests")
            if container.get("args") != ["serve", "--target", target]:
                problems.append(f"{target}: does not serve its target: {container.get('args')}")
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            listen = {name: value for name, value in env.items() if name.endswith("_LISTEN_ADDR")}
            if listen != {f"FASTBREAK_{target.upper()}_LISTEN_ADDR": f"0.0.0.0:{port}"}:
                problems.append(f"{target}: listens by the wrong variable or port: {listen}")
            if target == "web" and env.get("FASTBREAK_WEB_SECURE_COOKIES") != "on":
                problems.append("web: its cookies are not Secure (FASTBREAK_WEB_SECURE_COOKIES=on) behind TLS")
        for kind in ("Service", "PodDisruptionBudget"):
            if (kind, target) not in resources:
                problems.append(f"no {kind} for {target}")
    secret = resources.get(("Secret", "fastbreak"), {}).get("stringData", {})
    for key in ("FASTBREAK_INTERNAL_TOKEN", "FASTBREAK_OPERATOR_TOKEN", "DATABASE_URL"):
        if key not in secret:
            problems.append(f"the Secret lacks {key}")
    if ("ConfigMap", "fastbreak") not in resources:
        problems.append("no shared ConfigMap")
    job = resources.get(("Job", "fastbreak-migrate"))
    if not job or job["spec"]["template"]["spec"]["containers"][0].get("args") != ["migrate"]:
        problems.append("no migration Job")
    collector = resources.get(("ConfigMap", "otel-collector"), {}).get("data", {}).get("config.yaml", "")
    if "jaeger" not in collector:
        problems.append("the OpenTelemetry Collector does not forward to Jaeger")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"{len(files)} manifests, {len(resources)} resources: valid against Kubernetes {VERSION} (strict); "
          f"every target has its Deployment with gRPC probes, Service and PodDisruptionBudget")


if __name__ == "__main__":
    main()
