// Validates the custom resources in rendered manifests (YAML files given as arguments)
// against the schemas generated from their CRDs by kubernetes-models: Argo Rollouts
// (Rollout, AnalysisTemplate), KEDA (ScaledObject), the Prometheus Operator
// (ServiceMonitor, PrometheusRule) and Istio (VirtualService, DestinationRule,
// PeerAuthentication, AuthorizationPolicy). CloudNativePG publishes no such package, so its Cluster
// (a new one, or a replica cluster of another site) and ScheduledBackup are checked for the
// fields bullpen's deployment relies on. Core
// objects are skipped (kubernetes-validate checks them). Exit 1 on the first file with a
// problem, after listing every problem in it.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { AnalysisTemplate, Rollout } from "@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1";
import { DestinationRule, VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1";
import { AuthorizationPolicy, PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = {
  "argoproj.io/v1alpha1/Rollout": Rollout,
  "argoproj.io/v1alpha1/AnalysisTemplate": AnalysisTemplate,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
  "networking.istio.io/v1/VirtualService": VirtualService,
  "networking.istio.io/v1/DestinationRule": DestinationRule,
  "security.istio.io/v1/PeerAuthentication": PeerAuthentication,
  "security.istio.io/v1/AuthorizationPolicy": AuthorizationPolicy,
};

const at = (object, path) => path.split(".").reduce((value, key) => value?.[key], object);

// CloudNativePG: the fields the deployment needs, with their types (postgresql.cnpg.io/v1).
const CNPG = {
  Cluster: [
    ["spec.instances", "number"],
    ["spec.storage.size", "string"],
    ["spec.backup.barmanObjectStore.destinationPath", "string"],
    ["spec.backup.barmanObjectStore.s3Credentials.accessKeyId.name", "string"],
    ["spec.backup.barmanObjectStore.s3Credentials.secretAccessKey.name", "string"],
  ],
  ScheduledBackup: [
    ["spec.schedule", "string"],
    ["spec.cluster.name", "string"],
  ],
};

// A Cluster starts either empty (initdb: the database and its owner) or from another
// cluster (recovery, and as a replica cluster: a source named in externalClusters that has a
// backup store or a host to stream from).
function bootstrapProblems(cluster) {
  const initdb = at(cluster, "spec.bootstrap.initdb");
  const recovery = at(cluster, "spec.bootstrap.recovery");
  if (!initdb === !recovery) return ["spec.bootstrap must hold one of initdb and recovery"];
  if (initdb) {
    return ["database", "owner"]
      .filter((field) => typeof initdb[field] !== "string")
      .map((field) => `spec.bootstrap.initdb.${field} must be a string`);
  }
  const problems = [];
  const external = (name) => (at(cluster, "spec.externalClusters") || []).find((c) => c.name === name);
  const sources = [["spec.bootstrap.recovery.source", recovery.source]];
  if (at(cluster, "spec.replica.enabled")) {
    sources.push(["spec.replica.source", at(cluster, "spec.replica.source")]);
  }
  for (const [path, name] of sources) {
    const source = external(name);
    if (!source) {
      problems.push(`${path} must name an entry of spec.externalClusters`);
    } else if (typeof source.barmanObjectStore?.destinationPath !== "string"
               && typeof source.connectionParameters?.host !== "string") {
      problems.push(`externalClusters ${name} needs barmanObjectStore.destinationPath or connectionParameters.host`);
    }
  }
  return problems;
}

function problemsOf(resource) {
  const key = `${resource.apiVersion}/${resource.kind}`;
  const Model = MODELS[key];
  if (Model) {
    try {
      new Model(resource).validate();
      return [];
    } catch (error) {
      return [error.message];
    }
  }
  if (resource.apiVersion === "postgresql.cnpg.io/v1") {
    const fields = CNPG[resource.kind];
    if (!fields) return [`${key}: no check for this kind`];
    const problems = fields
      .filter(([path, type]) => typeof at(resource, path) !== type)
      .map(([path, type]) => `${path} must be a ${type}`);
    if (resource.kind === "Cluster") {
      if (!(at(resource, "spec.instances") >= 3)) {
        problems.push("spec.instances must be at least 3 (a primary and two replicas)");
      }
      problems.push(...bootstrapProblems(resource));
    }
    if (resource.kind === "ScheduledBackup" && at(resource, "spec.schedule")?.split(" ").length !== 6) {
      problems.push("spec.schedule must have six fields (seconds first)");
    }
    return problems;
  }
  if (resource.apiVersion.includes(".") && !resource.apiVersion.match(/(^|\.)k8s\.io\//)) {
    return [`${key}: a custom resource with no schema here`];
  }
  return [];
}

let failed = false;
for (const file of process.argv.slice(2)) {
  let checked = 0;
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    const resource = document.toJS();
    if (!resource?.apiVersion) continue;
    const problems = problemsOf(resource);
    const custom = MODELS[`${resource.apiVersion}/${resource.kind}`] || resource.apiVersion.startsWith("postgresql.cnpg.io/");
    if (custom) checked += 1;
    for (const problem of problems) {
      failed = true;
      console.error(`${file}: ${resource.kind}/${resource.metadata?.name}: ${problem}`);
    }
  }
  console.log(`${file}: ${checked} custom resources checked`);
}
process.exit(failed ? 1 : 0);
