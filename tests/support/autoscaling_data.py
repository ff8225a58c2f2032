"""Shared cluster_autoscaling test data: cluster-autoscaler status texts and Azure nodes.

Azure nodes are the recorded ``gpu-node-1`` (a real v1.34 Node object from
../shared/k8s-fixtures) with the spec.providerID the Azure cloud-node-manager
sets added, since the recording cluster had no cloud provider; that field and
the name are the only changes.
"""

import copy

from tests.support.shared import fixture_response

SUB = "azure:///subscriptions/0b6c2a0e-1111-4c3a-9d7e-2f0b8c1d2e3f/resourceGroups/rke2-ai/providers/Microsoft.Compute"
GPU_VMSS = "rke2-gpu-vmss"

# YAML status as written by cluster-autoscaler >= 1.30 (field layout of
# kubernetes/autoscaler clusterstate/utils/status_test.yaml), for an Azure VMSS.
YAML_STATUS = """\
time: 2026-11-23 06:40:12.123456789 +0000 UTC
autoscalerStatus: Running
clusterWide:
  health:
    status: Healthy
    nodeCounts:
      registered:
        total: 2
        ready: 2
        notStarted: 0
      longUnregistered: 0
      unregistered: 0
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleUp:
    status: NoActivity
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleDown:
    status: NoCandidates
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
nodeGroups:
- name: rke2-cpu-vmss
  health:
    status: Healthy
    nodeCounts:
      registered:
        total: 1
        ready: 1
        notStarted: 0
      longUnregistered: 0
      unregistered: 0
    cloudProviderTarget: 1
    minSize: 1
    maxSize: 1
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleUp:
    status: NoActivity
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleDown:
    status: NoCandidates
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
- name: rke2-gpu-vmss
  health:
    status: Healthy
    nodeCounts:
      registered:
        total: 1
        ready: 1
        notStarted: 0
      longUnregistered: 0
      unregistered: 0
    cloudProviderTarget: 1
    minSize: 0
    maxSize: 3
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleUp:
    status: Backoff
    backoffInfo:
      errorCode: QUOTA_EXCEEDED
      errorMessage: "Operation could not be completed as it results in exceeding approved standardNCADSH100v5Family Cores quota."
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
  scaleDown:
    status: NoCandidates
    lastProbeTime: "2026-11-23T06:40:12Z"
    lastTransitionTime: "2026-11-23T06:30:02Z"
"""

# Text status as written by cluster-autoscaler before 1.30 (api/utils.go GetReadableString,
# clusterstate.go buildHealthStatusNodeGroup / buildScaleUpStatusNodeGroup).
TEXT_STATUS = """\
Cluster-autoscaler status at 2026-11-23 06:40:12.123456789 +0000 UTC:
Cluster-wide:
  Health:      Healthy (ready=2 unready=0 (resourceUnready=0) notStarted=0 longNotStarted=0 registered=2 longUnregistered=0)
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4
  ScaleUp:     NoActivity (ready=2 registered=2)
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4
  ScaleDown:   NoCandidates (candidates=0)
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4

NodeGroups:
  Name:        rke2-gpu-vmss
@GROUP_HEALTH@
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4
  ScaleUp:     NoActivity (ready=1 cloudProviderTarget=1)
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4
  ScaleDown:   NoCandidates (candidates=0)
               LastProbeTime:      2026-11-23 06:40:12.1 +0000 UTC m=+600.2
               LastTransitionTime: 2026-11-23 06:30:02.3 +0000 UTC m=+10.4

""".replace("@GROUP_HEALTH@", (
    "  Health:      Healthy (ready=1 unready=0 (resourceUnready=0) notStarted=0 longNotStarted=0 registered=1 "
    "longUnregistered=0 cloudProviderTarget=1 (minSize=1, maxSize=1))"))


def recorded_node():
    return fixture_response("k8s-fixtures", "objects", "node-gpu-node-1.final.json")


def azure_node(name, scale_set, instance, gpus=True):
    node = copy.deepcopy(recorded_node())
    node["metadata"]["name"] = name
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    node["spec"]["providerID"] = "%s/virtualMachineScaleSets/%s/virtualMachines/%s" % (SUB, scale_set, instance)
    if not gpus:
        for key in ("capacity", "allocatable"):
            node["status"][key].pop("nvidia.com/gpu")
        for key in list(node["metadata"]["labels"]):
            if key.startswith("nvidia.com/"):
                node["metadata"]["labels"].pop(key)
    return node


def cluster_nodes():
    return [azure_node("rke2-cpu-vmss000000", "rke2-cpu-vmss", 0, gpus=False),
            azure_node("rke2-gpu-vmss000000", GPU_VMSS, 0)]
