#!/bin/sh
# Leftover hook for exec.kubernetes: prints how many pods of the execution
# (label execution-id=$1) still run or wait to (phase Pending or Running,
# not being deleted) on the fake API server at $K8S_FAKE_URL, namespace
# $K8S_FAKE_NS.  A finished Job and its pod stay for ttl_seconds_after_finished
# by design (for kubectl logs); what must not be left is anything running.
#   K8S_FAKE_URL=http://127.0.0.1:PORT contract_suite --leftover-cmd 'sh tests/contract/leftovers-k8s.sh %s'
id=${1:?execution id}
url=${K8S_FAKE_URL:?K8S_FAKE_URL not set}
ns=${K8S_FAKE_NS:-sx-test}
curl -sf "$url/api/v1/namespaces/$ns/pods?labelSelector=execution-id%3D$id" |
  /usr/bin/python3 -c '
import json, sys
items = json.load(sys.stdin).get("items") or []
print(sum(1 for p in items
          if (p.get("status") or {}).get("phase") in ("Pending", "Running")
          and not (p.get("metadata") or {}).get("deletionTimestamp")))'
