"""Servers the operations tests share: a real S3-compatible object store (moto's server, from pip)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import wait_until


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """`moto_server` on a free loopback port for the whole session; its URL."""
    import httpx

    from controlplane.embedded import free_port

    port = free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "ab")  # noqa: SIM115  (owned by the child)
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout=60, what="moto_server to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def s3_options(endpoint: str, bucket: str) -> dict:
    """The same S3Storage options production.py builds from OBJECT_STORE_* (see controlplane/settings)."""
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "access_key": "test-access-key",
        "secret_key": "test-secret-key",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": True,
        "location": "artifacts",
    }


@pytest.fixture
def s3_artifacts(s3_endpoint, settings):
    """The artifact store switched to a fresh bucket on the S3 server for one test; the bucket's name."""
    import uuid

    import boto3

    bucket = f"lo-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-access-key",
        aws_secret_access_key="test-secret-key",
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_options(s3_endpoint, bucket)},
    }
    return client, bucket
