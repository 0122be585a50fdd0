#!/usr/bin/env python3
"""Rebuilds proto/grpc_predict_v2.proto (KServe's Open Inference Protocol gRPC service) from
the descriptor compiled into a pinned PyPI release of KServe's SDK, which ships no .proto:
package, services, messages, field names, numbers and types as KServe compiled them.

    .tools/oip/bin/python proto/vendor.py > body.proto   # needs `protobuf` (the OIP venv has it)

The header of the committed file (source, licence) is kept by hand above what this prints.
"""
import glob
import importlib.util
import subprocess
import sys
import tempfile
import zipfile

from google.protobuf import descriptor_pb2 as d

KSERVE = "kserve==0.21.0"
MODULE = "kserve/protocol/grpc/grpc_predict_v2_pb2.py"
SCALARS = {number: name[5:].lower() for name, number in d.FieldDescriptorProto.Type.items()}


def descriptor():
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary", ":all:", "-d", work, KSERVE], check=True)
        (wheel,) = glob.glob(f"{work}/*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(MODULE, work)
        spec = importlib.util.spec_from_file_location("pb2", f"{work}/{MODULE}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    file = d.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(file)
    return file


def type_of(field):
    if field.type in (d.FieldDescriptorProto.TYPE_MESSAGE, d.FieldDescriptorProto.TYPE_ENUM):
        return field.type_name.split(".")[-1]
    return SCALARS[field.type]


def message(out, proto, depth):
    pad = "  " * depth
    out.append(f"{pad}message {proto.name} {{")
    maps = {n.name: n for n in proto.nested_type if n.options.map_entry}
    for nested in proto.nested_type:
        if not nested.options.map_entry:
            message(out, nested, depth + 1)
    oneofs_done = set()
    for field in proto.field:
        if field.HasField("oneof_index"):
            index = field.oneof_index
            if index in oneofs_done:
                continue
            oneofs_done.add(index)
            out.append(f"{pad}  oneof {proto.oneof_decl[index].name} {{")
            for member in proto.field:
                if member.HasField("oneof_index") and member.oneof_index == index:
                    out.append(f"{pad}    {type_of(member)} {member.name} = {member.number};")
            out.append(f"{pad}  }}")
        elif field.type_name.split(".")[-1] in maps:
            key, value = maps[field.type_name.split(".")[-1]].field
            out.append(f"{pad}  map<{type_of(key)}, {type_of(value)}> {field.name} = {field.number};")
        elif field.label == d.FieldDescriptorProto.LABEL_REPEATED:
            out.append(f"{pad}  repeated {type_of(field)} {field.name} = {field.number};")
        else:
            out.append(f"{pad}  {type_of(field)} {field.name} = {field.number};")
    out.append(f"{pad}}}")


def main():
    file = descriptor()
    out = ['syntax = "proto3";', "", f"package {file.package};", ""]
    for service in file.service:
        out.append(f"service {service.name} {{")
        for rpc in service.method:
            request, response = rpc.input_type.split(".")[-1], rpc.output_type.split(".")[-1]
            out.append(f"  rpc {rpc.name}({request}) returns ({response}) {{}}")
        out.extend(["}", ""])
    for proto in file.message_type:
        message(out, proto, 0)
        out.append("")
    print("\n".join(out), end="")


if __name__ == "__main__":
    main()
