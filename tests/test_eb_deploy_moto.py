"""deploy.eb_deploy against a real moto server on loopback: S3 upload, versions, environments, errors.

moto 5.2.5 serves S3, STS and Elastic Beanstalk's applications and environments, but not
CreateApplicationVersion or UpdateEnvironment, and it drops CreateEnvironment's VersionLabel.
`eb_operations` adds those to moto's own EB backend for the test, with AWS's documented
checks (the S3 object must exist, the version and environment must exist), and records an
environment's deployment the way EB reports it: Launching/Updating for a few polls, then
Ready with the health the test asks for. Everything else, including botocore's validation
of every request against the service model, is moto and botocore as shipped.
"""

from __future__ import annotations

import zipfile

import boto3
import pytest
import requests
from moto.core.responses import ActionResult
from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
from moto.elasticbeanstalk.models import eb_backends
from moto.elasticbeanstalk.responses import EBResponse
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer

from deploy import eb_deploy

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
APP, ENV = "autocomplete", "autocomplete-prod"
EB_BUCKET = f"elasticbeanstalk-{REGION}-{ACCOUNT}"
AL2023_PY311 = "64bit Amazon Linux 2023 v4.6.0 running Python 3.11"


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_url, monkeypatch, tmp_path):
    """Fake credentials, the moto endpoint, and no way to reach real AWS or ~/.aws."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()
    return moto_url


@pytest.fixture
def eb_operations(aws_env, monkeypatch):
    """Adds the missing EB operations to moto; returns the calls' record and the health to end in."""
    record = {"created_environments": [], "final_health": "Green", "polls_before_ready": 2}

    def backend(response):
        return eb_backends[response.current_account][response.region]

    def application(response, name):
        try:
            return backend(response).applications[name]
        except KeyError:
            raise InvalidParameterValueError(f"No Application named '{name}' found.") from None

    def require_version(app, label):
        if label not in getattr(app, "versions", {}):
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")

    def start_deployment(env, status, label):
        env.version_label, env.status, env.health = label, status, "Grey"
        env.polls_left = record["polls_before_ready"]

    def create_application_version(self):
        app = application(self, self._get_param("ApplicationName"))
        label, source = self._get_param("VersionLabel"), self._get_param("SourceBundle")
        if s3_backends[self.current_account][self.partition].get_object(source["S3Bucket"], source["S3Key"]) is None:
            raise InvalidParameterValueError(
                f"Unable to download from S3 location (Bucket: {source['S3Bucket']}  Key: {source['S3Key']})."
            )
        versions = app.__dict__.setdefault("versions", {})
        if label in versions:
            raise InvalidParameterValueError(f"Application Version {label} already exists.")
        versions[label] = {
            "ApplicationName": app.application_name,
            "VersionLabel": label,
            "SourceBundle": source,
            "Status": "UNPROCESSED",
        }
        return ActionResult({"ApplicationVersion": versions[label]})

    def update_environment(self):
        app = application(self, self._get_param("ApplicationName"))
        name, label = self._get_param("EnvironmentName"), self._get_param("VersionLabel")
        if name not in app.environments:
            raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{name}'.")
        require_version(app, label)
        start_deployment(app.environments[name], "Updating", label)
        return ActionResult(app.environments[name])

    original_create_environment = EBResponse.create_environment

    def create_environment(self):
        app = application(self, self._get_param("ApplicationName"))
        label = self._get_param("VersionLabel")
        require_version(app, label)
        result = original_create_environment(self)
        record["created_environments"].append(
            {
                "name": self._get_param("EnvironmentName"),
                "stack": self._get_param("SolutionStackName"),
                "options": self._get_param("OptionSettings"),
            }
        )
        start_deployment(app.environments[self._get_param("EnvironmentName")], "Launching", label)
        return result

    original_describe_environments = EBResponse.describe_environments

    def describe_environments(self):
        for env in backend(self).describe_environments():
            if getattr(env, "polls_left", 0) > 0:
                env.polls_left -= 1
                if env.polls_left == 0:
                    env.status, env.health = "Ready", record["final_health"]
        return original_describe_environments(self)

    monkeypatch.setattr(EBResponse, "create_application_version", create_application_version, raising=False)
    monkeypatch.setattr(EBResponse, "update_environment", update_environment, raising=False)
    monkeypatch.setattr(EBResponse, "create_environment", create_environment)
    monkeypatch.setattr(EBResponse, "describe_environments", describe_environments)
    return record


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "abstract-autocomplete-0123456789ab.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Procfile", "web: gunicorn -c backend/gunicorn.conf.py 'backend:create_app()'\n")
        zf.writestr("requirements.txt", "Flask==3.1.3\n")
    return path


def eb_state():
    return eb_backends[ACCOUNT][REGION]


def existing_environment(version="v0"):
    """An application with a running environment on version `version`, made through the API."""
    eb = boto3.client("elasticbeanstalk", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    eb.create_application(ApplicationName=APP)
    s3.create_bucket(Bucket="old-bundles", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="old-bundles", Key="v0.zip", Body=b"old")
    eb.create_application_version(
        ApplicationName=APP, VersionLabel=version, SourceBundle={"S3Bucket": "old-bundles", "S3Key": "v0.zip"}
    )
    eb.create_environment(
        ApplicationName=APP, EnvironmentName=ENV, VersionLabel=version, SolutionStackName=AL2023_PY311
    )
    for _ in range(10):  # the extension reports Launching for a couple of polls
        if eb.describe_environments()["Environments"][0]["Status"] == "Ready":
            return
    raise AssertionError("the environment never became Ready")


def run_cli(*args):
    return eb_deploy.main(["--application", APP, "--environment", ENV, "--poll", "0.01", "--timeout", "10", *args])


def test_update_uploads_bundle_creates_version_and_deploys_it(eb_operations, bundle, capsys):
    existing_environment()
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="my-bundles", CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    assert run_cli("--bundle", str(bundle), "--bucket", "my-bundles", "--version-label", "v1") == 0

    key = f"{APP}/v1.zip"
    uploaded = boto3.client("s3", region_name=REGION).get_object(Bucket="my-bundles", Key=key)["Body"].read()
    assert uploaded == bundle.read_bytes()
    app = eb_state().applications[APP]
    assert app.versions["v1"]["SourceBundle"] == {"S3Bucket": "my-bundles", "S3Key": key}
    env = app.environments[ENV]
    assert (env.version_label, env.status, env.health) == ("v1", "Ready", "Green")
    assert (
        len(eb_operations["created_environments"]) == 1
    )  # the one existing_environment made: updated, not created again
    log = capsys.readouterr().err
    assert "status Updating" in log and "is Ready and Green on v1" in log


def test_create_makes_application_bucket_and_environment(eb_operations, bundle):
    result = eb_deploy.deploy(
        eb_deploy.DeployRequest(
            application=APP,
            environment=ENV,
            bundle=bundle,
            create=True,
            poll_s=0.01,
            timeout_s=10,
            log=lambda line: None,
        )
    )

    assert result.created_environment and result.s3_bucket == EB_BUCKET
    assert result.version_label.startswith(bundle.stem + "-")
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=EB_BUCKET, Key=result.s3_key)["Body"].read()
    assert body == bundle.read_bytes()
    app = eb_state().applications[APP]
    assert app.versions[result.version_label]["SourceBundle"] == {"S3Bucket": EB_BUCKET, "S3Key": result.s3_key}
    env = app.environments[ENV]
    assert (env.version_label, env.status, env.health) == (result.version_label, "Ready", "Green")
    (created,) = eb_operations["created_environments"]
    assert created["stack"] == AL2023_PY311
    assert {
        "Namespace": "aws:autoscaling:launchconfiguration",
        "OptionName": "IamInstanceProfile",
        "Value": "aws-elasticbeanstalk-ec2-role",
    } in created["options"]


@pytest.mark.parametrize("make_application", [True, False], ids=["no-environment", "no-application"])
def test_missing_environment_without_create_is_refused_before_upload(eb_operations, bundle, capsys, make_application):
    if make_application:
        boto3.client("elasticbeanstalk", region_name=REGION).create_application(ApplicationName=APP)

    assert run_cli("--bundle", str(bundle)) == 2

    err = capsys.readouterr().err.strip()
    missing = f"environment {ENV} of application {APP}" if make_application else f"application {APP}"
    assert err == f"eb_deploy: {missing} does not exist in {REGION}; pass --create to create it"
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []
    assert not getattr(eb_state().applications.get(APP), "versions", {})


def test_missing_credentials_is_one_line_and_exit_2(eb_operations, bundle, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    assert run_cli("--bundle", str(bundle)) == 2

    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("eb_deploy: no AWS credentials found")


def test_missing_region_is_refused(eb_operations, bundle, capsys, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    assert run_cli("--bundle", str(bundle)) == 2
    assert "no AWS region: pass --region" in capsys.readouterr().err


def test_missing_bundle_is_refused(eb_operations, tmp_path, capsys):
    assert run_cli("--bundle", str(tmp_path / "nope.zip")) == 2
    assert "nope.zip: no such file; build it with `make eb-bundle`" in capsys.readouterr().err


def test_unhealthy_deployment_times_out_with_last_state(eb_operations, bundle, capsys):
    existing_environment()
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="my-bundles", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    eb_operations["final_health"] = "Red"

    assert (
        eb_deploy.main(
            [
                "--application",
                APP,
                "--environment",
                ENV,
                "--bundle",
                str(bundle),
                "--bucket",
                "my-bundles",
                "--version-label",
                "v2",
                "--poll",
                "0.01",
                "--timeout",
                "0.3",
            ]
        )
        == 1
    )

    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "eb_deploy: timed out after 0.3 s waiting for autocomplete-prod to be Ready and Green on version v2; "
        "last seen: status Ready, health Red, version v2"
    )


def test_aws_refusal_is_reported_not_raised(eb_operations, bundle, capsys):
    existing_environment()
    # The bucket does not exist: S3 refuses the upload.
    assert run_cli("--bundle", str(bundle), "--bucket", "no-such-bucket") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no-such-bucket" in err
