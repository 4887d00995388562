#!/usr/bin/env python3
"""A Runtime Provisioner stand-in for stephost's tests: real HTTP on loopback, real GraphQL.

Every request is parsed, validated and executed against the provisioner's published schema with
graphql-core, so a request that does not fit the schema gets GraphQL errors, exactly as from the real
server. Each request is appended to --log as one JSON line (headers, body, errors).

Modes: normal (provisionRuntime answers InProgress; runtimeOperationStatus answers InProgress
--in-progress times, then Succeeded), flaky (the first --failures requests get HTTP 503, or
--failure-status), reject (provisionRuntime answers a GraphQL error), fail (runtimeOperationStatus
answers Failed), slow (the first --failures provisionRuntime calls are executed and logged, then answered
after --delay seconds), drop (the first --failures provisionRuntime calls are executed and logged, then
the connection is closed without an answer), poll-error (the first --failures status queries raise a
GraphQL field error with the extensions given as JSON by --poll-error-extensions), redirect (every request
gets HTTP 307 to the same path), partial (provisionRuntime answers its data and a GraphQL error), created
(provisionRuntime answers HTTP 201), wrong-id (runtimeOperationStatus answers about another operation).
The Idempotency-Key header deduplicates provisionRuntime: the same key gets the same operation.
"""
import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import graphql

parser = argparse.ArgumentParser()
parser.add_argument("--schema", required=True)
parser.add_argument("--log", required=True)
parser.add_argument(
    "--mode",
    default="normal",
    choices=["normal", "flaky", "reject", "fail", "slow", "drop", "poll-error", "redirect", "partial", "created", "wrong-id"],
)
parser.add_argument("--delay", type=float, default=100)
parser.add_argument("--poll-error-extensions", default='{"temporary": true}')
parser.add_argument("--in-progress", type=int, default=1)
parser.add_argument("--failures", type=int, default=2)
parser.add_argument("--failure-status", type=int, default=503, help="the HTTP status of a flaky failure")
args = parser.parse_args()

with open(args.schema) as f:
    schema = graphql.build_schema(f.read())

lock = threading.Lock()
state = {"requests": 0, "by_key": {}, "polls": {}, "provisions": 0}


class Root:
    def __init__(self, key):
        self.key = key

    def provisionRuntime(self, info, config):
        if args.mode == "reject":
            raise Exception("runtime name already taken in the Director")
        with lock:
            operation = state["by_key"].get(self.key)
            if operation is None:
                operation = {"id": str(uuid.uuid4()), "runtimeID": str(uuid.uuid4())}
                state["by_key"][self.key] = operation
        return {**operation, "operation": "Provision", "state": "InProgress", "message": "provisioning started"}

    def runtimeOperationStatus(self, info, id):
        with lock:
            polls = state["polls"].get(id, 0) + 1
            state["polls"][id] = polls
            runtime = next((o["runtimeID"] for o in state["by_key"].values() if o["id"] == id), None)
        if args.mode == "poll-error" and polls <= args.failures:
            raise graphql.GraphQLError(
                "the status store is unavailable", extensions=json.loads(args.poll_error_extensions)
            )
        if args.mode == "fail":
            result = ("Failed", "shoot creation failed: quota exceeded")
        elif polls <= args.in_progress:
            result = ("InProgress", "creating the shoot")
        else:
            result = ("Succeeded", "runtime ready")
        return {"id": id, "operation": "Provision", "state": result[0], "message": result[1], "runtimeID": runtime}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        key = self.headers.get("Idempotency-Key")
        with lock:
            state["requests"] += 1
            number = state["requests"]
        entry = {"number": number, "idempotency_key": key, "body": body}
        if args.mode == "redirect":
            entry["http_status"] = 307
            self.log(entry)
            self.send_response(307)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if args.mode == "flaky" and number <= args.failures:
            entry["http_status"] = args.failure_status
            self.log(entry)
            return self.reply(args.failure_status, {"message": "provisioner overloaded"})
        result = graphql.graphql_sync(
            schema,
            body.get("query", ""),
            root_value=Root(key),
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        response = {"data": result.data}
        if result.errors:
            response["errors"] = [e.formatted for e in result.errors]
            entry["errors"] = response["errors"]
        provision = body.get("operationName") == "ProvisionRuntime"
        if args.mode == "partial" and provision:
            response["errors"] = [{"message": "the Director registration is delayed", "path": ["provisionRuntime"]}]
        if args.mode == "wrong-id" and not provision and result.data:
            result.data["runtimeOperationStatus"]["id"] = "another-operation"
        misbehave = None
        if args.mode in ("slow", "drop") and body.get("operationName") == "ProvisionRuntime":
            with lock:
                state["provisions"] += 1
                if state["provisions"] <= args.failures:
                    misbehave = args.mode
        entry["misbehaved"] = misbehave
        # Logged once executed: the runtime exists at the provisioner whatever happens to the answer.
        self.log(entry)
        if misbehave == "slow":
            time.sleep(args.delay)
        elif misbehave == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.reply(201 if args.mode == "created" and provision else 200, response)

    def log(self, entry):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
