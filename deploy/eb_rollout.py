"""The rollout of a source bundle to an Elastic Beanstalk environment, with boto3.

deploy() checks that the application and environment exist (or creates the application with
`create`), uploads the zip to S3, creates an application version from it, updates the
environment to that version (or creates the environment) and polls until it is Ready, Green and
running that version. A DeployError says whether anything was changed (exit_code 2: nothing,
1: it went wrong midway). deploy/eb_deploy.py is its command line.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.exceptions import ClientError, NoCredentialsError

# The newest Amazon Linux 2023 platform running this Python is picked when --create needs one.
PLATFORM_PATTERN = re.compile(r"^64bit Amazon Linux 2023 v(\d+)\.(\d+)\.(\d+) running Python 3\.11$")
# New accounts must name the instance profile; this is the one the EB console creates.
DEFAULT_INSTANCE_PROFILE = "aws-elasticbeanstalk-ec2-role"
MAX_LABEL = 100  # Elastic Beanstalk's limit on version labels


class DeployError(RuntimeError):
    """Deployment stopped; `exit_code` 2 means nothing was changed, 1 means it went wrong midway."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class DeployRequest:
    application: str
    environment: str
    bundle: Path
    region: str | None = None
    bucket: str | None = None  # default: EB's own elasticbeanstalk-<region>-<account> bucket
    create: bool = False  # create the application and environment when missing
    version_label: str | None = None  # default: <bundle name>-<UTC time>
    solution_stack: str | None = None  # default: newest AL2023 Python 3.11 platform
    instance_profile: str = DEFAULT_INSTANCE_PROFILE
    timeout_s: float = 1200.0  # creating an environment takes about 5-10 minutes
    poll_s: float = 10.0
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


@dataclass
class DeployResult:
    version_label: str
    s3_bucket: str
    s3_key: str
    created_environment: bool
    cname: str


def _find_environment(eb, application: str, environment: str) -> dict | None:
    # Filtered here as well as in the request: terminated environments keep their names for
    # an hour and must not count as existing.
    response = eb.describe_environments(
        ApplicationName=application, EnvironmentNames=[environment], IncludeDeleted=False
    )
    for env in response["Environments"]:
        if (
            env["EnvironmentName"] == environment
            and env.get("ApplicationName") == application
            and env["Status"] not in ("Terminating", "Terminated")
        ):
            return env
    return None


def _application_exists(eb, application: str) -> bool:
    response = eb.describe_applications(ApplicationNames=[application])
    return any(app["ApplicationName"] == application for app in response["Applications"])


def _default_bucket(session, s3, region: str) -> str:
    """EB's storage bucket, created as EB itself would name it if it does not exist yet."""
    account = session.client("sts").get_caller_identity()["Account"]
    bucket = f"elasticbeanstalk-{region}-{account}"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **extra)
    return bucket


def _pick_solution_stack(eb) -> str:
    stacks = eb.list_available_solution_stacks()["SolutionStacks"]
    versions = [
        (tuple(int(x) for x in match.groups()), name) for name in stacks if (match := PLATFORM_PATTERN.match(name))
    ]
    if not versions:
        raise DeployError(
            "no 'Amazon Linux 2023 ... running Python 3.11' platform is offered in this region; pass --solution-stack",
            2,
        )
    return max(versions)[1]


def _wait_until_deployed(eb, request: DeployRequest, label: str, sleep: Callable[[float], None]) -> dict:
    """Poll until the environment runs `label`, Ready and Green; raise DeployError on timeout."""
    deadline = time.monotonic() + request.timeout_s
    last = None
    while True:
        env = _find_environment(eb, request.application, request.environment)
        if env is None:
            raise DeployError(f"environment {request.environment} disappeared while deploying (terminated?)")
        state = (env["Status"], env.get("Health", "?"), env.get("VersionLabel"))
        if state != last:
            request.log(f"eb_deploy: {request.environment}: status {state[0]}, health {state[1]}, version {state[2]}")
            last = state
        if state == ("Ready", "Green", label):
            return env
        if time.monotonic() >= deadline:
            hint = (
                " (EB rolled back or the deployment failed; see `eb events` or the EB console)"
                if state[0] == "Ready" and state[2] != label
                else ""
            )
            raise DeployError(
                f"timed out after {request.timeout_s:g} s waiting for {request.environment} to be Ready and Green on "
                f"version {label}; last seen: status {state[0]}, health {state[1]}, version {state[2]}{hint}"
            )
        sleep(request.poll_s)


def _prepare_application(eb, request: DeployRequest, region: str) -> tuple[dict | None, str | None]:
    """Everything that can refuse the deployment, checked before anything is uploaded (the
    application is created here with --create). Returns the existing environment (None: it is
    to be created) and the platform a new one gets."""
    if not _application_exists(eb, request.application):
        if not request.create:
            raise DeployError(
                f"application {request.application} does not exist in {region}; pass --create to create it", 2
            )
        eb.create_application(ApplicationName=request.application, Description="abstract-autocomplete")
        request.log(f"eb_deploy: created application {request.application}")
    existing = _find_environment(eb, request.application, request.environment)
    if existing is None and not request.create:
        raise DeployError(
            f"environment {request.environment} of application {request.application} does not exist in {region}; "
            "pass --create to create it",
            2,
        )
    solution_stack = request.solution_stack or (_pick_solution_stack(eb) if existing is None else None)
    return existing, solution_stack


def _upload_version(session, s3, eb, request: DeployRequest, bundle: Path, region: str) -> tuple[str, str, str]:
    """The bundle uploaded to S3 and registered as an application version: (label, bucket, key)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = (request.version_label or f"{bundle.stem}-{stamp}")[:MAX_LABEL]
    bucket = request.bucket or _default_bucket(session, s3, region)
    key = f"{request.application}/{label}.zip"
    request.log(f"eb_deploy: uploading {bundle} ({bundle.stat().st_size / 1e6:.1f} MB) to s3://{bucket}/{key}")
    s3.upload_file(str(bundle), bucket, key)
    eb.create_application_version(
        ApplicationName=request.application,
        VersionLabel=label,
        Description=f"{bundle.name} uploaded {stamp}",
        SourceBundle={"S3Bucket": bucket, "S3Key": key},
    )
    request.log(f"eb_deploy: created version {label}")
    return label, bucket, key


def _start_deployment(eb, request: DeployRequest, label: str, existing: dict | None, solution_stack: str | None):
    """Create the environment on version `label`, or update the existing one to it."""
    if existing is None:
        eb.create_environment(
            ApplicationName=request.application,
            EnvironmentName=request.environment,
            VersionLabel=label,
            SolutionStackName=solution_stack,
            OptionSettings=[
                {
                    "Namespace": "aws:autoscaling:launchconfiguration",
                    "OptionName": "IamInstanceProfile",
                    "Value": request.instance_profile,
                }
            ],
        )
        request.log(f"eb_deploy: creating environment {request.environment} on {solution_stack}")
    else:
        eb.update_environment(
            ApplicationName=request.application, EnvironmentName=request.environment, VersionLabel=label
        )
        request.log(f"eb_deploy: updating environment {request.environment} to {label}")


def deploy(request: DeployRequest, *, sleep: Callable[[float], None] = time.sleep) -> DeployResult:
    bundle = Path(request.bundle)
    if not bundle.is_file():
        raise DeployError(f"--bundle {bundle}: no such file; build it with `make eb-bundle`", 2)
    session = boto3.Session(region_name=request.region)
    region = session.region_name
    if not region:
        raise DeployError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", 2)
    if session.get_credentials() is None:
        raise NoCredentialsError()
    eb = session.client("elasticbeanstalk")
    s3 = session.client("s3")

    existing, solution_stack = _prepare_application(eb, request, region)
    label, bucket, key = _upload_version(session, s3, eb, request, bundle, region)
    _start_deployment(eb, request, label, existing, solution_stack)
    env = _wait_until_deployed(eb, request, label, sleep)
    cname = env.get("CNAME", "")
    request.log(
        f"eb_deploy: {request.environment} is Ready and Green on {label}" + (f": http://{cname}/" if cname else "")
    )
    return DeployResult(label, bucket, key, existing is None, cname)
