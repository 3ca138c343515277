"""Entry point Pulumi runs (Pulumi.yaml -> main: stacks/azure)."""

import sys
from pathlib import Path

# `pulumi up` runs this file directly; make `stacks` importable as in the CDK app and the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stacks.azure.program import main  # noqa: E402

main()
