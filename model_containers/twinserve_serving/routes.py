"""The HTTP contract of the container: one port, fixed paths.

These values are referenced by the Azure ML components (``inference_config`` liveness, readiness
and scoring routes) and by SageMaker itself, so they are a contract, not a setting: change them
here and in the deployment code together (a test checks the two agree).
"""

DEFAULT_PORT = 8080

# Amazon SageMaker hosting and batch transform
SAGEMAKER_PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
EXECUTION_PARAMETERS_PATH = "/execution-parameters"

# Azure ML custom container (inference_config routes)
LIVENESS_PATH = "/live"
READINESS_PATH = "/ready"
SCORING_PATH = "/score"

# Open Inference Protocol (KServe v2) health, for Triton/KServe-style probes
V2_LIVE_PATH = "/v2/health/live"
V2_READY_PATH = "/v2/health/ready"

METRICS_PATH = "/metrics"
