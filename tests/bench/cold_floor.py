"""The Python peer's unavoidable cold-init floor: what a boto3 Lambda must do before its first poll.

Imports boto3, creates the clients the matching studio-ops function builds (service names as arguments),
then makes the runtime's first request (GET .../invocation/next) to AWS_LAMBDA_RUNTIME_API. The benchmark
times spawn -> that request with the same harness as the Rust bootstraps. It is a floor: the real Python
runtime also loads its own runtime client and the function's code on top of this.
"""

import http.client
import os
import sys

import boto3

CLIENTS = [boto3.client(service) for service in sys.argv[1:]]

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
conn = http.client.HTTPConnection(host, int(port or 80))
conn.request("GET", "/2018-06-01/runtime/invocation/next")
conn.getresponse()
