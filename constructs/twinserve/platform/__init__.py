"""Platform facts: the limits, name patterns and fixed names of SageMaker, Azure ML and AKS that
twinserve relies on, each defined once.

SDK-free (no aws_cdk, no pulumi): the spec rules (errors at the YAML field) and both construct
libraries (errors at the prop, for people who use the constructs alone) import the same numbers, so
a limit changes in one line. Each fact names its source where the number is not self-evident.

* :mod:`.aws`    SageMaker hosting, deployment guardrails, Application Auto Scaling, AWS Budgets
* :mod:`.azure`  Azure ML online/batch endpoints, AKS inference clusters, Azure Monitor, budgets
* :mod:`.shared` what both clouds accept alike (e-mail receivers)
"""
