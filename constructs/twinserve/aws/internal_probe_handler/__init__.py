"""The Lambda function behind :class:`twinserve.aws.internal_probe.InternalProbe` (``probe.py``).

This folder is the function's code asset: standard library only. It imports nothing from twinserve,
so the folder runs as it is.
"""
