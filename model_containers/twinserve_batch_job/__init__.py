"""The AWS Batch job around the serving image's batch mode: S3 in, ``python -m twinserve_serving batch``,
S3 out. Kept outside ``twinserve_serving`` so the server imports no cloud SDK; baked only into the
batch-job image of ``aws.platform: ecs_fargate`` (``stacks/aws/baked_image.py``)."""
