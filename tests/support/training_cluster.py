"""A fake Kubeflow Training Operator cluster for robust_controller tests (module and playbook).

Used with ``tests.support.fakeapi.FakeKubeAPI``: the real v1.8.1 CRDs (schemas
dropped) with the status the apiserver sets, the operator's Deployment,
Service, EndpointSlice and ValidatingWebhookConfiguration, a create hook that
plays the TFJob webhook with the RECORDED denial body
(errors/webhook-denied-dryrun-create-tfjob-no-image.json), and a reconciler
that plays the PyTorchJob controller and the kubelet.
"""

import copy

import yaml

from ansible_collections.ai_conformance.rke2.plugins.module_utils import training
from tests.support.shared import shared_path

PROFILE = training.operator_profile("kubeflow_training")
GROUP_VERSION = "kubeflow.org/v1"
REFERENCE_DENIAL = ('admission webhook "validator.tfjob.training-operator.kubeflow.org" denied the request: '
                    "spec.tfReplicaSpecs[Chief].template.spec.containers[0].image: Required value: must be required")

_CRDS = {}


def crd_object(plural):
    """The real v1.8.1 CRD (schema dropped to keep the fake light) with the status the apiserver sets."""
    if plural not in _CRDS:
        with open(shared_path("crds", "kubeflow-training-operator", "kubeflow.org_%s.yaml" % plural)) as handle:
            crd = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for version in crd["spec"]["versions"]:
            version.pop("schema", None)
        crd["status"] = {"acceptedNames": crd["spec"]["names"], "storedVersions": ["v1"], "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted"}]}
        _CRDS[plural] = crd
    return copy.deepcopy(_CRDS[plural])


def install_crds(fake):
    for name in training.expected_crds(PROFILE, "v1.8.1"):
        fake.put_object(crd_object(name.split(".")[0]))


def install_operator(fake, webhook=True, ready=True):
    """Deployment, Service, EndpointSlice and (optionally) the VWC and its validating hook."""
    fake.create_namespace("kubeflow")
    deployment = copy.deepcopy(fake.recorded("objects/deployment-gpu-inference.json")["response"])
    deployment["metadata"] = {"name": "training-operator", "namespace": "kubeflow"}
    # what the Deployment controller writes once the pod is ready (and available)
    deployment["status"]["readyReplicas"] = deployment["status"]["availableReplicas"] = 1 if ready else 0
    if ready:
        deployment["status"]["conditions"][0].update(status="True", reason="MinimumReplicasAvailable",
                                                     message="Deployment has minimum availability.")
    fake.put_object(deployment)
    fake.put_object({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "training-operator", "namespace": "kubeflow"},
                     "spec": {"selector": {"control-plane": "kubeflow-training-operator"},
                              "ports": [{"name": "webhook-server", "port": 443, "targetPort": 9443}]}})
    fake.put_object({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                     "metadata": {"name": "training-operator-x7k2p", "namespace": "kubeflow",
                                  "labels": {"kubernetes.io/service-name": "training-operator"}},
                     "ports": [{"name": "webhook-server", "port": 9443, "protocol": "TCP"}],
                     "endpoints": [{"addresses": ["10.42.0.17"], "conditions": {"ready": ready}}]})
    if webhook:
        vwc = copy.deepcopy(fake.recorded("objects/validatingwebhookconfiguration.create.json")["response"])
        vwc["metadata"] = {"name": "validator.training-operator.kubeflow.org"}
        hook = vwc["webhooks"][0]
        hook["clientConfig"] = {"caBundle": hook["clientConfig"]["caBundle"],
                                "service": {"namespace": "kubeflow", "name": "training-operator",
                                            "path": "/validate-kubeflow-org-v1-tfjob", "port": 443}}
        fake.put_object(vwc)


def deny_tfjobs_without_image(fake, calls=None):
    """The operator's TFJob webhook: every container needs an image; answers with the recorded denial."""
    denial = fake.recorded("errors/webhook-denied-dryrun-create-tfjob-no-image.json")["response"]

    def hook(obj, fake_, dry_run):
        if calls is not None:
            calls.append({"name": obj["metadata"]["name"], "dry_run": dry_run})
        for spec in obj["spec"]["tfReplicaSpecs"].values():
            for container in spec["template"]["spec"]["containers"]:
                if not container.get("image"):
                    raise fake_.Reject(403, denial)

    fake.on_create(GROUP_VERSION, "tfjobs", hook)


def play_training_operator(fake, exit_code=0, waiting=None, pod_exit_code=None, created=None):
    """Reconciler for PyTorchJobs: creates the master pod and writes the job conditions.

    ``pod_exit_code`` makes the pod's container exit with another code than the job's
    conditions say (a controller reporting what did not happen); ``created`` collects the jobs seen.
    """

    def reconcile(fake_):
        for job in fake_.objects(GROUP_VERSION, "pytorchjobs"):
            if job.get("status"):
                continue
            meta = job["metadata"]
            if created is not None:
                created.append(copy.deepcopy(job))
            pod_name = "%s-master-0" % meta["name"]
            container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
            if waiting:
                state = {"waiting": {"reason": waiting, "message": 'Back-off pulling image "%s"' % container["image"]}}
                phase = "Pending"
            else:
                code = exit_code if pod_exit_code is None else pod_exit_code
                state = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}
                phase = "Succeeded" if code == 0 else "Failed"
            # the operator creates the replica pod from the job's template through the API's admission
            template = copy.deepcopy(job["spec"]["pytorchReplicaSpecs"]["Master"]["template"])
            template.setdefault("metadata", {}).setdefault("labels", {}).update({
                "training.kubeflow.org/job-name": meta["name"],
                "training.kubeflow.org/operator-name": "pytorchjob-controller",
                "training.kubeflow.org/replica-type": "master",
                "training.kubeflow.org/replica-index": "0"})
            pod = fake_.create_pod_for(job, template, pod_name)
            if pod is None:
                continue  # refused (Pod Security, quota): FailedCreate event, as the operator sees it
            pod["spec"]["nodeName"] = "gpu-node-1"
            pod["status"] = {"phase": phase, "containerStatuses": [
                {"name": "pytorch", "image": container["image"], "restartCount": 0, "state": state}]}
            fake_.put_object(pod)
            fake_.set_pod_log(meta["namespace"], pod_name, "robust_controller reconciliation probe\n")
            now = "2026-11-23T07:00:00Z"
            conditions = [{"type": "Created", "status": "True", "reason": "PyTorchJobCreated",
                           "message": "PyTorchJob %s is created." % meta["name"], "lastTransitionTime": now}]
            if waiting:
                pass
            elif exit_code == 0:
                conditions += [
                    {"type": "Running", "status": "False", "reason": "PyTorchJobRunning", "lastTransitionTime": now,
                     "message": "PyTorchJob %s/%s is running." % (meta["namespace"], meta["name"])},
                    {"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded", "lastTransitionTime": now,
                     "message": "PyTorchJob %s/%s successfully completed." % (meta["namespace"], meta["name"])}]
            else:
                conditions += [
                    {"type": "Running", "status": "False", "reason": "PyTorchJobRunning", "lastTransitionTime": now},
                    {"type": "Failed", "status": "True", "reason": "PyTorchJobFailed", "lastTransitionTime": now,
                     "message": "PyTorchJob %s/%s has failed because 1 Master replica(s) failed." % (
                         meta["namespace"], meta["name"])}]
            fake_.set_status(GROUP_VERSION, "pytorchjobs", meta["name"], {
                "conditions": conditions, "startTime": now,
                "replicaStatuses": {"Master": {"succeeded": 1} if exit_code == 0 and not waiting else {"failed": 1}}},
                namespace=meta["namespace"])

    fake.add_reconciler(reconcile)


def leftovers(fake):
    """What robust_controller may have left: test namespaces, jobs, pods."""
    namespaces = [o["metadata"]["name"] for o in fake.objects("v1", "namespaces") if o["metadata"]["name"].startswith("aic-")]
    return namespaces + [o["metadata"]["name"] for o in fake.objects(GROUP_VERSION, "pytorchjobs")
                         + fake.objects(GROUP_VERSION, "tfjobs") + fake.objects("v1", "pods")]
