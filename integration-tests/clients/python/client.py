#!/usr/bin/env python3
"""A FastBreak client in Python, generated from proto/ like any other language's.

It generates its stubs from the repository's proto/ with grpcio-tools (into ./generated, made
fresh each run), then, against a running system's gateway:

  1. creates a user (a new email each run) and gets an access token,
  2. reads who the token belongs to, the portfolio and the latest decisions,

printing one line per step. It exits non-zero, saying which step failed, on any error.

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python client.py --gateway 127.0.0.1:50051
"""

import argparse
import importlib
import pathlib
import shutil
import sys
import uuid

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parents[2] / "proto"
GENERATED = HERE / "generated"


def generate_stubs():
    """Generates Python modules for every contract under proto/ into ./generated."""
    from grpc_tools import protoc
    import grpc_tools

    shutil.rmtree(GENERATED, ignore_errors=True)
    GENERATED.mkdir()
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO}", f"-I{well_known}",
         f"--python_out={GENERATED}", f"--grpc_python_out={GENERATED}", *files]
    )
    if code != 0:
        sys.exit(f"stub generation failed (protoc exit {code})")
    sys.path.insert(0, str(GENERATED))
    return len(files)


def stubs(name):
    """The messages and the stub module of fastbreak.<name>.v1."""
    messages = importlib.import_module(f"fastbreak.{name}.v1.{name}_pb2")
    services = importlib.import_module(f"fastbreak.{name}.v1.{name}_pb2_grpc")
    return messages, services


def step(label, call):
    import grpc

    try:
        return call()
    except grpc.RpcError as error:
        sys.exit(f"{label} failed: {error.code().name}: {error.details()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="127.0.0.1:50051", help="the gateway, HOST:PORT")
    args = parser.parse_args()

    count = generate_stubs()
    print(f"generated stubs for {count} proto files")
    import grpc

    user_pb, user_grpc = stubs("user")
    trading_pb, trading_grpc = stubs("trading")
    agents_pb, agents_grpc = stubs("agents")

    channel = grpc.insecure_channel(args.gateway)
    users = user_grpc.UserServiceStub(channel)
    email = f"python-{uuid.uuid4().hex[:12]}@example.com"
    password = uuid.uuid4().hex
    created = step("CreateUser", lambda: users.CreateUser(
        user_pb.CreateUserRequest(display_name="Python client", email=email, password=password), timeout=10))
    print(f"created user {created.user_id} ({email})")
    token = step("CreateAccessToken", lambda: users.CreateAccessToken(
        user_pb.CreateAccessTokenRequest(email=email, password=password, label="python client"), timeout=10))
    print("got an access token")

    auth = [("authorization", f"Bearer {token.secret}")]
    me = step("GetCurrentUser", lambda: users.GetCurrentUser(user_pb.GetCurrentUserRequest(), metadata=auth, timeout=10))
    if me.user_id != created.user_id:
        sys.exit(f"GetCurrentUser answered {me.user_id}, not {created.user_id}")
    print(f"the token belongs to {me.user_id}")
    portfolio = step("GetPortfolio", lambda: trading_grpc.TradingServiceStub(channel).GetPortfolio(
        trading_pb.GetPortfolioRequest(), metadata=auth, timeout=10))
    print(f"portfolio: {portfolio.holding_count} holdings worth {portfolio.market_value_cents} cents")
    decisions = step("ListDecisions", lambda: agents_grpc.AgentServiceStub(channel).ListDecisions(
        agents_pb.ListDecisionsRequest(page_size=5), metadata=auth, timeout=10))
    print(f"decisions: {len(decisions.decisions)}")
    print("ok")


if __name__ == "__main__":
    main()
