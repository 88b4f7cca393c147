// Validates rendered Kubernetes manifests (multi-document YAML files named
// on the command line) against the schemas of the kubernetes-models
// packages: Kubernetes itself, prometheus-operator, KEDA and Gateway API.
// Unknown fields are refused; so is a kind no package knows.
// Usage: node validate_manifests.mjs RENDERED.yaml ...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion -> the module that has its kinds.
function moduleFor(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "") return `kubernetes-models/${version}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}`;
  if (group === "keda.sh") return `@kubernetes-models/keda/${group}/${version}`;
  if (group === "gateway.networking.k8s.io") return `@kubernetes-models/gateway-api/${group}/${version}`;
  return `kubernetes-models/${group}/${version}`;
}

// The packages' schemas leave unknown fields unchecked, so they are found
// here: the object is validated through a proxy that records which fields
// the schema's validator reads at each path (a compiled JSON Schema reads
// every property it defines) and which objects it enumerates (maps, such as
// labels). A field never read at a path that was not enumerated is unknown
// to the schema.
function tracked(target, path, reads, enumerated) {
  return new Proxy(target, {
    get(obj, key, receiver) {
      const value = Reflect.get(obj, key, receiver);
      if (typeof key !== "string") return value;
      if (!reads.has(path)) reads.set(path, new Set());
      reads.get(path).add(key);
      if (value && typeof value === "object") return tracked(value, `${path}/${key}`, reads, enumerated);
      return value;
    },
    ownKeys(obj) {
      enumerated.add(path);
      return Reflect.ownKeys(obj);
    },
  });
}

function unknownFields(value, path, reads, enumerated, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, `${path}/${i}`, reads, enumerated, out));
  } else if (value && typeof value === "object") {
    const read = reads.get(path) ?? new Set();
    for (const [k, v] of Object.entries(value)) {
      if (!enumerated.has(path) && !read.has(k)) out.push(`${path}/${k}`);
      else unknownFields(v, `${path}/${k}`, reads, enumerated, out);
    }
  }
  return out;
}

function validateStrictly(model) {
  const reads = new Map();
  const enumerated = new Set();
  model.validate.call(tracked(model, "", reads, enumerated));
  const plain = JSON.parse(JSON.stringify(model));
  return unknownFields(plain, "", reads, enumerated, []).filter((p) => p !== "/apiVersion" && p !== "/kind");
}

// Gateway API's experimental channel: HTTPRoute rules' sessionPersistence
// (GEP-1619) is not in the standard-channel schema of the models package,
// so its fields are checked here against the experimental CRD's.
const duration = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
function checkSessionPersistence(obj, where) {
  const problems = [];
  if (obj.kind !== "HTTPRoute") return problems;
  (obj.spec?.rules ?? []).forEach((rule, i) => {
    const sp = rule.sessionPersistence;
    if (sp === undefined) return;
    delete rule.sessionPersistence;  // the standard schema checks the rest
    const known = new Set(["sessionName", "type", "absoluteTimeout", "idleTimeout", "cookieConfig"]);
    for (const k of Object.keys(sp)) if (!known.has(k)) problems.push(`/spec/rules/${i}/sessionPersistence/${k} is unknown`);
    if (sp.type !== undefined && !["Cookie", "Header"].includes(sp.type)) problems.push(`/spec/rules/${i}/sessionPersistence/type must be Cookie or Header`);
    if (sp.sessionName !== undefined && (typeof sp.sessionName !== "string" || sp.sessionName.length > 128)) problems.push(`/spec/rules/${i}/sessionPersistence/sessionName must be a string of at most 128 characters`);
    for (const t of ["absoluteTimeout", "idleTimeout"]) {
      if (sp[t] !== undefined && !duration.test(sp[t])) problems.push(`/spec/rules/${i}/sessionPersistence/${t} must be a Gateway API duration`);
    }
    if (sp.cookieConfig !== undefined) {
      for (const k of Object.keys(sp.cookieConfig)) if (k !== "lifetimeType") problems.push(`/spec/rules/${i}/sessionPersistence/cookieConfig/${k} is unknown`);
      if (sp.cookieConfig.lifetimeType !== undefined && !["Permanent", "Session"].includes(sp.cookieConfig.lifetimeType)) problems.push(`/spec/rules/${i}/sessionPersistence/cookieConfig/lifetimeType must be Permanent or Session`);
    }
  });
  return problems;
}

let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    // kustomize wraps a Secret's base64 at 70 columns; the API server's
    // decoder (Go's encoding/base64) skips the newlines, the schema's "byte"
    // format does not.
    if (obj.kind === "Secret" && obj.data) {
      for (const k of Object.keys(obj.data)) obj.data[k] = String(obj.data[k]).replace(/\s+/g, "");
    }
    let mod;
    try {
      mod = await import(moduleFor(obj.apiVersion));
    } catch (e) {
      console.log(`FAIL ${where}: no schema for apiVersion ${obj.apiVersion}`);
      failures++;
      continue;
    }
    const experimental = checkSessionPersistence(obj, where);
    if (experimental.length) {
      console.log(`FAIL ${where}: ${experimental.join("; ")}`);
      failures++;
      continue;
    }
    const Model = mod[obj.kind];
    if (!Model) {
      console.log(`FAIL ${where}: no schema for kind ${obj.kind} in ${obj.apiVersion}`);
      failures++;
      continue;
    }
    try {
      const unknown = validateStrictly(new Model(obj));
      if (unknown.length) {
        console.log(`FAIL ${where}: unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`);
        failures++;
        continue;
      }
      checked++;
    } catch (e) {
      console.log(`FAIL ${where}: ${e.message}`);
      failures++;
    }
  }
}
console.log(`${checked} objects valid, ${failures} invalid`);
process.exit(failures === 0 && checked > 0 ? 0 : 1);
