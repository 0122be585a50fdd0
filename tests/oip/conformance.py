#!/usr/bin/env python3
"""bullpen's Open Inference Protocol, driven by Triton's own Python clients.

    conformance.py BULLPEN_BINARY

Starts the binary with auth on (three keys: a client, a key without the predict scope, and
one with a rate limit of one request), REST on one free port and gRPC on another, then
checks with `tritonclient.http` and `tritonclient.grpc`: liveness, readiness, model
readiness by name and by name and version, server and model metadata; infer with binary and
with JSON tensors for 1 and 64 rows of real 2024 feature vectors (`bullpen features export`),
equal within 1e-6 to ONNX Runtime in Python on the same rows with the version that answered;
bullpen's `game_id` input equal to `/api/v1/predict`; and each error with its status.
With `lb.orca` on, the ORCA load reports read with the published xDS message
(`xds-protos`): the `endpoint-load-metrics` header's TEXT names only the message's fields,
and the `endpoint-load-metrics-bin` trailer parses as `OrcaLoadReport` with no unknown field.
Exit 0 when every check holds.
"""
import base64
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import numpy as np
import onnxruntime
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from google.protobuf import unknown_fields
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException
from xds.data.orca.v3.orca_load_report_pb2 import OrcaLoadReport

ROOT = Path(__file__).resolve().parents[2]
MODEL = "home_win"
TOLERANCE = 1e-6
FAILURES = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        FAILURES.append(what)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_key(binary, name, scopes, rate):
    args = [binary, "keys", "create", "--name", name, "--print-config"]
    for scope in scopes:
        args += ["--scope", scope]
    args += ["--rate", rate[0], "--burst", rate[1]]
    text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    key = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("# The key"))
    return key, "\n".join(line for line in text.splitlines() if not line.startswith("#"))


class Server:
    def __init__(self, binary, work):
        self.keys = {}
        config = ["[auth]", "enabled = true", ""]
        for name, scopes, rate in [
            ("client", ["predict"], ("1000000/min", "100000")),
            ("reader", ["features:read"], ("1000000/min", "100000")),
            ("limited", ["predict"], ("1/min", "1")),
        ]:
            key, entry = create_key(binary, name, scopes, rate)
            self.keys[name] = key
            config.append(entry)
        (work / "config").mkdir()
        (work / "config" / "default.toml").write_text("\n".join(config) + "\n")
        self.port, self.grpc_port = free_port(), free_port()
        env = dict(os.environ, BULLPEN__SERVER__PORT=str(self.port),
                   BULLPEN__SERVER__GRPC_PORT=str(self.grpc_port),
                   BULLPEN__SERVER__DRAIN_SECS="0", BULLPEN__TELEMETRY__LEVEL="warn",
                   BULLPEN__LB__ORCA="true")
        env.pop("RUST_LOG", None)
        self.log = open(work / "server.log", "wb")
        self.process = subprocess.Popen([binary, "--config-dir", str(work / "config"), "serve"],
                                        cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"bullpen exited: {(work / 'server.log').read_text()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        sys.exit("bullpen did not become ready")

    def headers(self, key="client"):
        return {"authorization": f"Bearer {self.keys[key]}"}

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def feature_rows(binary, names, spec="v1"):
    """Every 2024 game's feature vector of feature spec `spec`, as the server computes it
    offline."""
    text = subprocess.run([binary, "features", "export", "--seasons", "2024", "--version", spec],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    ids = [row["game_id"] for row in rows]
    matrix = np.array([[float(row[name]) for name in names] for row in rows], dtype=np.float32)
    return ids, matrix


def offline(version, rows):
    manifest = json.loads((ROOT / "models" / MODEL / version / "manifest.json").read_text())
    session = onnxruntime.InferenceSession(
        str(ROOT / "models" / MODEL / version / manifest["model_file"]),
        providers=["CPUExecutionProvider"])
    outputs = session.run([manifest["output"]], {manifest["input"]: rows})[0]
    return np.asarray(outputs, dtype=np.float32)[:, 1]


def v1_predict(server, game_id):
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/v1/predict",
        data=json.dumps({"game_id": game_id}).encode(),
        headers={"Content-Type": "application/json", **server.headers()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["home_win_probability"]


def status_of(call):
    try:
        call()
    except InferenceServerException as error:
        return str(error.status())
    return "no error"


def probes(server, http, grpc):
    headers = server.headers()
    for name, client in [("http", http), ("grpc", grpc)]:
        check(client.is_server_live(headers=headers), f"{name}: server live")
        check(client.is_server_ready(headers=headers), f"{name}: server ready")
        check(client.is_model_ready(MODEL, headers=headers), f"{name}: model ready by name")
        check(client.is_model_ready(MODEL, "1", headers=headers),
              f"{name}: model ready by name and version")
        check(not client.is_model_ready(MODEL, "99", headers=headers),
              f"{name}: an unknown version is not ready")
    meta = http.get_server_metadata(headers=headers)
    check(meta["name"] == "bullpen" and "binary_tensor_data" in meta["extensions"],
          f"http: server metadata {meta}")
    meta = grpc.get_server_metadata(headers=headers, as_json=True)
    check(meta["name"] == "bullpen", f"grpc: server metadata {meta}")
    model = http.get_model_metadata(MODEL, headers=headers)
    check(model["platform"] == "onnxruntime_onnx"
          and model["inputs"][0]["datatype"] == "FP32"
          and model["inputs"][0]["shape"] == [-1, 27],
          f"http: model metadata {model['inputs']}")
    model = grpc.get_model_metadata(MODEL, "1", headers=headers, as_json=True)
    check(model["versions"] == ["1"] and [int(d) for d in model["inputs"][0]["shape"]] == [-1, 27],
          f"grpc: model metadata {model['inputs']}")
    return model["inputs"][0]["name"]


def infer_rows(server, http, grpc, input_name, rows, versions):
    headers = server.headers()
    for count in (1, 64):
        batch = rows[:count]
        for version in versions:
            cases = [("http binary", http, True), ("http JSON", http, False),
                     ("grpc raw", grpc, True)]
            for name, client, binary in cases:
                module = httpclient if client is http else grpcclient
                tensor = module.InferInput(input_name, list(batch.shape), "FP32")
                if client is http:
                    tensor.set_data_from_numpy(batch, binary_data=binary)
                    outputs = [httpclient.InferRequestedOutput("home_win_probability",
                                                               binary_data=binary)]
                else:
                    tensor.set_data_from_numpy(batch)
                    outputs = [grpcclient.InferRequestedOutput("home_win_probability")]
                # tritonclient writes Inference-Header-Content-Length into the dict it is
                # given: each call gets its own.
                result = client.infer(MODEL, [tensor], model_version=version, outputs=outputs,
                                      request_id=f"{name}-{count}", headers=dict(headers))
                answered = result.get_response(as_json=True) if client is grpc else result.get_response()
                answered = answered["model_version"]
                got = result.as_numpy("home_win_probability")
                want = offline(answered, batch)
                worst = float(np.max(np.abs(got.astype(np.float64) - want)))
                check(got.shape == (count,) and worst <= TOLERANCE,
                      f"{name}: {count} rows, version {version or 'routed'} ({answered}) "
                      f"equal ONNX Runtime (max diff {worst:.2e})")


def game_ids(server, http, grpc, ids):
    headers = server.headers()
    chosen = ids[::150][:8]
    want = [v1_predict(server, game_id) for game_id in chosen]
    for name, module, client in [("http", httpclient, http), ("grpc", grpcclient, grpc)]:
        tensor = module.InferInput("game_id", [len(chosen)], "BYTES")
        tensor.set_data_from_numpy(np.array([i.encode() for i in chosen], dtype=np.object_))
        result = client.infer(MODEL, [tensor], headers=dict(headers))
        got = result.as_numpy("home_win_probability")
        worst = float(np.max(np.abs(got.astype(np.float64) - np.array(want))))
        check(worst <= TOLERANCE, f"{name}: game_id input equals /api/v1/predict "
                                  f"for {len(chosen)} games (max diff {worst:.2e})")


def grpc_trailers(port, path, message, metadata):
    """One unary gRPC call on a connection of its own, spoken with `h2`: the trailers as sent.
    (gRPC's own client takes `endpoint-load-metrics-bin` for its balancer and hands the
    application none of it.)"""
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    connection.initiate_connection()
    connection.send_headers(1, [
        (":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
        (":path", path), ("content-type", "application/grpc"), ("te", "trailers"), *metadata])
    connection.send_data(1, b"\0" + len(message).to_bytes(4, "big") + message,
                         end_stream=True)
    trailers = None
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(connection.data_to_send())
        while trailers is None:
            data = sock.recv(65536)
            if not data:
                break
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    connection.acknowledge_received_data(event.flow_controlled_length,
                                                         event.stream_id)
            sock.sendall(connection.data_to_send())
    return trailers or {}


def load_reports(server, game_id):
    """The ORCA reports against the published message definition."""
    fields = OrcaLoadReport.DESCRIPTOR.fields_by_name
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/v1/games/{game_id}/prediction",
        headers=server.headers())
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.headers.get("endpoint-load-metrics", "")
    check(text.startswith("TEXT "), f"http: endpoint-load-metrics in TEXT form ({text!r})")
    parsed = {}
    for pair in text.removeprefix("TEXT ").split(","):
        name, _, value = pair.strip().partition("=")
        try:
            parsed[name] = float(value)
        except ValueError:
            parsed[name] = None
    named = {n for n in parsed if n.startswith("named_metrics.")}
    scalars = set(parsed) - named
    check(all(n in fields and fields[n].type == fields[n].TYPE_DOUBLE for n in scalars),
          f"http: the TEXT report names double fields of OrcaLoadReport ({sorted(scalars)})")
    check(all(v is not None and v >= 0 for v in parsed.values()),
          f"http: every reported value is a number of at least 0 ({parsed})")
    check({"cpu_utilization", "application_utilization", "rps_fractional"} <= scalars
          and "named_metrics.inference_queue" in named,
          "http: cpu, application utilization, rps and the inference queue reported")
    request = service_pb2.ModelReadyRequest(name=MODEL).SerializeToString()
    trailers = grpc_trailers(server.grpc_port, "/inference.GRPCInferenceService/ModelReady",
                             request, list(server.headers().items()))
    check(trailers.get("grpc-status") == "0", f"grpc: the call answered ({trailers})")
    trailer = trailers.get("endpoint-load-metrics-bin")
    check(trailer is not None, "grpc: the endpoint-load-metrics-bin trailer is sent")
    # Binary metadata travels base64, padded or not.
    trailer = trailer or ""
    report = OrcaLoadReport.FromString(base64.b64decode(trailer + "=" * (-len(trailer) % 4)))
    check(len(unknown_fields.UnknownFieldSet(report)) == 0,
          "grpc: the trailer parses as OrcaLoadReport with no unknown field")
    check(report.cpu_utilization >= 0 and "inference_queue" in report.named_metrics,
          f"grpc: the report carries cpu and the inference queue ({report})".replace("\n", " "))


def errors(server, http, grpc, input_name, rows):
    good = rows[:2]
    cases = [
        ("unknown model", "nope", input_name, good, "FP32", "client"),
        ("unknown version", MODEL + "@99", input_name, good, "FP32", "client"),
        ("wrong shape", MODEL, input_name, good[:, :26], "FP32", "client"),
        ("wrong datatype", MODEL, input_name, good.astype(np.float16), "FP16", "client"),
        ("unknown input", MODEL, "other", good, "FP32", "client"),
        ("no scope", MODEL, input_name, good, "FP32", "reader"),
        ("no credentials", MODEL, input_name, good, "FP32", None),
    ]
    expected = {
        "unknown model": ("404", "StatusCode.NOT_FOUND"),
        "unknown version": ("404", "StatusCode.NOT_FOUND"),
        "wrong shape": ("400", "StatusCode.INVALID_ARGUMENT"),
        "wrong datatype": ("400", "StatusCode.INVALID_ARGUMENT"),
        "unknown input": ("400", "StatusCode.INVALID_ARGUMENT"),
        "no scope": ("403", "StatusCode.PERMISSION_DENIED"),
        "no credentials": ("401", "StatusCode.UNAUTHENTICATED"),
        "rate limited": ("429", "StatusCode.RESOURCE_EXHAUSTED"),
    }
    for what, model, name, data, datatype, key in cases:
        model, _, version = model.partition("@")
        headers = server.headers(key) if key else {}
        for index, (module, client) in enumerate([(httpclient, http), (grpcclient, grpc)]):
            tensor = module.InferInput(name, list(data.shape), datatype)
            tensor.set_data_from_numpy(data)
            status = status_of(lambda: client.infer(model, [tensor], model_version=version,
                                                    headers=dict(headers)))
            check(status == expected[what][index],
                  f"{module.__name__}: {what} is {expected[what][index]} (got {status})")
    # The limited key has one request: its first goes through, the next is refused.
    for index, (module, client) in enumerate([(httpclient, http), (grpcclient, grpc)]):
        tensor = module.InferInput(input_name, [1, 27], "FP32")
        tensor.set_data_from_numpy(rows[:1])
        calls = [status_of(lambda: client.infer(MODEL, [tensor], headers=server.headers("limited")))
                 for _ in range(2)]
        check(calls[-1] == expected["rate limited"][index],
              f"{module.__name__}: rate limited is {expected['rate limited'][index]} (got {calls})")


def main():
    binary = str(Path(sys.argv[1]).resolve())
    with tempfile.TemporaryDirectory() as work:
        server = Server(binary, Path(work))
        try:
            http = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
            grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
            input_name = probes(server, http, grpc)
            names = json.loads((ROOT / "models" / MODEL / "1" / "manifest.json").read_text())
            ids, rows = feature_rows(binary, names["feature_spec"]["names"])
            infer_rows(server, http, grpc, input_name, rows, ("", "1", "2"))
            # Version 3 reads feature spec v2: the teams, then the starters.
            v2 = json.loads((ROOT / "models" / MODEL / "3" / "manifest.json").read_text())
            _, v2_rows = feature_rows(binary, v2["feature_spec"]["names"], "v2")
            infer_rows(server, http, grpc, input_name, v2_rows, ("3",))
            game_ids(server, http, grpc, ids)
            load_reports(server, ids[0])
            errors(server, http, grpc, input_name, rows)
            http.close()
            grpc.close()
        finally:
            server.stop()
            log = (Path(work) / "server.log").read_text()
            if "panicked" in log:
                FAILURES.append("the server panicked")
                print(log)
    if FAILURES:
        sys.exit(f"{len(FAILURES)} checks failed:\n  " + "\n  ".join(FAILURES))
    print("every check held")


if __name__ == "__main__":
    main()
