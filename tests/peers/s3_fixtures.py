#!/usr/bin/env python3
"""boto3 against dlm's S3 test server (s3s-fs), for dlm's tests.

The endpoint and credentials come from the environment, as for any AWS SDK:
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION
(tests/src/s3_server.rs passes `S3Server::env()`). Addressing is path-style
and signing is SigV4, as the server needs. The client retries nothing and
gives up on a silent server after 30 s, so a broken server fails a test
instead of hanging it.

Commands:

presign BUCKET KEY EXPIRES_SECS
    Prints a presigned GetObject URL (query-string SigV4, signed headers:
    host only, so a Range header may be added freely).

upload
    Reads a JSON list from stdin, each item
    {"bucket": B, "key": K, "path": FILE, "sha256": bool, "part_size": N|null},
    and uploads each FILE with PutObject, or as a multipart upload in parts of
    N bytes (the last one shorter) when part_size is set. With "sha256" the
    upload carries ChecksumAlgorithm=SHA256, so the server stores and later
    returns x-amz-checksum-sha256; without it the upload carries no checksum
    at all (request_checksum_calculation=when_required). Prints one JSON list
    with, per item, {"etag": the ETag header as sent, quotes included,
    "checksum_sha256": base64 or null}.

Usage: s3_fixtures.py presign BUCKET KEY EXPIRES_SECS | s3_fixtures.py upload < uploads.json
"""

import json
import os
import sys

import boto3
from botocore.config import Config


def client():
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=30,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ["AWS_REGION"],
        config=config,
    )


def presign(bucket, key, expires):
    url = client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires)
    )
    print(url)


def upload_one(s3, item):
    bucket, key, path = item["bucket"], item["key"], item["path"]
    extra = {"ChecksumAlgorithm": "SHA256"} if item.get("sha256") else {}
    part_size = item.get("part_size")
    if not part_size:
        with open(path, "rb") as f:
            out = s3.put_object(Bucket=bucket, Key=key, Body=f, **extra)
        return {"etag": out["ETag"], "checksum_sha256": out.get("ChecksumSHA256")}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    parts = []
    with open(path, "rb") as f:
        number = 1
        while True:
            data = f.read(part_size)
            if not data and parts:
                break
            out = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
            )
            part = {"ETag": out["ETag"], "PartNumber": number}
            if out.get("ChecksumSHA256"):
                part["ChecksumSHA256"] = out["ChecksumSHA256"]
            parts.append(part)
            number += 1
            if len(data) < part_size:
                break
    out = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return {"etag": out["ETag"], "checksum_sha256": out.get("ChecksumSHA256")}


def upload(items):
    s3 = client()
    print(json.dumps([upload_one(s3, item) for item in items]))


def main(argv):
    if len(argv) == 5 and argv[1] == "presign":
        presign(argv[2], argv[3], argv[4])
    elif len(argv) == 2 and argv[1] == "upload":
        upload(json.load(sys.stdin))
    else:
        sys.exit(__doc__.rsplit("Usage: ", 1)[1])


if __name__ == "__main__":
    main(sys.argv)
