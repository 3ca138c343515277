"""The Lambda function behind :class:`twinserve.aws.autoscaling.EndpointAutoscaling` (``reconcile.py``).

This folder is the function's code asset: standard library only, plus the boto3 that the Lambda
Python runtime provides. It imports nothing from twinserve, so the folder runs as it is.
"""
