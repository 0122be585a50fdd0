#!/usr/bin/env python3
"""Request bodies for benches/oip.sh, from the 2024 feature export.

    oip-bodies.py EXPORT.csv OUT_DIR

Writes, for ROWS in (1, 64): `v2-json-ROWS/` and `v2-binary-ROWS/` (32 bodies each, distinct
rows, and `list`: one "file header_length" line per body, 0 for JSON), and `grpc-ROWS.bin`
(one gRPC-framed ModelInferRequest with raw_input_contents, as tritonclient sends it).
Also `batch-64.lua`: /api/v1/predict/batch bodies of 64 game ids, for wrk.
"""
import csv
import json
import struct
import sys
from pathlib import Path

import numpy as np
from tritonclient.grpc import service_pb2

BODIES = 32


def main():
    export, out = Path(sys.argv[1]), Path(sys.argv[2])
    with export.open() as file:
        rows = list(csv.reader(file))
    header, rows = rows[0], rows[1:]
    # game_id, date, season, the 27 features, home_win.
    ids = [row[0] for row in rows]
    features = np.array([[float(v) for v in row[3:30]] for row in rows], dtype=np.float32)
    assert features.shape[1] == 27, header
    for count in (1, 64):
        for kind in ("json", "binary"):
            folder = out / f"v2-{kind}-{count}"
            folder.mkdir(parents=True)
            lines = []
            for index in range(BODIES):
                start = (index * count * 7) % (len(features) - count)
                batch = features[start:start + count]
                tensor = {"name": "input", "shape": [count, 27], "datatype": "FP32"}
                if kind == "json":
                    tensor["data"] = batch.flatten().tolist()
                    body, length = json.dumps({"inputs": [tensor]}).encode(), 0
                else:
                    tensor["parameters"] = {"binary_data_size": batch.nbytes}
                    head = json.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}})
                    body = head.encode() + batch.tobytes()
                    length = len(head.encode())
                path = folder / f"{index}.body"
                path.write_bytes(body)
                lines.append(f"{path} {length}")
            (folder / "list").write_text("\n".join(lines) + "\n")
        request = service_pb2.ModelInferRequest(model_name="home_win")
        tensor = request.inputs.add()
        tensor.name, tensor.datatype = "input", "FP32"
        tensor.shape.extend([count, 27])
        request.raw_input_contents.append(features[:count].tobytes())
        message = request.SerializeToString()
        (out / f"grpc-{count}.bin").write_bytes(struct.pack(">BI", 0, len(message)) + message)
    with (out / "batch-64.lua").open("w") as file:
        file.write("bodies = {\n")
        for start in range(0, len(ids) - 64, 64 * 3):
            items = ", ".join(f'{{\\"game_id\\": \\"{i}\\"}}' for i in ids[start:start + 64])
            file.write(f'  "{{\\"items\\": [{items}]}}",\n')
        file.write("}\n")


if __name__ == "__main__":
    main()
