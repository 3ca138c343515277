"""Two CloudFormation templates of a stack -> what ``cdk deploy`` would do, and what SageMaker or
CloudFormation would refuse.

Replacement comes from the resource provider schemas (``createOnlyProperties``,
:func:`twinserve.platform.aws.cfn_resource_schema`). A replaced resource gets a new physical id, so
every ``Ref``/``Fn::GetAtt``/``${}`` to it changes too: that is propagated until nothing changes
(a new model replaces the endpoint config that names it, which updates the endpoint). Asset hashes
are compared the way tests/aws/aws_synth.normalise does: a value that differs only in a 64-hex hash
is a changed asset, reported as what it is (a new image, a new model archive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..platform import aws as aws_platform
from .model import MISSING, Change, Flag, Path, Section, path_matches, show_change, show_path, show_value, summarize
from .sides import StackTemplate

HASH = re.compile(r"[0-9a-f]{64}")
"""An asset hash (S3 key of a file asset, tag of an image asset), as tests/aws/aws_synth.normalise has it."""
SKIPPED_TYPES = {"AWS::CDK::Metadata"}
"""Version metadata the CDK adds to each stack: never a change of what is deployed."""
MODEL_ARCHIVE_PREFIX = "models/"
"""Where ModelArtifacts (twinserve/aws/model_artifacts.py) uploads ``models/<name>/<version>/``."""
BUCKET_DEPLOYMENT = "Custom::CDKBucketDeployment"
ENDPOINT = "AWS::SageMaker::Endpoint"
SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
CAUSES = ("value", "image", "asset")
"""Diff causes that start a change (the others follow from a replaced resource)."""
SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}")


@dataclass(frozen=True)
class _Diff:
    path: Path
    old: Any
    new: Any
    cause: str
    """value, image, asset, follows (a replaced resource it refers to) or reference (refers elsewhere)."""
    target: str | None = None


def _reference(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def _compare(old: Any, new: Any, path: Path, replaced: set[str], images: frozenset[str], out: list[_Diff]) -> None:
    ref_old, ref_new = _reference(old), _reference(new)
    if ref_new is not None and ref_old is not None:
        if ref_old != ref_new:
            out.append(_Diff(path, old, new, "reference", ref_new))
        elif ref_new in replaced:
            out.append(_Diff(path, old, new, "follows", ref_new))
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _compare(old.get(key, MISSING), new.get(key, MISSING), (*path, key), replaced, images, out)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _compare(a, b, (*path, i), replaced, images, out)
        return
    if old != new:
        if isinstance(old, str) and isinstance(new, str) and HASH.sub("#", old) == HASH.sub("#", new):
            cause = "image" if any(h in images for h in HASH.findall(new)) else "asset"
            out.append(_Diff(path, old, new, cause))
        else:
            out.append(_Diff(path, old, new, "value"))
        return
    if isinstance(new, str):
        for target in SUB_REFERENCE.findall(new):
            if target in replaced:
                out.append(_Diff(path, old, new, "follows", target))
                return


@dataclass
class _Resource:
    logical_id: str
    type: str
    action: str
    diffs: list[_Diff]
    base: dict | None
    new: dict | None

    @property
    def replaced(self) -> bool:
        return self.action == "replace"


def _create_only_hit(resource_type: str, diffs: list[_Diff]) -> list[_Diff]:
    schema = aws_platform.cfn_resource_schema(resource_type)
    if schema is None:
        return []
    return [d for d in diffs if any(path_matches(p, d.path) for p in schema.create_only)]


def _plan_resources(base: dict, new: dict, images: frozenset[str]) -> dict[str, _Resource]:
    """Every resource's action, with replacements propagated to what refers to them."""
    old_res = {k: v for k, v in base.get("Resources", {}).items() if v.get("Type") not in SKIPPED_TYPES}
    new_res = {k: v for k, v in new.get("Resources", {}).items() if v.get("Type") not in SKIPPED_TYPES}
    replaced: set[str] = set()
    while True:
        planned: dict[str, _Resource] = {}
        for lid in sorted(set(old_res) | set(new_res)):
            a, b = old_res.get(lid), new_res.get(lid)
            if a is None or b is None:
                kind = (b or a)["Type"]  # type: ignore[index]
                planned[lid] = _Resource(lid, kind, "create" if a is None else "delete", [], a, b)
                continue
            diffs: list[_Diff] = []
            if a["Type"] != b["Type"]:
                diffs.append(_Diff(("Type",), a["Type"], b["Type"], "value"))
            _compare(a.get("Properties", {}), b.get("Properties", {}), (), replaced, images, diffs)
            for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
                if a.get(attribute) != b.get(attribute):
                    diffs.append(_Diff((attribute,), a.get(attribute, MISSING), b.get(attribute, MISSING), "policy"))
            if not diffs:
                continue
            properties = [d for d in diffs if d.cause != "policy"]
            replace = a["Type"] != b["Type"] or bool(_create_only_hit(b["Type"], properties))
            planned[lid] = _Resource(lid, b["Type"], "replace" if replace else "update", diffs, a, b)
        now = {lid for lid, r in planned.items() if r.replaced}
        if now == replaced:
            return planned
        replaced = now


def _describe(diff: _Diff, resource: _Resource) -> str:
    where = show_path(diff.path)
    if diff.cause == "image":
        return f"{where}: new image"
    if diff.cause == "asset":
        prefix = (resource.new or {}).get("Properties", {}).get("DestinationBucketKeyPrefix")
        is_model = resource.type == BUCKET_DEPLOYMENT and str(prefix).startswith(MODEL_ARCHIVE_PREFIX)
        return f"{where}: new model archive" if is_model else f"{where}: new asset"
    if diff.cause == "follows":
        return f"{where}: follows the replaced {diff.target}"
    if diff.cause == "reference":
        return f"{where}: now {diff.target}"
    return f"{where}: {show_change(diff.old, diff.new)}"


def _why(resource: _Resource) -> str:
    if resource.action == "create":
        return "new in the template"
    if resource.action == "delete":
        policy = (resource.base or {}).get("DeletionPolicy", "Delete")
        return f"no longer in the template (DeletionPolicy {policy})"
    hits = _create_only_hit(resource.type, [d for d in resource.diffs if d.cause != "policy"])
    parts = [f"{_describe(d, resource)} (create-only)" for d in hits]
    parts += [_describe(d, resource) for d in resource.diffs if d not in hits]
    if aws_platform.cfn_resource_schema(resource.type) is None and not resource.type.startswith("Custom::"):
        parts.append("no resource schema: CloudFormation may replace it")
    return summarize(parts)


def compare_stacks(section: Section, base: dict[str, StackTemplate], new: dict[str, StackTemplate]) -> None:
    """Add to ``section`` the changes and flags of every stack of one environment."""
    for name in sorted(set(base) | set(new)):
        old_stack, new_stack = base.get(name), new.get(name)
        if new_stack is None:
            section.notes.append(
                f"stack {name} is no longer synthesized: `cdk deploy` leaves it as it is "
                f"(remove it with `cdk destroy`, termination protection permitting)"
            )
            continue
        short = new_stack.display_name.rsplit("/", 1)[-1]
        old_template = old_stack.template if old_stack else {}
        planned = _plan_resources(old_template, new_stack.template, new_stack.images)
        for resource in planned.values():
            changed = [show_path(d.path) for d in resource.diffs]
            rid = f"{short}/{resource.logical_id}"
            section.changes.append(Change(resource.action, rid, resource.type, _why(resource), changed))
        if old_stack is not None:
            _flag_retained_and_named(section, short, planned)
            _flag_endpoints(section, short, old_template, new_stack.template, planned)
            _flag_model_archive(section, short, planned)


def _flag_retained_and_named(section: Section, short: str, planned: dict[str, _Resource]) -> None:
    for resource in planned.values():
        rid = f"{short}/{resource.logical_id}"
        base = resource.base or {}
        if resource.action == "delete" and base.get("DeletionPolicy") == aws_platform.CFN_RETAIN:
            section.flag(_retained(rid, "deleted", "DeletionPolicy", resource))
        if resource.replaced and base.get("UpdateReplacePolicy") == aws_platform.CFN_RETAIN:
            section.flag(_retained(rid, "replaced", "UpdateReplacePolicy", resource))
        if resource.replaced:
            names = _unchanged_names(resource)
            if names:
                section.flag(
                    Flag(
                        "refused",
                        "cfn-custom-name-replacement",
                        f"replaced while its name ({', '.join(names)}) stays the same: CloudFormation cannot "
                        "replace a custom-named resource (the new one would need the old one's name)",
                        "give it a new name in the same change (e.g. rename the deployment or environment), or "
                        "avoid the change of its create-only property",
                        aws_platform.CFN_CUSTOM_NAME_SOURCE,
                        [rid],
                    )
                )


def _names(resource: _Resource, props: dict) -> list[str]:
    """The name properties ``props`` sets (``AlarmName iris-dev-primary-5xx``) that the change leaves as they are."""
    schema = aws_platform.cfn_resource_schema(resource.type)
    if schema is None:
        return []
    names = []
    for path in schema.name_properties:
        value: Any = props
        for part in path:
            value = value.get(part, MISSING) if isinstance(value, dict) else MISSING
        changed = any(path_matches(path, d.path) for d in resource.diffs)
        if value is not MISSING and not changed:
            names.append(f"{show_path(path)} {show_value(value)}")
    return names


def _unchanged_names(resource: _Resource) -> list[str]:
    return _names(resource, (resource.new or {}).get("Properties", {}))


def _retained(rid: str, what: str, attribute: str, resource: _Resource) -> Flag:
    named = bool(_names(resource, (resource.base or {}).get("Properties", {})))
    return Flag(
        "leftover",
        "cfn-retain",
        f"{what} with {attribute}: Retain: CloudFormation leaves the old resource in the account, outside any stack",
        "expected for kept data; delete or import it by hand once it is no longer needed"
        + (" - while it exists, its fixed name blocks creating it again" if named else ""),
        aws_platform.CFN_RETAIN_SOURCE if what == "replaced" else aws_platform.RETAINED_NAME_SOURCE,
        [rid],
    )


# --------------------------------------------------------------------------- SageMaker endpoints


def _variants(template: dict, endpoint: dict) -> tuple[str | None, dict[str, dict]]:
    config_id = _reference(endpoint.get("Properties", {}).get("EndpointConfigName"))
    config = template.get("Resources", {}).get(config_id or "", {}).get("Properties", {})
    return config_id, {v.get("VariantName"): v for v in config.get("ProductionVariants", [])}


def _autoscaled_variants(template: dict, endpoint_name: Any) -> set[str]:
    found = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != SCALABLE_TARGET:
            continue
        match = aws_platform.SCALABLE_VARIANT.match(str(resource.get("Properties", {}).get("ResourceId", "")))
        if match and match["endpoint"] == endpoint_name:
            found.add(match["variant"])
    return found


def _rollout(endpoint: dict) -> tuple[str | None, str]:
    """(guarded policy or None, a short description of the rollout)."""
    config = endpoint.get("Properties", {}).get("DeploymentConfig") or {}
    alarms = len((config.get("AutoRollbackConfiguration") or {}).get("Alarms", []))
    rollback = f", rollback on {alarms} alarms" if alarms else ""
    if "BlueGreenUpdatePolicy" in config:
        routing = config["BlueGreenUpdatePolicy"].get("TrafficRoutingConfiguration", {})
        kind = str(routing.get("Type", "ALL_AT_ONCE"))
        size = routing.get("CanarySize") or routing.get("LinearStepSize")
        step = f" {size['Value']}{'%' if size.get('Type') == 'CAPACITY_PERCENT' else ' instances'}" if size else ""
        wait = routing.get("WaitIntervalInSeconds")
        bake = f", {wait} s bake" if wait else ""
        return "BlueGreenUpdatePolicy", f"blue/green {kind.lower().replace('_', ' ')}{step}{bake}{rollback}"
    if "RollingUpdatePolicy" in config:
        batch = config["RollingUpdatePolicy"].get("MaximumBatchSize", {})
        return "RollingUpdatePolicy", f"rolling, batches of {batch.get('Value')}{rollback}"
    return None, "no deployment guardrails"


def _flag_endpoints(section: Section, short: str, base: dict, new: dict, planned: dict[str, _Resource]) -> None:
    for resource in planned.values():
        if resource.type != ENDPOINT or resource.action != "update" or resource.base is None:
            continue
        old_config, old_variants = _variants(base, resource.base)
        new_config, new_variants = _variants(new, resource.new or {})
        config = planned.get(new_config or "")
        if old_config == new_config and (config is None or not config.replaced):
            continue  # the endpoint keeps its config: no variant changes
        rid = f"{short}/{resource.logical_id}"
        endpoint_name = resource.base.get("Properties", {}).get("EndpointName")
        policy, rollout = _rollout(resource.new or {})
        section.notes.append(_endpoint_story(planned, rid, new_config, rollout))
        autoscaled = _autoscaled_variants(base, endpoint_name)
        for variant in sorted(autoscaled):
            old = old_variants.get(variant, {})
            if variant not in new_variants:
                what = f"variant {variant} is removed or renamed"
            elif old.get("InstanceType") != new_variants[variant].get("InstanceType"):
                what = (
                    f"variant {variant} changes instance type "
                    f"({old.get('InstanceType')} -> {new_variants[variant].get('InstanceType')})"
                )
            else:
                continue
            section.flag(
                Flag(
                    "refused",
                    "sagemaker-autoscaled-variant",
                    f"{what} while it is an Application Auto Scaling target: SageMaker refuses the "
                    "UpdateEndpoint; it needs the scaling release around the endpoint update",
                    "release the scaling around the endpoint update: deregister the variant's scalable target "
                    "first (deploy with scaling.enabled: false), deploy this change, then enable scaling "
                    "again - or let the scaling reconciler do it; CloudFormation alone deletes the old target "
                    "only after the failed update",
                    aws_platform.AUTOSCALED_UPDATE_SOURCE,
                    [rid],
                )
            )
        if policy and set(old_variants) != set(new_variants):
            section.flag(
                Flag(
                    "refused",
                    "guardrail-variant-names",
                    f"the variant names change ({', '.join(sorted(old_variants))} -> "
                    f"{', '.join(sorted(new_variants))}) in a guarded update ({rollout}): deployment guardrails need "
                    "the same variant names in the old and the new endpoint config",
                    "keep the variant names in this release (retire a variant by giving it weight 0), or deploy "
                    "the removal or rename once with rollout strategy all_at_once and auto_rollback false (no "
                    "DeploymentConfig: SageMaker's default blue/green update), then restore the rollout",
                    aws_platform.GUARDRAIL_VARIANT_NAME_SOURCE,
                    [rid],
                )
            )
        retain = (resource.new or {}).get("Properties", {}).get("RetainAllVariantProperties") is True
        kept = sorted(v for v in autoscaled if v in new_variants)
        if kept and not retain:
            counts = ", ".join(f"{v} to {new_variants[v].get('InitialInstanceCount')}" for v in kept)
            section.flag(
                Flag(
                    "disruptive",
                    "sagemaker-capacity-reset",
                    f"the endpoint update sets the autoscaled variants' instance count back to the new config's "
                    f"InitialInstanceCount ({counts}), whatever autoscaling had chosen: the endpoint does not "
                    "set RetainAllVariantProperties, and autoscaling is paused while the update runs",
                    "deploy when the initial count carries the traffic, or raise instance_count for the release; "
                    "keeping the live count needs RetainAllVariantProperties on the endpoint (a construct change)",
                    aws_platform.RETAIN_VARIANT_PROPERTIES_SOURCE,
                    [rid],
                )
            )


def _endpoint_story(planned: dict[str, _Resource], rid: str, config_id: str | None, rollout: str) -> str:
    """e.g. "new image: the model and the endpoint config are replaced, the endpoint is updated with the
    rollout (blue/green all at once, ...)"."""
    causes: list[str] = []
    replaced: list[str] = []
    for resource in sorted(planned.values(), key=lambda r: ("create", "replace", "delete", "update").index(r.action)):
        if resource.type != "AWS::SageMaker::Model":
            continue
        if resource.action == "create":
            causes.append(f"new model {resource.logical_id}")
        elif resource.action == "delete":
            causes.append(f"model {resource.logical_id} removed")
        elif resource.replaced:
            replaced.append(f"model {resource.logical_id}")
            named = {"image": "new image", "asset": "new model archive"}
            causes += [named.get(d.cause, show_path(d.path)) for d in resource.diffs if d.cause in CAUSES]
    config = planned.get(config_id or "")
    if config is not None and config.replaced:
        replaced.append("the endpoint config")
        causes += [_describe(d, config) for d in config.diffs if d.cause in CAUSES]
    verb = "is" if len(replaced) == 1 else "are"
    what = f"{' and '.join(replaced)} {verb} replaced, " if replaced else ""
    return (
        f"{summarize(causes) or 'endpoint settings'}: {what}the endpoint {rid} is updated with the rollout ({rollout})"
    )


def _flag_model_archive(section: Section, short: str, planned: dict[str, _Resource]) -> None:
    for resource in planned.values():
        if resource.type != BUCKET_DEPLOYMENT or resource.action != "update":
            continue
        props = (resource.new or {}).get("Properties", {})
        prefix = str(props.get("DestinationBucketKeyPrefix", ""))
        same_prefix = not any(d.path[:1] == ("DestinationBucketKeyPrefix",) for d in resource.diffs)
        new_bytes = any(d.cause == "asset" for d in resource.diffs)
        if prefix.startswith(MODEL_ARCHIVE_PREFIX) and same_prefix and new_bytes:
            section.flag(
                Flag(
                    "disruptive",
                    "model-bytes-same-version",
                    f"new model bytes under the same version ({prefix}): the upload overwrites that version's "
                    "model.tar.gz; the endpoint is not rolled (its ModelDataUrl does not change) and instances "
                    "started later load the new bytes",
                    "give the new model a new model.version",
                    "docs/aws.md#model-versions-and-rollback",
                    [f"{short}/{resource.logical_id}"],
                )
            )
