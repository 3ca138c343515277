"""The serving image on ECS Fargate, without SageMaker: a service in private subnets behind an internal
Application Load Balancer.

* Network: a VPC of its own (two zones, private isolated subnets, no internet route) with the VPC
  endpoints the tasks need to start - ECR (api, dkr), CloudWatch Logs and an S3 gateway (image layers) -
  and flow logs; or an existing VPC. The load balancer is internal: callers reach it from the VPC or
  through an API front (issue 13's API Gateway).
* Tasks: the image with the model baked in (Fargate has no model mount), port 8080, readiness on the
  container's /ping (503 while the model loads), logs to CloudWatch, ``SIGTERM`` drain within the
  stop timeout.
* Rollouts use ECS's native deployment strategies (aws-cdk-lib >= 2.220 exposes them on the L2
  ``FargateService``): ``blue_green`` (all at once after the bake), ``canary`` and ``linear`` shift the
  listener between two target groups, watched by ``deployment_alarm_names`` (a firing alarm rolls back);
  ``rolling`` replaces tasks in batches with the deployment circuit breaker (rollback on failure).
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html
* Autoscaling of the task count on CPU and on requests per target; alarms and metrics of the service
  and the load balancer (:meth:`metric_*`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from constructs import Construct

from ..platform import aws as aws_platform
from ..platform.shared import INSTANCE_COUNT
from ._logs import log_group
from ._nag import acknowledge, acknowledge_cdk_provider, acknowledge_checkov
from ._validate import checks
from .inference_image import InferenceImage

_VPC_CIDR_ONLY = (
    "Ingress is limited to the VPC's own CIDR block (Fn::GetAtt VpcCidrBlock, which cdk-nag cannot resolve); "
    "nothing outside the VPC reaches it."
)
CONTAINER_NAME = "server"
"""The serving container's name in the task definition."""


@dataclass(frozen=True)
class FargateRolloutProps:
    """How a new task definition (new image or model) reaches traffic."""

    strategy: Literal["blue_green", "canary", "linear", "rolling"] = "blue_green"
    """ECS deployment strategy (see the module docstring)."""
    step_percent: int = 10
    """Canary size or linear step, percent of traffic (canary 0.1..100, linear 3..100)."""
    step_wait: cdk.Duration = cdk.Duration.minutes(5)
    """Bake time after each canary/linear step, watched by the deployment alarms."""
    bake_time: cdk.Duration = cdk.Duration.minutes(5)
    """Blue/green family: how long the old tasks stay after the shift, for a fast rollback."""
    deployment_alarm_names: tuple[str, ...] = ()
    """Alarms whose ALARM state rolls the deployment back."""


@dataclass(frozen=True)
class FargateScalingProps:
    """Task-count autoscaling."""

    min_tasks: int = 1
    """Fewest tasks."""
    max_tasks: int = 2
    """Most tasks."""
    cpu_percent: int = 70
    """Target average CPU utilization."""
    requests_per_target_per_minute: int | None = None
    """Also track ALB requests per task (per minute), when set."""
    scale_in_cooldown: cdk.Duration = cdk.Duration.minutes(5)
    """Wait after removing tasks."""
    scale_out_cooldown: cdk.Duration = cdk.Duration.minutes(1)
    """Wait after adding tasks."""


@dataclass(frozen=True)
class FargateModelServiceProps:
    """Props of :class:`FargateModelService`."""

    service_name: str
    """ECS service name (also names the cluster, the load balancer and the alarms)."""
    image: InferenceImage
    """The serving image with the model baked in (``twinserve.image_context.stage_model_image_context``)."""
    cpu: int = 1024
    """Task CPU units."""
    memory_mib: int = 2048
    """Task memory; Fargate accepts only certain sizes per ``cpu`` (twinserve.platform.aws.FARGATE_MEMORY_MIB)."""
    desired_count: int = 1
    """Tasks a new service starts with (autoscaling owns the count afterwards)."""
    port: int = 8080
    """The container's port."""
    health_check_path: str = "/ping"
    """Readiness route: 200 once the model is loaded."""
    environment: dict[str, str] = field(default_factory=dict)
    """Passed to the container (no secrets: they would be visible in the task definition)."""
    request_timeout: cdk.Duration = cdk.Duration.seconds(60)
    """The load balancer's idle timeout: the longest a request may run."""
    strip_path_prefix: str | None = None
    """A leading path segment the load balancer removes before a request reaches the tasks (``/v1``: an
    API Gateway private integration sends its stage name in front of the path); ``None``: paths pass as
    they are."""
    rollout: FargateRolloutProps = FargateRolloutProps()
    """Deployment strategy."""
    scaling: FargateScalingProps | None = None
    """Autoscaling; ``None`` keeps ``desired_count``."""
    vpc: ec2.IVpc | None = None
    """An existing VPC with private subnets (and the endpoints or a NAT route to pull images); ``None``
    creates one with ``vpc_cidr``."""
    vpc_cidr: str = "10.40.0.0/16"
    """CIDR of the VPC created when ``vpc`` is not given."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Container and flow log retention."""
    access_logs_bucket: s3.IBucket | None = None
    """Where the load balancer writes access logs (prefix ``alb/<service>``; SSE-S3, as ELB requires);
    ``None`` creates a bucket that keeps them for the log retention."""
    retain_logs: bool = False
    """Keep the log groups when the stack is deleted."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key of the container and flow log groups (its policy is extended to let
    CloudWatch Logs use it); ``None``: CloudWatch Logs' own encryption."""


class FargateModelService(Construct):
    """VPC (or the given one), cluster, task definition, internal ALB, service, scaling, metrics."""

    def __init__(self, scope: Construct, id: str, props: FargateModelServiceProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.props = props
        removal = cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY
        self.vpc = props.vpc or self._vpc(removal)
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED) if props.vpc is None else None

        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        self.log_group = log_group(
            self, "Logs", encryption_key=props.encryption_key, retention=props.log_retention, removal_policy=removal
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=props.cpu,
            memory_limit_mib=props.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        props.image.grant_pull(self.task_definition.obtain_execution_role())
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            image=ecs.ContainerImage.from_registry(props.image.image_uri),
            command=["serve"],
            environment=props.environment,
            port_mappings=[ecs.PortMapping(container_port=props.port)],
            logging=ecs.LogDriver.aws_logs(stream_prefix=CONTAINER_NAME, log_group=self.log_group),
            # the server drains in-flight requests on SIGTERM and exits 0 (twinserve_serving.server)
            stop_timeout=cdk.Duration.seconds(30),
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-m", "twinserve_serving", "healthcheck"],
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(60),
            ),
            user="10001",
        )

        self.security_group = ec2.SecurityGroup(
            self, "LoadBalancerSecurityGroup", vpc=self.vpc, description=f"{props.service_name} load balancer"
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.ipv4(self.vpc.vpc_cidr_block), ec2.Port.tcp(80), "HTTP from inside the VPC"
        )
        acknowledge(self.security_group, "AwsSolutions-EC23", _VPC_CIDR_ONLY)
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=False,
            vpc_subnets=subnets,
            security_group=self.security_group,
            idle_timeout=props.request_timeout,
            drop_invalid_header_fields=True,
        )
        self.access_logs = None
        if cdk.Token.is_unresolved(cdk.Stack.of(self).region):
            # ELB access logs need the region's log-delivery account at synth time
            no_region = (
                "Environment-agnostic stack: ELB access logging needs the region at synth time; set the stack's "
                "region (spec aws.region) to get access logs."
            )
            acknowledge(self.load_balancer, "AwsSolutions-ELB2", no_region)
            acknowledge_checkov(self.load_balancer, "CKV_AWS_91", no_region)
        else:
            self.access_logs = props.access_logs_bucket or self._access_logs_bucket(removal)
            self.load_balancer.log_access_logs(self.access_logs, prefix=f"alb/{props.service_name}")
        native = props.rollout.strategy != "rolling"
        self.target_group = self._target_group("Blue")
        self.green_target_group = self._target_group("Green") if native else None
        """The second target group of native deployments (ECS moves traffic between the two)."""
        self.listener = self.load_balancer.add_listener(
            "Http",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(404, content_type="text/plain", message_body="no route"),
        )
        plain_http = (
            "The load balancer is internal: private isolated subnets, its security group open to the VPC's CIDR "
            "only; HTTPS would need a certificate for a name the service does not have (callers in the VPC, "
            "or a front such as API Gateway's VPC link, reach it by its internal DNS name)."
        )
        for check_id in ("CKV_AWS_2", "CKV_AWS_103"):
            acknowledge_checkov(self.listener, check_id, plain_http)
        self.rule = elbv2.ApplicationListenerRule(
            self,
            "ServeRule",
            listener=self.listener,
            priority=1,
            conditions=[elbv2.ListenerCondition.path_patterns(["/*"])],
            # Native deployments shift this rule's weights between the two target groups (ECS owns them
            # afterwards; CloudFormation leaves the rule alone while its template does not change).
            action=elbv2.ListenerAction.weighted_forward(
                [
                    elbv2.WeightedTargetGroup(target_group=self.target_group, weight=100),
                    elbv2.WeightedTargetGroup(target_group=self.green_target_group, weight=0),
                ]
            )
            if native
            else elbv2.ListenerAction.forward([self.target_group]),
        )
        if props.strip_path_prefix is not None:
            self._strip_path_prefix(props.strip_path_prefix)
        self.service = self._service(subnets)
        self.scaling = self._scaling() if props.scaling is not None else None
        self.url = f"http://{self.load_balancer.load_balancer_dns_name}"
        """The service's address inside the VPC (SageMaker's /invocations and Azure's /score both answer)."""

    # ------------------------------------------------------------------ pieces

    def _vpc(self, removal: cdk.RemovalPolicy) -> ec2.Vpc:
        """Two zones of private isolated subnets, no NAT or internet gateway; endpoints for image pulls
        and logs; flow logs of rejected and accepted traffic."""
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(self.props.vpc_cidr),
            # The region's first two zones at deploy time (Fn::GetAZs), also when the stack's account and
            # region are known: a context lookup would need the target account's credentials at synth,
            # which a pipeline's synth step does not have (and without them CDK writes dummy zones).
            availability_zones=[cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(2)],
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="service", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)
            ],
            restrict_default_security_group=True,
        )
        # restrict_default_security_group's provider function: W3005 as for the other CDK handlers
        acknowledge_cdk_provider(self, "Custom::VpcRestrictDefaultSGCustomResourceProvider")
        flow_logs = log_group(
            self,
            "FlowLogs",
            encryption_key=self.props.encryption_key,
            retention=self.props.log_retention,
            removal_policy=removal,
        )
        vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        for name, service in (
            ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
            ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
        ):
            endpoint = vpc.add_interface_endpoint(name, service=service, private_dns_enabled=True)
            acknowledge(endpoint, "AwsSolutions-EC23", _VPC_CIDR_ONLY)
        return vpc

    def _strip_path_prefix(self, prefix: str) -> None:
        """A URL rewrite on the serving rule: ``<prefix>/x`` -> ``/x``; other paths pass unchanged (no match).
        ECS's native deployments modify the rule's actions only, the transform stays.
        https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-transforms.html"""
        rule = self.rule.node.default_child
        rule.transforms = [
            elbv2.CfnListenerRule.TransformProperty(
                type="url-rewrite",
                url_rewrite_config=elbv2.CfnListenerRule.RewriteConfigObjectProperty(
                    rewrites=[
                        elbv2.CfnListenerRule.RewriteConfigProperty(regex=f"^{re.escape(prefix)}(/.*)$", replace="$1")
                    ]
                ),
            )
        ]

    def _access_logs_bucket(self, removal: cdk.RemovalPolicy) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ELB access logs support SSE-S3 only
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,  # a deleted or overwritten log stays recoverable for 30 days
            lifecycle_rules=[
                s3.LifecycleRule(expiration=cdk.Duration.days(90), noncurrent_version_expiration=cdk.Duration.days(30))
            ],
            removal_policy=removal,
            auto_delete_objects=removal == cdk.RemovalPolicy.DESTROY,
        )
        own_logs = "The access-log bucket of the load balancer cannot log to itself."
        acknowledge(bucket, "AwsSolutions-S1", own_logs)
        acknowledge_checkov(bucket, "CKV_AWS_18", own_logs)
        acknowledge_cdk_provider(self, "Custom::S3AutoDeleteObjectsCustomResourceProvider")
        return bucket

    def _target_group(self, id: str) -> elbv2.ApplicationTargetGroup:
        props = self.props
        return elbv2.ApplicationTargetGroup(
            self,
            id,
            vpc=self.vpc,
            port=props.port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            # 2xx only: /ping answers 503 while the model loads
            health_check=elbv2.HealthCheck(
                path=props.health_check_path,
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(10),
                timeout=cdk.Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            deregistration_delay=cdk.Duration.seconds(min(300, int(props.request_timeout.to_seconds()) + 5)),
        )

    def _service(self, subnets: ec2.SubnetSelection | None) -> ecs.FargateService:
        props, rollout = self.props, self.props.rollout
        native = rollout.strategy != "rolling"
        shift = ecs.TrafficShiftConfig(step_percent=rollout.step_percent, step_bake_time=rollout.step_wait)
        service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            service_name=props.service_name,
            desired_count=props.desired_count,
            vpc_subnets=subnets,
            assign_public_ip=False,
            health_check_grace_period=cdk.Duration.seconds(120),
            deployment_strategy={
                "blue_green": ecs.DeploymentStrategy.BLUE_GREEN,
                "canary": ecs.DeploymentStrategy.CANARY,
                "linear": ecs.DeploymentStrategy.LINEAR,
                "rolling": ecs.DeploymentStrategy.ROLLING,
            }[rollout.strategy],
            canary_configuration=shift if rollout.strategy == "canary" else None,
            linear_configuration=shift if rollout.strategy == "linear" else None,
            bake_time=rollout.bake_time if native else None,
            # the circuit breaker watches rolling updates; native strategies roll back on the alarms
            circuit_breaker=None if native else ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_alarms=ecs.DeploymentAlarmConfig(
                alarm_names=list(rollout.deployment_alarm_names), behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM
            )
            if rollout.deployment_alarm_names
            else None,
            min_healthy_percent=100,
            max_healthy_percent=200,
        )
        if native:
            target = service.load_balancer_target(
                container_name=CONTAINER_NAME,
                container_port=props.port,
                alternate_target=ecs.AlternateTarget(
                    "Alternate",
                    alternate_target_group=self.green_target_group,
                    production_listener=ecs.ListenerRuleConfiguration.application_listener_rule(self.rule),
                ),
            )
        else:
            target = service.load_balancer_target(container_name=CONTAINER_NAME, container_port=props.port)
        target.attach_to_application_target_group(self.target_group)
        # aws-cdk-lib adds DependsOn entries cfn-lint calls redundant (W3005): harmless, not ours to change
        service.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        acknowledge(
            self.task_definition,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; pulls are granted on the image's repository.",
        )
        if native:
            acknowledge(
                service,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "AmazonECSInfrastructureRolePolicyForLoadBalancers]",
                "The AWS-managed policy ECS documents for the role that moves listener rules between the blue "
                "and green target groups during a native deployment.",
            )
        service.connections.allow_from(self.security_group, ec2.Port.tcp(props.port), "the load balancer")
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The container's variables are settings (model format, timeouts, worker counts), not secrets.",
        )
        return service

    def _scaling(self) -> ecs.ScalableTaskCount:
        scaling = self.props.scaling
        count = self.service.auto_scale_task_count(min_capacity=scaling.min_tasks, max_capacity=scaling.max_tasks)
        count.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=scaling.cpu_percent,
            scale_in_cooldown=scaling.scale_in_cooldown,
            scale_out_cooldown=scaling.scale_out_cooldown,
        )
        if scaling.requests_per_target_per_minute is not None:
            count.scale_on_request_count(
                "Requests",
                requests_per_target=scaling.requests_per_target_per_minute,
                target_group=self.target_group,
                scale_in_cooldown=scaling.scale_in_cooldown,
                scale_out_cooldown=scaling.scale_out_cooldown,
            )
        return count

    # ------------------------------------------------------------------ metrics

    def metric_target_5xx(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """5xx answers of the tasks (not of the load balancer itself), summed per period."""
        return self.load_balancer.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=period, statistic="Sum"
        )

    def metric_latency_p99(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """p99 of the tasks' response time as the load balancer sees it."""
        return self.load_balancer.metrics.target_response_time(period=period, statistic="p99")

    def metric_cpu(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.service.metric_cpu_utilization(period=period)

    def metric_memory(self, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.service.metric_memory_utilization(period=period)


def _check(props: FargateModelServiceProps) -> None:
    check = checks("FargateModelServiceProps")
    check.pattern(
        "service_name",
        props.service_name,
        r"[a-zA-Z][a-zA-Z0-9-]{0,31}",
        "1-32 letters, digits and '-', starting with a letter (load balancer names)",
    )
    allowed = aws_platform.FARGATE_MEMORY_MIB.get(props.cpu)
    check.that(
        allowed is not None, "cpu", props.cpu, f"use one of {', '.join(map(str, aws_platform.FARGATE_MEMORY_MIB))}"
    )
    if allowed is not None:
        check.that(
            props.memory_mib in allowed,
            "memory_mib",
            props.memory_mib,
            f"with cpu {props.cpu}: one of {allowed[0]}..{allowed[-1]} (Fargate task sizes)",
        )
    check.range("desired_count", props.desired_count, *INSTANCE_COUNT)
    check.range("request_timeout", props.request_timeout.to_seconds(), *aws_platform.ALB_IDLE_TIMEOUT_SECONDS, " s")
    check.pattern("strip_path_prefix", props.strip_path_prefix, r"(/[A-Za-z0-9._~-]+)+", "a path such as /v1")
    rollout = props.rollout
    check.one_of("rollout.strategy", rollout.strategy, ("blue_green", "canary", "linear", "rolling"))
    if rollout.strategy == "linear":
        check.range("rollout.step_percent", rollout.step_percent, *aws_platform.ECS_LINEAR_STEP_PERCENT)
    if rollout.strategy == "canary":
        check.range("rollout.step_percent", rollout.step_percent, 0.1, 100)
    if props.scaling is not None:
        check.that(
            1 <= props.scaling.min_tasks <= props.desired_count <= props.scaling.max_tasks,
            "scaling",
            props.scaling,
            f"needs 1 <= min_tasks <= desired_count ({props.desired_count}) <= max_tasks",
        )
        check.range("scaling.cpu_percent", props.scaling.cpu_percent, 10, 95)
