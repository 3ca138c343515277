"""GPU serving and model formats on Azure ML (examples/azure/gpu.yaml, examples/azure/mlflow-model.yaml):
expected values are read from the specs, so an edit of an example changes what is expected."""

from __future__ import annotations

from azure_plan_queries import ML, REPO, batch_ml_environment, build_context_hash, of_type, one, serving_ml_environment

from stacks.model_image import resolve_model_image
from twinserve.azure.aks_inference_cluster import AksGpuPoolArgs
from twinserve.image_context import build_context_files
from twinserve.platform.azure import GPU_NODE_LABEL, KUBERNETES_GPU_INSTANCE_TYPE
from twinserve.spec import load_spec

GPU = REPO / "examples" / "azure" / "gpu.yaml"
MLFLOW = REPO / "examples" / "azure" / "mlflow-model.yaml"


def _deployments(planned: list[dict]) -> dict[str, dict]:
    return {r["name"]: r["inputs"] for r in of_type(planned, ML + "OnlineDeployment")}


def test_gpu_environment_adds_a_gpu_pool_that_the_gpu_instance_type_selects(plan):
    env = load_spec(GPU).environment("prod")
    pool_spec = env.azure.aks.gpu_pool
    planned = plan(GPU, "prod")
    pool = one(planned, "azure-native:containerservice:AgentPool")["inputs"]
    assert pool["vmSize"] == pool_spec.vm_size and pool["count"] == pool_spec.node_count
    assert pool["mode"] == "User" and pool["nodeLabels"] == GPU_NODE_LABEL
    # AKS installs the NVIDIA driver on GPU nodes; the pool name follows the size (a new size is a new
    # pool, created before the old is deleted: AKS cannot resize a pool's VMs in place)
    assert pool["gpuProfile"] == {"driver": "Install"}
    assert pool["agentPoolName"] == AksGpuPoolArgs(vm_size=pool_spec.vm_size).pool_name
    assert pool["agentPoolName"] != AksGpuPoolArgs(vm_size="Standard_NC8as_T4_v3").pool_name
    # ... and so is its logical name: Pulumi creates the new pool, then deletes the one that left the
    # program, instead of a delete-first replacement (https://learn.microsoft.com/azure/aks/resize-node-pool)
    assert one(planned, "azure-native:containerservice:AgentPool")["name"].endswith(f"-{pool['agentPoolName']}")
    # the AzureML extension installs the device plugin that makes nvidia.com/gpu schedulable
    extension = one(planned, "azure-native:kubernetesconfiguration:Extension")["inputs"]
    assert extension["configurationSettings"]["installNvidiaDevicePlugin"] == "True"
    # the attached compute declares the GPU instance type: the pool's label, the spec's pod resources
    compute = one(planned, ML + "Compute", **{"inputs.properties.computeType": "Kubernetes"})
    types = compute["inputs"]["properties"]["properties"]["instanceTypes"]
    gpu_type = types[KUBERNETES_GPU_INSTANCE_TYPE]
    assert gpu_type["nodeSelector"] == GPU_NODE_LABEL
    requested = {
        "cpu": str(pool_spec.instance_cpu),
        "memory": f"{pool_spec.instance_memory_gib}Gi",
        "nvidia.com/gpu": str(pool_spec.instance_gpus),
    }
    assert gpu_type["resources"] == {"requests": requested, "limits": requested}
    assert "defaultinstancetype" in types  # CPU deployments keep theirs
    assert one(planned, "azure-native:containerservice:AgentPool")["name"] in compute["depends_on"]


def test_gpu_deployments_run_the_cuda_image_on_gpu_hosts(plan):
    env = load_spec(GPU).environment("prod")
    planned = plan(GPU, "prod")
    deployments = _deployments(planned)
    assert deployments["gpu-prod-managed-primary"]["properties"]["instanceType"] == env.compute.azure_instance_type
    assert deployments["gpu-prod-k8s-primary"]["properties"]["instanceType"] == KUBERNETES_GPU_INSTANCE_TYPE
    batch_cluster = one(planned, ML + "Compute", **{"inputs.properties.computeType": "AmlCompute"})
    assert batch_cluster["inputs"]["properties"]["properties"]["vmSize"] == env.azure.batch_vm_size
    # both ML environments are built from the staged GPU context (Dockerfile.gpu as its Dockerfile)
    image = resolve_model_image(load_spec(GPU), env, GPU.parent, env_path="environments.prod")
    assert image.variant.name == "gpu"
    assert build_context_hash(planned) != build_context_hash(plan(GPU, "dev"))
    blobs = {
        r["inputs"]["blobName"].split("/", 3)[3]
        for r in of_type(planned, "azure-native:storage:Blob")
        if "-image-context-" in r["name"]
    }
    assert blobs == {
        f.relative_to(image.context.directory).as_posix() for f in build_context_files(image.context.directory)
    }
    assert serving_ml_environment(planned)["inputs"]["properties"]["build"]["dockerfilePath"] == "Dockerfile"
    assert (
        batch_ml_environment(planned)["inputs"]["properties"]["build"]["dockerfilePath"] == "Dockerfile.azureml-batch"
    )


def test_cpu_environment_of_the_gpu_example_has_no_gpu_parts(plan):
    planned = plan(GPU, "dev")
    assert not of_type(planned, "azure-native:containerservice:AgentPool")
    extension = one(planned, "azure-native:kubernetesconfiguration:Extension")["inputs"]
    assert "installNvidiaDevicePlugin" not in extension["configurationSettings"]
    compute = one(planned, ML + "Compute", **{"inputs.properties.computeType": "Kubernetes"})
    assert "instanceTypes" not in compute["inputs"]["properties"]["properties"]
    assert _deployments(planned)["gpu-dev-k8s-primary"]["properties"]["instanceType"] == "defaultinstancetype"


def test_mlflow_model_uploads_the_staged_context_with_its_requirements(plan):
    spec = load_spec(MLFLOW)
    image = resolve_model_image(spec, spec.environment("dev"), MLFLOW.parent, env_path="environments.dev")
    assert (image.model_format, image.variant.name) == ("mlflow", "formats")
    planned = plan(MLFLOW, "dev")
    content = build_context_hash(planned)
    uploaded = {
        r["inputs"]["blobName"]: r["inputs"]["source"]
        for r in of_type(planned, "azure-native:storage:Blob")
        if "-image-context-" in r["name"]
    }
    requirements = f"images/mlflow-serving/{content}/model-requirements/requirements.txt"
    assert requirements in uploaded
    # nothing extra for the container: it detects the format from the registered folder as we did
    batch = one(planned, ML + "BatchDeployment")["inputs"]["properties"]
    assert batch.get("environmentVariables") is None
    for deployment in _deployments(planned).values():
        assert not any(k.startswith("TWINSERVE_MODEL") for k in deployment["properties"]["environmentVariables"])
