"""A classic-watchdog process function that keeps files with plain boto3, configured only by
the environment Baton gives it (AWS_ENDPOINT_URL and a key pair of its own). The request is
one JSON operation; the answer one JSON line: {"ok": ...} or {"error": "<S3 code>"}."""
import hashlib
import json
import sys
import tempfile

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3")
request = json.load(sys.stdin)
op, bucket, key = request["op"], request.get("bucket"), request.get("key")


def listing(prefix="", delimiter=""):
    """Every key and common prefix, two to a page, through boto3's paginator."""
    keys, prefixes = [], []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter=delimiter, PaginationConfig={"PageSize": 2}
    )
    for page in pages:
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return {"keys": keys, "prefixes": prefixes}


def round_trip(size):
    """A file of `size` bytes up with upload_file and back with download_file: boto3's
    transfer manager goes multipart past 8 MiB. The digests of both ends, and the ETag."""
    with tempfile.TemporaryDirectory() as scratch:
        sent, back = f"{scratch}/sent", f"{scratch}/back"
        with open(sent, "wb") as out:
            block = bytes(range(256)) * 4096
            for at in range(0, size, len(block)):
                out.write(block[: size - at])
        s3.upload_file(sent, bucket, key)
        s3.download_file(bucket, key, back)
        digest = lambda path: hashlib.sha256(open(path, "rb").read()).hexdigest()
        return {"same": digest(sent) == digest(back), "size": s3.head_object(Bucket=bucket, Key=key)["ContentLength"]}


def multipart_refusals():
    """What a careless multipart client hears: each answer's code, in order."""
    codes = []

    def code(call):
        try:
            call()
            codes.append("ok")
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])

    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number in (1, 2):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=b"x" * 1024)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    codes.append([u["Key"] for u in listed if u["UploadId"] == upload])
    codes.append([p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]])
    # Parts under 5 MiB but the last: refused, as S3 does, and the upload stays.
    code(lambda: s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}))
    code(lambda: s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts[::-1]}))
    code(lambda: s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=10001, Body=b"x"))
    code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload))
    code(lambda: s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=3, Body=b"x"))
    code(lambda: s3.head_object(Bucket=bucket, Key=key))
    return codes


try:
    if op == "create":
        s3.create_bucket(Bucket=bucket)
        out = "created"
    elif op == "buckets":
        out = sorted(b["Name"] for b in s3.list_buckets()["Buckets"])
    elif op == "put":
        s3.put_object(Bucket=bucket, Key=key, Body=request["body"].encode())
        out = "stored"
    elif op == "get":
        out = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    elif op == "range":
        out = s3.get_object(Bucket=bucket, Key=key, Range=request["range"])["Body"].read().decode()
    elif op == "head":
        out = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    elif op == "list":
        out = listing(request.get("prefix", ""), request.get("delimiter", ""))
    elif op == "copy":
        s3.copy_object(Bucket=bucket, Key=request["to"], CopySource={"Bucket": bucket, "Key": key})
        out = "copied"
    elif op == "delete-many":
        objects = [{"Key": k} for k in request["keys"]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        out = "deleted"
    elif op == "delete-bucket":
        s3.delete_bucket(Bucket=bucket)
        out = "deleted"
    elif op == "round-trip":
        out = round_trip(request["size"])
    elif op == "multipart-refusals":
        out = multipart_refusals()
    elif op == "stranger":
        # Someone else's key, and no key at all: each answer's code.
        out = []
        for client in (
            boto3.client("s3", aws_access_key_id="BATONSTRANGER000000", aws_secret_access_key="x"),
            boto3.client("s3", config=Config(signature_version=UNSIGNED)),
        ):
            try:
                client.list_objects_v2(Bucket=bucket)
                out.append("listed")
            except ClientError as error:
                out.append(error.response["Error"]["Code"])
    else:
        out = None
    print(json.dumps({"ok": out}))
except ClientError as error:
    print(json.dumps({"error": error.response["Error"]["Code"]}))
