#!/usr/bin/env python3
"""Regenerates the gRPC stubs under ecoms_accounts/_proto/account/v1/ from
the service's contract (proto/account/v1/account.proto at the repository
root); with --check, changes nothing and fails when the committed stubs
differ from what the proto gives.

The stubs are committed rather than generated at install time: a wheel is
built from this directory alone, and the proto lies outside it. CI runs
`python generate.py --check`, so a proto change without new stubs fails.

Needs grpcio-tools at exactly GRPCIO_TOOLS_VERSION (`pip install
"./clients/python[dev]"`): another version writes other version stamps into
the stubs, which --check would report as a difference.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import importlib.resources
import sys
import tempfile
from pathlib import Path

GRPCIO_TOOLS_VERSION = "1.85.1"

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTO = "account/v1/account.proto"
OUT = HERE / "ecoms_accounts" / "_proto" / "account" / "v1"
PACKAGE = "ecoms_accounts._proto.account.v1"
GENERATED = ("account_pb2.py", "account_pb2.pyi", "account_pb2_grpc.py")


def package_relative(name: str, text: str) -> str:
    """protoc writes imports and module names as if `account` were a
    top-level package; inside ecoms_accounts it is not."""
    if name == "account_pb2_grpc.py":
        text = text.replace("from account.v1 import account_pb2 as", "from . import account_pb2 as")
    if name == "account_pb2.py":
        text = text.replace("'account.v1.account_pb2'", f"'{PACKAGE}.account_pb2'")
    return text


def generate() -> dict[str, str]:
    """The stubs the proto gives, by file name."""
    from grpc_tools import protoc

    # google/protobuf/*.proto (Timestamp, FieldMask) ship with grpcio-tools.
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as out:
        status = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                PROTO,
            ]
        )
        if status != 0:
            sys.exit(f"protoc failed on {PROTO_ROOT / PROTO} (status {status})")
        generated = Path(out) / "account" / "v1"
        return {
            name: package_relative(name, (generated / name).read_text(encoding="utf-8"))
            for name in GENERATED
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when the committed stubs differ from the proto's",
    )
    args = parser.parse_args()
    try:
        installed = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != GRPCIO_TOOLS_VERSION:
        print(
            f"generate.py needs grpcio-tools=={GRPCIO_TOOLS_VERSION} (found {installed}): "
            f'pip install "grpcio-tools=={GRPCIO_TOOLS_VERSION}"',
            file=sys.stderr,
        )
        return 2

    stubs = generate()
    stale = []
    for name, text in stubs.items():
        path = OUT / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale.append(name)
        if args.check:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"committed/{name}",
                f"from-proto/{name}",
                n=1,
            )
            sys.stderr.writelines(list(diff)[:40])
        else:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            f"\n{', '.join(stale)} differ from what {PROTO} gives: "
            "run `python clients/python/generate.py` and commit the result",
            file=sys.stderr,
        )
        return 1
    verb = "would change" if args.check else "regenerated"
    print(f"{verb}: {', '.join(stale)}" if stale else "stubs match the proto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
