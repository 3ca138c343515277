"""The autoscaling reconciler in CloudFormation's order: Before -> UpdateEndpoint -> After on every
deploy, and the rollbacks in reverse (autoscaling_fakes.CloudFormation), against the fake SageMaker that
refuses what SageMaker refuses (an instance type change or a removal of a registered variant,
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html). No AWS is reached.

Every edit must deploy in one go with no refused update, and every outcome - deployed, or rolled back
after the endpoint update, the After step or a later resource failed - must end consistent: a variant
is registered exactly when the live endpoint serves it as the template it ended on asks."""

from __future__ import annotations

import pytest
from autoscaling_fakes import (
    CloudFormation,
    DeployFailed,
    FakeAws,
    RollbackFailed,
    Template,
    assert_consistent,
    variant,
)

M5, C5 = "ml.m5.large", "ml.c5.large"

ONE = Template(config={"primary": M5}, scaled=(variant("primary", M5),))
TWO = Template(config={"a": M5, "b": M5}, scaled=(variant("a", M5), variant("b", M5)))
UNSCALED = Template(config={"primary": M5})
ASYNC = Template(config={"primary": M5}, scaled=(variant("primary", M5, min_capacity=0, scale_to_zero=True),))

EDITS = {
    "instance type": (ONE, Template(config={"primary": C5}, scaled=(variant("primary", C5),))),
    "variant removed": (TWO, Template(config={"a": M5}, scaled=(variant("a", M5),))),
    "variant renamed": (ONE, Template(config={"main": M5}, scaled=(variant("main", M5),))),
    "model only": (ONE, Template(config={"primary": M5}, scaled=ONE.scaled, models={"primary": "model-2"})),
    "capacity only": (ONE, Template(config={"primary": M5}, scaled=(variant("primary", M5, max_capacity=6),))),
    "scaling off": (ONE, UNSCALED),
    "scaling off and instance type": (ONE, Template(config={"primary": C5})),
    "scaling on and instance type": (UNSCALED, Template(config={"primary": C5}, scaled=(variant("primary", C5),))),
    "scaled to zero, instance type": (
        ASYNC,
        Template(config={"primary": C5}, scaled=(variant("primary", C5, min_capacity=0, scale_to_zero=True),)),
    ),
    "serverless to instances": (
        Template(config={"primary": "serverless"}, scaled=(variant("primary", "serverless", max_capacity=10),)),
        Template(config={"primary": M5}, scaled=(variant("primary", M5),)),
    ),
}
FAILURES = ["endpoint", "after", "later"]


def stack_at(template: Template) -> tuple[FakeAws, CloudFormation]:
    aws = FakeAws()
    stack = CloudFormation(aws)
    assert stack.deploy(template) == "deployed"
    assert_consistent(aws, "ep", template)
    return aws, stack


@pytest.mark.parametrize("edit", EDITS)
def test_every_edit_deploys_in_one_go(edit):
    old, new = EDITS[edit]
    aws, stack = stack_at(old)
    assert stack.deploy(new) == "deployed"
    assert aws.refused == []
    assert aws.live("ep") == new.config
    assert_consistent(aws, "ep", new)


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("edit", EDITS)
def test_every_failed_deploy_rolls_back_to_a_consistent_old_state(edit, failure):
    old, new = EDITS[edit]
    if failure == "endpoint" and old.config_name == new.config_name:
        pytest.skip("the edit does not update the endpoint")
    aws, stack = stack_at(old)
    assert stack.deploy(new, fail=failure) == "rolled back"
    assert aws.refused == []
    assert aws.live("ep") == old.config
    assert_consistent(aws, "ep", old)
    # and the next deploy of the same edit goes through
    assert stack.deploy(new) == "deployed"
    assert_consistent(aws, "ep", new)


def test_first_create_and_stack_delete():
    aws = FakeAws()
    stack = CloudFormation(aws)
    assert stack.deploy(ASYNC) == "deployed"  # Before finds no endpoint yet, After registers
    assert_consistent(aws, "ep", ASYNC)
    assert aws.alarms
    stack.delete()
    assert aws.targets == {} and aws.policies == {} and aws.alarms == {} and aws.endpoints == {}


def test_a_failed_first_create_leaves_nothing():
    aws = FakeAws()
    stack = CloudFormation(aws)
    assert stack.deploy(ASYNC, fail="later") == "rolled back"
    assert aws.targets == {} and aws.alarms == {} and aws.endpoints == {}


# --------------------------------------------------------------------------- what each part is for


def test_without_the_before_step_sagemaker_refuses_the_update():
    # the old design: targets that CloudFormation updates after the endpoint
    aws, _ = stack_at(ONE)
    stack = CloudFormation(aws, skip=("before",))
    stack.deployed = ONE
    new = EDITS["instance type"][1]
    assert stack.deploy(new) == "rolled back"
    assert aws.refused == ["ep: variant primary is a scalable target and would change its instance type"]


def test_without_the_after_step_the_new_instances_do_not_scale():
    aws, _ = stack_at(ONE)
    stack = CloudFormation(aws, skip=("after",))
    stack.deployed = ONE
    new = EDITS["instance type"][1]
    assert stack.deploy(new) == "deployed"
    assert aws.registered("ep") == {}  # consistent would be: primary registered on ml.c5.large
    with pytest.raises(AssertionError):
        assert_consistent(aws, "ep", new)


def test_rolling_the_endpoint_back_before_the_after_step_would_be_refused():
    # Why the After step's rollback must come first: it may have registered the new instance type before
    # it failed, and the endpoint cannot go back to the old type while that registration stands.
    aws, stack = stack_at(ONE)
    new = EDITS["instance type"][1]
    stack._custom_resource("before", ONE, new, [])
    stack._endpoint(ONE, new, [], fails=False)
    aws.fail_next("put_scaling_policy")
    with pytest.raises(DeployFailed):
        stack._custom_resource("after", ONE, new, [])
    assert set(aws.registered("ep")) == {"primary"}  # on ml.c5.large, its policy missing
    with pytest.raises(RollbackFailed, match="UPDATE_ROLLBACK_FAILED"):
        stack._roll_back(ONE, new, ["before", "endpoint"])  # the endpoint first, the After step never
    assert aws.refused
