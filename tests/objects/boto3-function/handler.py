"""A classic-watchdog process function that keeps files with plain boto3, configured only by
the environment Baton gives it (AWS_ENDPOINT_URL and a key pair of its own). The request is
one JSON operation; the answer one JSON line: {"ok": ...} or {"error": "<S3 code>"}."""
import json
import sys

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
