#!/usr/bin/env python3
"""A classic-watchdog function: the request body arrives on stdin, stdout is the response.

The OpenFaaS classic watchdog's CGI-style variables tell the request: Http_Method, Http_Path,
Http_Query and Http_<Header>. Here: word and line counts of the body.
"""
import json
import os
import sys

body = sys.stdin.read()
print(json.dumps({
    "method": os.environ.get("Http_Method", ""),
    "path": os.environ.get("Http_Path", ""),
    "query": os.environ.get("Http_Query", ""),
    "lines": len(body.splitlines()),
    "words": len(body.split()),
    "chars": len(body),
}))
