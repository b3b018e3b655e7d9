"""Deploys a source bundle (from deploy.eb_bundle) to an Elastic Beanstalk environment with boto3.

    python -m deploy.eb_deploy --application NAME --environment NAME --bundle PATH
                               [--region R] [--bucket B] [--create] [--version-label L]

Steps: upload the zip to S3 -> create an application version from it -> update the environment
to that version (or create the environment, with --create) -> poll until the environment is
Ready, Green and running that version, or the timeout passes.

Exit status: 0 deployed; 1 the deployment failed or timed out; 2 nothing was deployed because
of the inputs (no credentials, no region, no such application or environment, no bundle file).
Credentials and region come from the usual AWS sources (environment, ~/.aws, instance role);
AWS_ENDPOINT_URL points boto3 at another endpoint (the tests use a local moto server).
The steps themselves are deploy/eb_rollout.py's; this module is their command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from deploy.eb_rollout import DEFAULT_INSTANCE_PROFILE, DeployError, DeployRequest, deploy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.eb_deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--application", required=True, help="Elastic Beanstalk application name")
    parser.add_argument("--environment", required=True, help="Elastic Beanstalk environment name")
    parser.add_argument("--bundle", required=True, type=Path, help="source bundle zip from `make eb-bundle`")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / ~/.aws/config)")
    parser.add_argument("--bucket", help="S3 bucket for the bundle (default: elasticbeanstalk-<region>-<account>)")
    parser.add_argument("--create", action="store_true", help="create the application and environment if missing")
    parser.add_argument("--version-label", help="application version label (default: bundle name + UTC time)")
    parser.add_argument("--solution-stack", help="platform for a new environment (default: newest AL2023 Python 3.11)")
    parser.add_argument(
        "--instance-profile",
        default=DEFAULT_INSTANCE_PROFILE,
        help="EC2 instance profile for a new environment (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1200.0,
        help="seconds to wait for the environment to be healthy (default: %(default)s)",
    )
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status checks (default: %(default)s)")
    return parser


def _deploy_reporting_errors(request: DeployRequest) -> int:
    """deploy(), with each way it can fail printed as one line and turned into the exit status."""
    try:
        deploy(request)
    except NoCredentialsError:
        print(
            "eb_deploy: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, "
            "or run `aws configure`",
            file=sys.stderr,
        )
        return 2
    except NoRegionError:
        print("eb_deploy: no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION", file=sys.stderr)
        return 2
    except DeployError as error:
        print(f"eb_deploy: {error}", file=sys.stderr)
        return error.exit_code
    except ClientError as error:
        info = error.response.get("Error", {})
        print(
            f"eb_deploy: AWS refused {error.operation_name}: {info.get('Code', '?')}: {info.get('Message', error)}",
            file=sys.stderr,
        )
        return 1
    except (BotoCoreError, Boto3Error) as error:  # Boto3Error: S3UploadFailedError from upload_file
        print(f"eb_deploy: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.poll <= 0:
        parser.error("--timeout and --poll must be > 0")
    request = DeployRequest(
        application=args.application,
        environment=args.environment,
        bundle=args.bundle,
        region=args.region,
        bucket=args.bucket,
        create=args.create,
        version_label=args.version_label,
        solution_stack=args.solution_stack,
        instance_profile=args.instance_profile,
        timeout_s=args.timeout,
        poll_s=args.poll,
    )
    return _deploy_reporting_errors(request)


if __name__ == "__main__":
    sys.exit(main())
