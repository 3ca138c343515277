"""Scripts the promotion pipeline's CodeBuild steps run from the repository (stacks/aws/pipeline_stack.py):
model resolution, the Azure deployment, the smoke tests of both clouds. Each is also a command anyone can run."""
