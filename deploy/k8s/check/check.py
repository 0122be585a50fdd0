"""The offline checks of deploy/k8s, run by scripts/check-deploy (which installs the tools).

Renders every kustomization, validates core objects with kubernetes-validate (strict) and
custom resources against their CRD schemas, runs checkov on the manifests and the
Dockerfile, and checks what ties the manifests to bullpen's own settings. Each validator is
first shown a broken manifest it must refuse, so a check that cannot fail is caught too.
Exit 1 on the first failing step."""

import argparse
import copy
import pathlib
import subprocess
import sys
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy/k8s"
OUT = ROOT / "target/k8s"
# The Kubernetes version the core objects are validated against.
KUBERNETES = "1.35.0"
CORE_GROUPS = {"v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}


def run(command, expect_success=True, quiet=False):
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if (done.returncode == 0) != expect_success:
        sys.stderr.write(done.stdout + done.stderr)
        wanted = "succeed" if expect_success else "fail"
        sys.exit(f"check-deploy: `{' '.join(map(str, command))}` did not {wanted}")
    if not quiet:
        sys.stdout.write(done.stdout)
    return done.stdout


def kustomizations():
    yield "base", K8S / "base"
    for overlay in sorted((K8S / "overlays").iterdir()):
        yield overlay.name, overlay


def is_core(resource):
    return resource["apiVersion"].split("/")[0] in CORE_GROUPS


def write_all(path, resources):
    path.write_text(yaml.safe_dump_all(resources, sort_keys=False))
    return path


def check_grace_period(name, resources):
    """terminationGracePeriodSeconds covers the drain and the shutdown timeout."""
    configs = [r for r in resources if r["kind"] == "ConfigMap"
               and r["metadata"]["name"].startswith("bullpen-config")]
    deployments = [r for r in resources if r["kind"] == "Deployment"]
    if not configs or not deployments:
        return
    server = tomllib.loads(configs[0]["data"]["default.toml"])["server"]
    needed = server["drain_secs"] + server["shutdown_timeout_secs"]
    grace = deployments[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    if grace <= needed:
        sys.exit(f"check-deploy: {name}: terminationGracePeriodSeconds {grace} does not cover "
                 f"drain_secs + shutdown_timeout_secs = {needed}")


def check_istio(name, resources):
    """The Rollout's Istio routes are routes of its VirtualService, each splitting between
    the canary and the stable Service (what Argo Rollouts sets weights on), and both
    Services exist."""
    rollouts = [r for r in resources if r["kind"] == "Rollout"]
    canary = rollouts[0]["spec"]["strategy"].get("canary", {}) if rollouts else {}
    istio = canary.get("trafficRouting", {}).get("istio")
    if not istio:
        return
    services = {r["metadata"]["name"] for r in resources if r["kind"] == "Service"}
    sides = {canary.get("canaryService"), canary.get("stableService")}
    if not sides <= services:
        sys.exit(f"check-deploy: {name}: the Rollout's canary and stable Services {sides} "
                 f"are not all among {sorted(services)}")
    wanted = istio["virtualService"]
    service = next((r for r in resources if r["kind"] == "VirtualService"
                    and r["metadata"]["name"] == wanted["name"]), None)
    if service is None:
        sys.exit(f"check-deploy: {name}: no VirtualService {wanted['name']}")
    routes = {route.get("name"): route for route in service["spec"]["http"]}
    for route in wanted["routes"]:
        hosts = {d["destination"]["host"] for d in routes.get(route, {}).get("route", [])}
        if hosts != sides:
            sys.exit(f"check-deploy: {name}: VirtualService route {route} must send to "
                     f"{sorted(sides)}, sends to {sorted(hosts)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--kubernetes-validate", required=True)
    parser.add_argument("--checkov", required=True)
    tools = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    run([sys.executable, "scripts/k8s-rules.py", "--check"])
    print("PrometheusRule matches deploy/prometheus/alerts.yml")

    rendered, core = {}, []
    for name, folder in kustomizations():
        text = run([tools.kubectl, "kustomize", folder], quiet=True)
        resources = [r for r in yaml.safe_load_all(text) if r]
        rendered[name] = write_all(OUT / f"{name}.yaml", resources)
        core.append(write_all(OUT / f"{name}.core.yaml", [r for r in resources if is_core(r)]))
        check_grace_period(name, resources)
        check_istio(name, resources)
        kinds = sorted({r["kind"] for r in resources})
        print(f"{name}: rendered {len(resources)} objects ({', '.join(kinds)})")

    validate = [tools.kubernetes_validate, "--strict", "--quiet", "-k", KUBERNETES]
    custom = ["node", K8S / "check/validate-custom-resources.mjs"]
    checkov = [tools.checkov, "--quiet", "--compact", "--skip-download"]

    # Each validator must refuse a broken manifest before its pass means anything.
    production = [r for r in yaml.safe_load_all(rendered["production"].read_text()) if r]
    broken = copy.deepcopy(production)
    deployment = next(r for r in broken if r["kind"] == "Deployment")
    deployment["spec"]["strategy"]["rollingUpdate"]["maxSurgeTypo"] = 1
    run(validate + [write_all(OUT / "broken.core.yaml", [deployment])],
        expect_success=False, quiet=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["privileged"] = True
    del deployment["spec"]["strategy"]["rollingUpdate"]["maxSurgeTypo"]
    run(checkov + ["--framework", "kubernetes", "-f", write_all(OUT / "broken.yaml", [deployment])],
        expect_success=False, quiet=True)
    rollouts = [r for r in yaml.safe_load_all(rendered["rollouts"].read_text()) if r]
    rollout = next(r for r in rollouts if r["kind"] == "Rollout")
    rollout["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "ten"
    run(custom + [write_all(OUT / "broken-custom.yaml", [rollout])],
        expect_success=False, quiet=True)
    second_site = [r for r in yaml.safe_load_all(rendered["second-site"].read_text()) if r]
    replica = next(r for r in second_site if r["kind"] == "Cluster")
    replica["spec"]["replica"]["source"] = "a-cluster-not-listed"
    run(custom + [write_all(OUT / "broken-replica-cluster.yaml", [replica])],
        expect_success=False, quiet=True)
    mesh = [r for r in yaml.safe_load_all(rendered["istio"].read_text()) if r]
    route = next(r for r in mesh if r["kind"] == "VirtualService")
    route["spec"]["http"][-1]["retries"]["attempts"] = "two"
    run(custom + [write_all(OUT / "broken-virtualservice.yaml", [route])],
        expect_success=False, quiet=True)
    print("each validator refuses a broken manifest")

    run(validate + core, quiet=True)
    print(f"core objects valid for Kubernetes {KUBERNETES} (strict)")
    run(custom + list(rendered.values()))
    files = [arg for path in rendered.values() for arg in ("-f", path)]
    run(checkov + ["--framework", "kubernetes", "dockerfile", "-f", ROOT / "Dockerfile"] + files)
    print("checkov passes on every rendered overlay and the Dockerfile")


if __name__ == "__main__":
    main()
