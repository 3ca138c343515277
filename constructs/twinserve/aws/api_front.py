"""An authenticated API in front of an environment's serving: API Gateway (REST, regional).

* ``POST /invocations`` only; IAM authorization by default (callers sign with SigV4, service
  ``execute-api``, and need ``execute-api:Invoke`` on the method: :meth:`grant_invoke`), optionally an API
  key too (a usage plan with throttling and a daily quota); stage throttling; JSON access logs and
  execution logs; X-Ray; a request validator (the ``Content-Type`` header is required); an optional WAF
  web ACL (AWS managed common and known-bad-inputs rules + a per-IP rate limit).
* Backends:
  - a SageMaker endpoint through an AWS service integration to ``InvokeEndpoint`` (no Lambda in between):
    the body and ``Content-Type``/``Accept`` pass through; API Gateway answers 200 for every backend
    status unless integration responses map them, so 4xx/5xx from SageMaker are mapped explicitly (a
    model error arrives as 424 with the container's body; throttling as 429; others as 502);
  - a Lambda function alias through a proxy integration (the Lambda Web Adapter understands API
    Gateway events; the function's status codes pass through as they are);
  - an internal Application Load Balancer (the ECS Fargate service) through a private integration: an
    HTTP proxy over a VPC link V2 (``AWS::ApiGatewayV2::VpcLink`` in the VPC's private subnets, its
    security group sending only to the VPC on the listener's port) with the load balancer's ARN as the
    integration target; statuses pass through. API Gateway puts the stage name in front of the path it
    sends (``/v1/invocations``): the load balancer strips it (:data:`STAGE_PATH_PREFIX`).
    https://docs.aws.amazon.com/apigateway/latest/developerguide/private-integration.html
* ``GET /ping`` (``health_route``): an unauthenticated readiness route for health checkers (Route 53),
  answering 200 or 503 and nothing else: the container's ``/ping`` through the Lambda or load-balancer
  proxy; for SageMaker, whose runtime has no ping, the endpoint's status (``DescribeEndpoint`` through
  an AWS integration whose role may describe that one endpoint): 200 while it serves
  (``SAGEMAKER_SERVING_STATUSES``), 503 otherwise; SageMaker itself routes only to instances whose
  container passes ``/ping``.
* A custom domain (``domain_name`` in ``hosted_zone``): a regional API Gateway domain with an ACM
  certificate validated by DNS in that zone, TLS 1.2, the stage at its root. DNS records pointing at it
  are the caller's (one region: an alias; several: failover records, stacks/aws/api.py).
* Timeouts: API Gateway's default integration timeout is 29 s; the container's deadline must be shorter,
  so a slow request gets the container's own 504 (the spec rules check ``serving.request_timeout_seconds``).
  https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_wafv2 as wafv2

from constructs import Construct

from ..platform import aws as aws_platform
from ._logs import log_group
from ._nag import acknowledge, acknowledge_checkov
from ._validate import checks

INVOCATIONS_PATH = "invocations"
"""The API's one resource (SageMaker's route name; the container answers it on every platform)."""
HEALTH_PATH = "ping"
"""The readiness route (``GET /ping``), the container's own name for it."""
STAGE_NAME = "v1"
"""The API's one stage: part of every URL (``/v1/invocations``)."""
STAGE_PATH_PREFIX = f"/{STAGE_NAME}"
"""What a private integration puts in front of the path it sends to the load balancer."""
SAGEMAKER_ERROR_MAPPINGS: tuple[tuple[str, int], ...] = (
    (r"424", 424),  # ModelError: the container answered 4xx/5xx; its body passes through
    (r"429", 429),  # ThrottlingException
    (r"400", 400),  # ValidationError (e.g. a body over 6 MB)
    (r"404", 404),  # the endpoint does not exist (yet)
    (r"5\d{2}", 502),  # ServiceUnavailable, InternalFailure: the backend failed
)
"""SageMaker runtime status (selection pattern) -> the status the API answers."""


@dataclass(frozen=True)
class ApiFrontProps:
    """Props of :class:`ApiFront`. Exactly one backend: ``sagemaker_endpoint_name``, ``lambda_alias`` or
    ``load_balancer``."""

    api_name: str
    """The REST API's name (also its stage's log group and WAF names)."""
    sagemaker_endpoint_name: str | None = None
    """A SageMaker endpoint in this account and region."""
    lambda_alias: lambda_.IAlias | None = None
    """A Lambda function alias (the Lambda platform's ``live``)."""
    load_balancer: elbv2.IApplicationLoadBalancer | None = None
    """An internal Application Load Balancer in ``vpc`` (the ECS Fargate platform's), reached through a
    VPC link; it must strip :data:`STAGE_PATH_PREFIX` from the path."""
    load_balancer_port: int = 80
    """The load balancer's HTTP listener port."""
    vpc: ec2.IVpc | None = None
    """With ``load_balancer``: its VPC, where the VPC link's interfaces go."""
    vpc_subnets: ec2.SubnetSelection | None = None
    """With ``load_balancer``: the VPC link's subnets (``None``: the VPC's private subnets)."""
    auth: Literal["iam", "iam_and_api_key"] = "iam"
    """IAM authorization (SigV4) on every method; ``iam_and_api_key`` also requires an API key."""
    throttle_rate_per_second: int = 100
    """Steady-state requests per second the stage (and the usage plan) allows."""
    throttle_burst: int = 200
    """Burst the stage allows."""
    daily_quota: int | None = None
    """With API keys: requests per day per key."""
    waf: bool = False
    """Associate a WAF web ACL (AWS managed common and known-bad-inputs rule sets + a per-IP rate limit)."""
    waf_rate_limit_per_5_minutes: int = 2000
    """Requests per client IP per 5 minutes before WAF blocks it."""
    integration_timeout: cdk.Duration = cdk.Duration.seconds(aws_platform.API_GATEWAY_TIMEOUT_SECONDS)
    """How long API Gateway waits for the backend (at most 29 s by default)."""
    health_route: bool = False
    """Add ``GET /ping``, unauthenticated, answering 200 (ready) or 503 (see the module docstring)."""
    domain_name: str | None = None
    """A custom domain for the API (regional, TLS 1.2), in ``hosted_zone``."""
    hosted_zone: route53.IHostedZone | None = None
    """The public hosted zone of ``domain_name``: the certificate's DNS validation records go there."""
    log_retention: logs.RetentionDays = logs.RetentionDays.THREE_MONTHS
    """Access log retention."""
    retain_logs: bool = False
    """Keep the access log group when the stack is deleted."""
    encryption_key: kms.IKey | None = None
    """Customer-managed key of the access log group (its policy is extended to let CloudWatch Logs use
    it); ``None``: CloudWatch Logs' own encryption."""


class ApiFront(Construct):
    """Exposes ``api``, ``method`` (``POST /invocations``), ``url`` and, with API keys, ``api_key``."""

    def __init__(self, scope: Construct, id: str, props: ApiFrontProps) -> None:
        super().__init__(scope, id)
        _check(props)
        self.props = props
        self.access_logs = log_group(
            self,
            "AccessLogs",
            encryption_key=props.encryption_key,
            retention=props.log_retention,
            removal_policy=cdk.RemovalPolicy.RETAIN if props.retain_logs else cdk.RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=props.api_name,
            description=f"twinserve {props.api_name}: authenticated front of the model",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.DESTROY,
            binary_media_types=["application/x-npy", "application/octet-stream"],
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=props.throttle_rate_per_second,
                throttling_burst_limit=props.throttle_burst,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=True,
                data_trace_enabled=False,  # never log payloads
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        validator = self.api.add_request_validator(
            "ContentTypeRequired", validate_request_parameters=True, validate_request_body=False
        )
        resource = self.api.root.add_resource(INVOCATIONS_PATH)
        api_key = props.auth == "iam_and_api_key"
        self.method = resource.add_method(
            "POST",
            self._integration(),
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=api_key,
            request_validator=validator,
            request_parameters={"method.request.header.Content-Type": True, "method.request.header.Accept": False},
            method_responses=[apigw.MethodResponse(status_code=str(code)) for code in self._status_codes()],
        )
        if props.load_balancer is not None:
            self._link_private_integration(self.method)
        self.health_method = self._health_route() if props.health_route else None
        self.domain = self._domain() if props.domain_name else None
        """The custom domain (its ``domain_name_alias_domain_name``/``..._hosted_zone_id`` are DNS targets)."""
        self.url = self.api.url_for_path(f"/{INVOCATIONS_PATH}")
        """``https://<id>.execute-api.<region>.amazonaws.com/v1/invocations``"""
        self.api_key = self._usage_plan() if api_key else None
        self.web_acl = self._waf() if props.waf else None
        self._acknowledge(api_key)

    # ------------------------------------------------------------------ backends

    def _integration(self) -> apigw.Integration:
        props = self.props
        if props.lambda_alias is not None:
            return apigw.LambdaIntegration(props.lambda_alias, proxy=True, timeout=props.integration_timeout)
        if props.load_balancer is not None:
            return self._private_integration()
        role = self._endpoint_role("InvokeRole", "sagemaker:InvokeEndpoint", "invokes the SageMaker endpoint")
        passthrough = {"application/json": "$input.json('$')"}
        return apigw.AwsIntegration(
            service="runtime.sagemaker",
            path=f"endpoints/{props.sagemaker_endpoint_name}/invocations",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=role,
                timeout=props.integration_timeout,
                passthrough_behavior=apigw.PassthroughBehavior.WHEN_NO_TEMPLATES,
                request_parameters={
                    "integration.request.header.Content-Type": "method.request.header.Content-Type",
                    "integration.request.header.Accept": "method.request.header.Accept",
                },
                integration_responses=[
                    apigw.IntegrationResponse(status_code="200", selection_pattern=r"2\d{2}"),
                    *[
                        apigw.IntegrationResponse(
                            status_code=str(answer), selection_pattern=pattern, response_templates=passthrough
                        )
                        for pattern, answer in SAGEMAKER_ERROR_MAPPINGS
                    ],
                ],
            ),
        )

    def _health_route(self) -> apigw.Method:
        """``GET /ping``: 200 when the backend is ready, 503 when not (for health checkers, no data)."""
        props = self.props
        resource = self.api.root.add_resource(HEALTH_PATH)
        if props.lambda_alias is not None:
            integration = apigw.LambdaIntegration(props.lambda_alias, proxy=True, timeout=cdk.Duration.seconds(10))
        elif props.load_balancer is not None:
            integration = self._load_balancer_proxy("GET", HEALTH_PATH, cdk.Duration.seconds(10))
        else:
            integration = self._endpoint_status_integration()
        method = resource.add_method(
            "GET",
            integration,
            authorization_type=apigw.AuthorizationType.NONE,
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("200", "503")]
            if props.sagemaker_endpoint_name is not None
            else [apigw.MethodResponse(status_code="200")],
        )
        if props.load_balancer is not None:
            self._link_private_integration(method)
        health_only = (
            "GET /ping is the readiness route for health checkers (Route 53 cannot sign requests): it answers "
            "200 or 503 with no model data, and the stage's throttling applies; /invocations stays IAM-authorized."
        )
        acknowledge(method, "AwsSolutions-APIG4", health_only)
        acknowledge(method, "AwsSolutions-COG4", health_only)
        acknowledge_checkov(method, "CKV_AWS_59", health_only)
        return method

    def _endpoint_role(self, id: str, action: str, does: str) -> iam.Role:
        """A role API Gateway assumes to call ``action`` on the one SageMaker endpoint."""
        props = self.props
        role = iam.Role(
            self,
            id,
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description=f"twinserve {props.api_name}: API Gateway {does}",
        )
        endpoint = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=props.sagemaker_endpoint_name
        )
        role.add_to_policy(iam.PolicyStatement(actions=[action], resources=[endpoint]))
        return role

    def _load_balancer_proxy(self, http_method: str, path: str, timeout: cdk.Duration) -> apigw.Integration:
        """HTTP proxy to ``path`` on the load balancer (the VPC link fields follow on the method:
        :meth:`_link_private_integration`); the host names the load balancer for TLS and the Host header."""
        props = self.props
        return apigw.Integration(
            type=apigw.IntegrationType.HTTP_PROXY,
            integration_http_method=http_method,
            uri=f"http://{props.load_balancer.load_balancer_dns_name}:{props.load_balancer_port}/{path}",
            options=apigw.IntegrationOptions(timeout=timeout),
        )

    def _endpoint_status_integration(self) -> apigw.AwsIntegration:
        """SageMaker's ``DescribeEndpoint`` (JSON 1.1 protocol) mapped to 200/503 by the endpoint's status."""
        props = self.props
        role = self._endpoint_role("StatusRole", "sagemaker:DescribeEndpoint", "reads the SageMaker endpoint's status")
        serving = " || ".join(f'$status == "{status}"' for status in aws_platform.SAGEMAKER_SERVING_STATUSES)
        ready = (
            "#set($status = $input.path('$.EndpointStatus'))\n"
            f"#if(!({serving}))#set($context.responseOverride.status = 503)#end\n"
            '{"status": "$status"}'
        )
        return apigw.AwsIntegration(
            service="api.sagemaker",
            path="/",  # JSON 1.1 protocol: POST / with X-Amz-Target
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=role,
                timeout=cdk.Duration.seconds(10),
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_parameters={
                    "integration.request.header.X-Amz-Target": "'SageMaker.DescribeEndpoint'",
                    "integration.request.header.Content-Type": "'application/x-amz-json-1.1'",
                },
                request_templates={"application/json": json.dumps({"EndpointName": props.sagemaker_endpoint_name})},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="200", selection_pattern=r"2\d{2}", response_templates={"application/json": ready}
                    ),
                    # the endpoint does not exist (400 ValidationException), throttling, a failing service
                    apigw.IntegrationResponse(
                        status_code="503",
                        selection_pattern=r"[45]\d{2}",
                        response_templates={"application/json": '{"status": "unavailable"}'},
                    ),
                ],
            ),
        )

    def _domain(self) -> apigw.DomainName:
        props = self.props
        certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=props.domain_name,
            validation=acm.CertificateValidation.from_dns(props.hosted_zone),
        )
        return self.api.add_domain_name(
            "Domain",
            domain_name=props.domain_name,
            certificate=certificate,
            endpoint_type=apigw.EndpointType.REGIONAL,
            security_policy=apigw.SecurityPolicy.TLS_1_2,
        )

    @property
    def health_check_target(self) -> tuple[str, str]:
        """(host, path) a health checker requests for ``GET /ping``: the API's own regional host (a
        failover record's health check must not depend on the name that fails over)."""
        stack = cdk.Stack.of(self)
        host = f"{self.api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}"
        return host, f"/{STAGE_NAME}/{HEALTH_PATH}"

    def _private_integration(self) -> apigw.Integration:
        """HTTP proxy to the load balancer over a VPC link V2. aws-cdk-lib's ``Integration`` knows only V1
        links (to a Network Load Balancer), so the V2 link's id and the target ARN are set on the method
        (``_link_private_integration``, once the method exists)."""
        props = self.props
        self.vpc_link_security_group = ec2.SecurityGroup(
            self,
            "VpcLinkSecurityGroup",
            vpc=props.vpc,
            description=f"twinserve {props.api_name}: VPC link of API Gateway to the load balancer",
            allow_all_outbound=False,
        )
        self.vpc_link_security_group.add_egress_rule(
            ec2.Peer.ipv4(props.vpc.vpc_cidr_block),
            ec2.Port.tcp(props.load_balancer_port),
            "the load balancer's listener",
        )
        self.vpc_link = apigwv2.VpcLink(
            self,
            "VpcLink",
            vpc=props.vpc,
            subnets=props.vpc_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.vpc_link_security_group],
        )
        return self._load_balancer_proxy("POST", INVOCATIONS_PATH, props.integration_timeout)

    def _link_private_integration(self, method: apigw.Method) -> None:
        """The VPC link V2 fields aws-cdk-lib's ``Integration`` cannot express (CloudFormation:
        ``Integration.ConnectionType``/``ConnectionId``/``IntegrationTarget`` of ``AWS::ApiGateway::Method``)."""
        method = method.node.default_child
        method.add_property_override("Integration.ConnectionType", "VPC_LINK")
        method.add_property_override("Integration.ConnectionId", self.vpc_link.vpc_link_id)
        method.add_property_override("Integration.IntegrationTarget", self.props.load_balancer.load_balancer_arn)

    def _status_codes(self) -> list[int]:
        if self.props.sagemaker_endpoint_name is None:
            return [200]  # a proxy integration passes the backend's statuses through
        return [200, *sorted({answer for _, answer in SAGEMAKER_ERROR_MAPPINGS})]

    # ------------------------------------------------------------------ keys, WAF, findings

    def _usage_plan(self) -> apigw.IApiKey:
        props = self.props
        key = self.api.add_api_key("Key", description=f"twinserve {props.api_name}")
        plan = self.api.add_usage_plan(
            "UsagePlan",
            throttle=apigw.ThrottleSettings(
                rate_limit=props.throttle_rate_per_second, burst_limit=props.throttle_burst
            ),
            quota=apigw.QuotaSettings(limit=props.daily_quota, period=apigw.Period.DAY) if props.daily_quota else None,
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        plan.add_api_key(key)
        return key

    def _waf(self) -> wafv2.CfnWebACL:
        props = self.props

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{props.api_name}-waf"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="aws-common",
                    priority=0,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesCommonRuleSet"
                        )
                    ),
                    visibility_config=visibility(f"{props.api_name}-common"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="rate-per-ip",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP", limit=props.waf_rate_limit_per_5_minutes
                        )
                    ),
                    visibility_config=visibility(f"{props.api_name}-rate"),
                ),
                # request patterns known to be malicious: Log4j's JNDI lookups (CVE-2021-44228), Java
                # deserialization, exploitable paths
                wafv2.CfnWebACL.RuleProperty(
                    name="aws-known-bad-inputs",
                    priority=2,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesKnownBadInputsRuleSet"
                        )
                    ),
                    visibility_config=visibility(f"{props.api_name}-known-bad-inputs"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )
        return acl

    def _acknowledge(self, api_key: bool) -> None:
        acknowledge_checkov(
            self.api.deployment_stage,
            "CKV_AWS_120",
            "Every request is a POST whose answer depends on its body; API Gateway's cache keys on path, headers "
            "and query string, not the body, so a cache would answer with another request's prediction.",
        )
        acknowledge(
            self.method,
            "AwsSolutions-COG4",
            "Callers authenticate with IAM (SigV4): the accounts' roles and users, not a Cognito user pool.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "Request parameters are validated (Content-Type is required); bodies are CSV, JSON or NPY of the model's "
            "own shape, which the container validates, answering 400/415 naming the input.",
        )
        if not self.props.waf:
            acknowledge(
                self.api.deployment_stage,
                "AwsSolutions-APIG3",
                "The API is IAM-authorized and throttled; set aws.api.waf for a web ACL in front of it.",
            )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "aws-cdk-lib's account-level role that lets API Gateway write the stage's logs (AWS's documented policy).",
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """``execute-api:Invoke`` on ``POST /invocations`` of the stage."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[self.api.arn_for_execute_api("POST", f"/{INVOCATIONS_PATH}", STAGE_NAME)],
        )


def _check(props: ApiFrontProps) -> None:
    check = checks("ApiFrontProps")
    check.pattern("api_name", props.api_name, r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}", "letters, digits, '-', '_'")
    backends = [props.sagemaker_endpoint_name, props.lambda_alias, props.load_balancer]
    check.that(
        sum(backend is not None for backend in backends) == 1,
        "sagemaker_endpoint_name",
        props.sagemaker_endpoint_name,
        "set exactly one backend: sagemaker_endpoint_name, lambda_alias or load_balancer",
    )
    check.that(
        (props.load_balancer is None) == (props.vpc is None),
        "vpc",
        props.vpc,
        "set vpc (the load balancer's) with load_balancer, and only then",
    )
    check.range("load_balancer_port", props.load_balancer_port, 1, 65535)
    check.that(
        (props.domain_name is None) == (props.hosted_zone is None),
        "domain_name",
        props.domain_name,
        "set domain_name and hosted_zone together",
    )
    check.pattern("domain_name", props.domain_name, aws_platform.DOMAIN_NAME_PATTERN, "a lower-case DNS name")
    check.one_of("auth", props.auth, ("iam", "iam_and_api_key"))
    check.range("throttle_rate_per_second", props.throttle_rate_per_second, 1, 10000)
    check.range("throttle_burst", props.throttle_burst, 1, 5000)
    check.range("daily_quota", props.daily_quota, 1, 10**9)
    check.range("waf_rate_limit_per_5_minutes", props.waf_rate_limit_per_5_minutes, 10, 2_000_000_000)
    check.range(
        "integration_timeout",
        props.integration_timeout.to_seconds(),
        0.05,
        aws_platform.API_GATEWAY_TIMEOUT_SECONDS,
        " s",
    )
