"""GPU serving rules (spec/rules.py ``_gpu``): CUDA hosts for the GPU image, no accelerator paid for and
left idle by the CPU image, no retired Azure sizes, and the AKS GPU pool a Kubernetes endpoint needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twinserve.platform import aws as aws_platform
from twinserve.platform import azure as azure_platform
from twinserve.spec import SpecError, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
GPU_POOL = {"vm_size": "Standard_NC4as_T4_v3", "node_count": 1}


@pytest.fixture()
def raw() -> dict:
    """The sample with a valid GPU prod: SageMaker g5, a managed T4 deployment, an AKS GPU pool."""
    raw = yaml.safe_load((REPO_ROOT / "deploy" / "twinserve.yaml").read_text())
    prod = raw["environments"]["prod"]
    prod["compute"] = {
        "gpu": True,
        "aws_instance_type": "ml.g5.xlarge",
        "azure_instance_type": "Standard_NC4as_T4_v3",
        "instance_count": 3,
    }
    prod["azure"] = {"batch_vm_size": "Standard_NC4as_T4_v3", "aks": {"gpu_pool": dict(GPU_POOL)}}
    return raw


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


def test_a_consistent_gpu_environment_is_valid(raw):
    env = parse_spec(raw).environment("prod")
    assert env.compute.gpu and env.azure.aks.gpu_pool.vm_size == GPU_POOL["vm_size"]
    assert not parse_spec(raw).environment("dev").compute.gpu


# --------------------------------------------------------------------------- SageMaker


def test_gpu_needs_a_cuda_instance_type(raw):
    raw["environments"]["prod"]["compute"]["aws_instance_type"] = "ml.m5.xlarge"
    message = only(raw)
    assert message.startswith("spec.yaml: environments.prod.compute.aws_instance_type: compute.gpu needs an NVIDIA")
    assert all(f"ml.{family}" in message for family in aws_platform.CUDA_INSTANCE_FAMILIES)


@pytest.mark.parametrize("instance_type", ["ml.inf2.xlarge", "ml.g4ad.xlarge", "ml.p3.2xlarge"])
def test_accelerators_that_cannot_run_the_cuda_12_image_are_refused(raw, instance_type):
    raw["environments"]["prod"]["compute"]["aws_instance_type"] = instance_type
    assert "compute.gpu needs an NVIDIA GPU instance that runs CUDA 12 images" in only(raw)


def test_a_gpu_instance_without_gpu_is_refused_as_paid_for_and_idle(raw):
    raw["environments"]["prod"]["compute"]["gpu"] = False
    raw["environments"]["prod"]["compute"]["azure_instance_type"] = "Standard_DS3_v2"
    raw["environments"]["prod"]["azure"] = {}
    message = only(raw)
    assert message.startswith("spec.yaml: environments.prod.compute.aws_instance_type: this is an accelerated")
    assert "(got 'ml.g5.xlarge')" in message


def test_serverless_has_no_gpu(raw):
    raw["environments"]["prod"]["targets"] = ["aws"]
    raw["environments"]["prod"]["serving"] = {"endpoint_type": "serverless"}
    raw["environments"]["prod"]["scaling"] = {"enabled": False}
    raw["environments"]["prod"]["rollout"] = {"strategy": "all_at_once"}
    raw["environments"]["prod"]["aws"] = {"data_capture": {"enabled": False}}
    raw["environments"]["prod"].pop("monitoring")  # serverless captures nothing to check
    assert only(raw) == (
        "spec.yaml: environments.prod.compute.gpu: SageMaker serverless endpoints have no GPU; "
        "use realtime or async (got True)"
    )


def test_gpu_batch_transform_is_refused_until_its_driver_can_be_chosen(raw):
    raw["environments"]["prod"]["serving"] = {"batch": {"enabled": True}}
    message = only(raw)
    assert message.startswith("spec.yaml: environments.prod.serving.batch.enabled: SageMaker batch transform")
    assert "TransformAmiVersion" in message


# --------------------------------------------------------------------------- image variant


def test_a_tabular_model_has_no_gpu_build(raw):
    raw["model"]["format"] = "xgboost"
    message = only(raw)
    assert message.startswith("spec.yaml: environments.prod.compute.gpu: the formats image has no GPU build")
    assert "GPU images serve onnx, torch models" in message


def test_the_formats_variant_chosen_by_name_has_no_gpu_build(raw):
    raw["container"]["image_variant"] = "formats"
    assert "the formats image has no GPU build" in only(raw)


# --------------------------------------------------------------------------- Azure ML


def test_a_gpu_environment_needs_a_current_gpu_size_on_managed_endpoints(raw):
    raw["environments"]["prod"]["compute"]["azure_instance_type"] = "Standard_DS3_v2"
    message = only(raw)
    assert message.startswith("spec.yaml: environments.prod.compute.azure_instance_type: GPU serving needs one of")
    assert all(size in message for size in azure_platform.GPU_VM_SIZES)


@pytest.mark.parametrize("size", ["Standard_NC6s_v3", "Standard_NC6", "Standard_NC12s_v2", "Standard_NV6"])
def test_retired_gpu_sizes_are_refused_wherever_they_are_used(raw, size):
    raw["environments"]["prod"]["azure"]["batch_vm_size"] = size
    assert only(raw).startswith("spec.yaml: environments.prod.azure.batch_vm_size: Azure has retired this size")


def test_a_kubernetes_gpu_environment_needs_a_gpu_pool(raw):
    del raw["environments"]["prod"]["azure"]["aks"]
    # prod sets no azure.aks, so the field is reported where prod inherits it from
    assert only(raw) == (
        "spec.yaml: defaults.azure.aks.gpu_pool: compute.gpu with a Kubernetes endpoint needs a GPU "
        "node pool in the AKS cluster (got (missing)) [inherited by environments prod]"
    )


def test_a_gpu_pool_without_gpu_serving_is_refused(raw):
    raw["environments"]["dev"]["azure"] = {"aks": {"gpu_pool": dict(GPU_POOL)}}
    assert only(raw).startswith("spec.yaml: environments.dev.azure.aks.gpu_pool: a GPU node pool is only used by")


def test_the_system_pool_stays_on_cpu(raw):
    raw["environments"]["prod"]["azure"]["aks"]["vm_size"] = "Standard_NC8as_T4_v3"
    raw["environments"]["prod"]["azure"]["aks"]["node_count"] = 3
    assert only(raw).startswith("spec.yaml: environments.prod.azure.aks.vm_size: the system pool runs Azure ML's")


def test_a_pod_cannot_request_more_gpus_or_cpus_than_a_node_has(raw):
    pool = raw["environments"]["prod"]["azure"]["aks"]["gpu_pool"]
    pool["instance_gpus"] = 2
    pool["instance_cpu"] = 4
    found = problems(raw)
    assert len(found) == 2, found
    assert "gpu_pool.instance_gpus: Standard_NC4as_T4_v3 has 1 GPU(s); a pod cannot request more (got 2)" in found[0]
    assert "gpu_pool.instance_cpu: Standard_NC4as_T4_v3 has 4 vCPUs" in found[1]


def test_gpu_rules_of_one_cloud_do_not_apply_to_the_other(raw):
    prod = raw["environments"]["prod"]
    prod["targets"] = ["aws"]
    prod["compute"]["azure_instance_type"] = "Standard_DS3_v2"
    del prod["azure"]
    assert parse_spec(raw).environment("prod").compute.gpu
