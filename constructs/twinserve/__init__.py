"""twinserve: one model, one container, one deployment spec, served on SageMaker and Azure ML.

Layers (see ARCHITECTURE.md):
  twinserve.spec    the typed, validated deployment spec
  twinserve.aws     CDK constructs (know nothing of environments)
  twinserve.azure   Pulumi components (know nothing of environments)
  stacks/           (repository folder) the deployable apps composing them from the spec
"""

__version__ = "0.1.0"
