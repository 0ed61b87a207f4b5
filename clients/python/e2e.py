#!/usr/bin/env python3
"""End-to-end check of the generated Python client against a running modelpress service.

Uploads a real model, submits an int8 quantization job (with an Idempotency-Key, retried once to
prove the header reaches the server), waits for it, streams the compressed model to disk and
verifies its SHA-256 against the one the API reported (and the ETag). Uses only the generated
client (package ``modelpress_client``, built from openapi.yaml into target/clients/python) and
the standard library. Exits non-zero on any failure.

    python e2e.py --base-url http://127.0.0.1:8080 --model all-minilm-l6-v2.onnx
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid

import modelpress_client
from modelpress_client import JobArtifactsApi, JobsApi, ModelUploadApi
from modelpress_client.models import JobRequest, JobStep, QuantizeWeights

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True, help="an ONNX model file to upload")
    parser.add_argument("--api-key", default=os.environ.get("MODELPRESS_API_KEY"),
                        help="API key (default: $MODELPRESS_API_KEY)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the job")
    args = parser.parse_args()

    config = modelpress_client.Configuration(host=args.base_url, access_token=args.api_key)
    with modelpress_client.ApiClient(config) as client:
        # 1. Upload: the raw file as application/octet-stream (the client reads it from the path).
        model = ModelUploadApi(client).upload_model(body=args.model, name="python-e2e")
        local_sha = sha256_of(args.model)
        check(model.sha256 == local_sha, f"upload sha256 {model.sha256} != local {local_sha}")
        check(model.bytes == os.path.getsize(args.model), f"upload size {model.bytes}")
        print(f"uploaded model {model.id}: {model.bytes} bytes, {model.parameter_count} parameters")

        # 2. Submit: int8 per-channel weights. A retry with the same Idempotency-Key returns the same job.
        jobs = JobsApi(client)
        request = JobRequest(
            model_id=model.id,
            steps=[JobStep(type="quantize", weights=QuantizeWeights(bits=8, symmetric=True, granularity="channel"))],
        )
        key = f"python-e2e-{uuid.uuid4()}"
        first = jobs.submit_job_with_http_info(request, idempotency_key=key)
        again = jobs.submit_job_with_http_info(request, idempotency_key=key)
        check(first.status_code == 202, f"submit answered {first.status_code}")
        check(again.status_code == 200 and again.data.id == first.data.id,
              f"idempotent retry answered {again.status_code} with job {again.data.id}")
        job_id = first.data.id
        print(f"submitted job {job_id}")

        # 3. Wait for a terminal state.
        deadline = time.monotonic() + args.timeout
        job = jobs.get_job(job_id)
        while job.state.value not in TERMINAL:
            check(time.monotonic() < deadline, f"job {job_id} still {job.state.value} after {args.timeout}s")
            time.sleep(0.5)
            job = jobs.get_job(job_id)
        check(job.state.value == "SUCCEEDED", f"job ended {job.state.value}: {job.error}")
        artifact = next(a for a in job.artifacts if a.name == "model.onnx")
        print(f"job succeeded: {job.report.bytes_before} -> {job.report.bytes_after} bytes "
              f"(ratio {job.report.compression_ratio:.2f})")

        # 4. Download, streaming to disk, and verify against what the API reported.
        response = JobArtifactsApi(client).download_artifact_without_preload_content(job_id, "model.onnx")
        check(response.status == 200, f"download answered {response.status}")
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(suffix=".onnx", delete=False) as out:
            for chunk in response.stream(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        response.release_conn()
        os.unlink(out.name)
        check(size == artifact.bytes, f"downloaded {size} bytes, API reported {artifact.bytes}")
        check(digest.hexdigest() == artifact.sha256,
              f"downloaded sha256 {digest.hexdigest()} != reported {artifact.sha256}")
        check(response.headers.get("ETag") == f'"{artifact.sha256}"', f"ETag {response.headers.get('ETag')}")
        print(f"python client e2e OK: model.onnx {size} bytes, sha256 {artifact.sha256} matches the API")


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, modelpress_client.ApiException) as e:
        print(f"python client e2e FAILED: {e}", file=sys.stderr)
        sys.exit(1)
