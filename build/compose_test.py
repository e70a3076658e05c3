#!/usr/bin/env python3
"""The compose tests, run by build/compose-test.sh: docker-compose.yml from the tree, driven
from outside through the published gateway as a client would.

1. `compose up`: every service healthy (the time is printed).
2. A client registers, gets a token and reads its portfolio.
3. One backend (strategy) killed: its calls fail UNAVAILABLE naming it, GetSystemHealth shows it
   down, every other service keeps answering; started again, everything recovers by itself.
4. Two replicas of risk, one killed while a client keeps calling: no call fails beyond the one
   in flight.
5. The trace collector receives one request's spans from the gateway and at least two backends,
   as separate services, in one trace.

Everything is torn down afterwards, volumes included. Exits non-zero on the first failure.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "integration-tests/clients/python"))
import client  # noqa: E402  (the Python client: stub generation)

COMPOSE = shlex.split(os.environ.get("COMPOSE", "docker-compose"))
GATEWAY = "127.0.0.1:50051"
SERVICES = ["postgres", "user", "strategy", "notification", "marketplace", "scouting", "risk", "risk-b",
            "trading", "agents", "gateway", "web"]


def compose(*args, check=True, capture=False):
    return subprocess.run([*COMPOSE, *args], cwd=ROOT, check=check, text=True,
                          stdout=subprocess.PIPE if capture else None)


def env_file():
    values = {}
    for line in (ROOT / ".env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def health(service):
    container = compose("ps", "-q", service, capture=True).stdout.strip()
    if not container:
        return "missing"
    out = subprocess.run(["docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}"
                          "{{.State.Status}}{{end}}", container], text=True, stdout=subprocess.PIPE)
    return out.stdout.strip()


def wait(what, check, within=120):
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {within} s waiting until {what}")
        time.sleep(0.5)


def main():
    client.generate_stubs()
    import grpc

    user_pb, user_grpc = client.stubs("user")
    trading_pb, trading_grpc = client.stubs("trading")
    risk_pb, risk_grpc = client.stubs("risk")
    strategy_pb, strategy_grpc = client.stubs("strategy")
    gateway_pb, gateway_grpc = client.stubs("gateway")
    operator = [("x-fastbreak-operator-token", env_file()["FASTBREAK_OPERATOR_TOKEN"])]

    started = time.monotonic()
    compose("up", "-d", "--quiet-pull")
    wait("every service is healthy", lambda: all(health(s) == "healthy" for s in SERVICES))
    print(f"compose up: every service healthy in {time.monotonic() - started:.1f} s")

    channel = grpc.insecure_channel(GATEWAY)
    users = user_grpc.UserServiceStub(channel)
    email, password = f"compose-{uuid.uuid4().hex[:12]}@example.com", uuid.uuid4().hex
    users.CreateUser(user_pb.CreateUserRequest(display_name="Compose", email=email, password=password), timeout=10)
    token = users.CreateAccessToken(user_pb.CreateAccessTokenRequest(email=email, password=password), timeout=10)
    auth = [("authorization", f"Bearer {token.secret}")]
    trading = trading_grpc.TradingServiceStub(channel)
    portfolio = trading.GetPortfolio(trading_pb.GetPortfolioRequest(), metadata=auth, timeout=10)
    print(f"a client registered, got a token and read its portfolio ({portfolio.holding_count} holdings)")

    # The dashboard, published on 50060, answers its sign-in page.
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:50060/sign-in", timeout=10) as page:
        body = page.read().decode()
        assert page.status == 200 and "<h1>Sign in</h1>" in body, body[:500]
    print("the dashboard answers its sign-in page on 50060")

    system = gateway_grpc.SystemHealthServiceStub(channel)

    def service_status(name):
        answer = system.GetSystemHealth(gateway_pb.GetSystemHealthRequest(), metadata=operator, timeout=5)
        return next(s.status for s in answer.services if s.service == name)

    strategies = strategy_grpc.StrategyServiceStub(channel)
    risk = risk_grpc.RiskServiceStub(channel)
    others = [
        ("user", lambda: users.GetCurrentUser(user_pb.GetCurrentUserRequest(), metadata=auth, timeout=5)),
        ("trading", lambda: trading.GetPortfolio(trading_pb.GetPortfolioRequest(), metadata=auth, timeout=5)),
        ("risk", lambda: risk.GetBudgetLimits(risk_pb.GetBudgetLimitsRequest(), metadata=auth, timeout=5)),
    ]

    # One backend killed: its calls fail UNAVAILABLE naming it; the rest answer.
    compose("kill", "strategy")
    try:
        strategies.ListStrategies(strategy_pb.ListStrategiesRequest(), metadata=auth, timeout=5)
        sys.exit("ListStrategies answered with strategy killed")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAVAILABLE or "strategy" not in error.details():
            sys.exit(f"strategy killed: expected UNAVAILABLE naming it, got {error.code()}: {error.details()}")
    wait("GetSystemHealth shows strategy down",
         lambda: service_status("strategy") != gateway_pb.SERVING, within=30)
    for name, call in others:
        call()
    print("strategy killed: its calls fail UNAVAILABLE naming it; health shows it down; user, trading, risk answer")
    compose("start", "strategy")
    wait("strategy is healthy again", lambda: health("strategy") == "healthy")
    wait("strategy answers through the gateway again", lambda: _answers(
        lambda: strategies.ListStrategies(strategy_pb.ListStrategiesRequest(), metadata=auth, timeout=5)), within=30)
    wait("GetSystemHealth shows strategy back", lambda: service_status("strategy") == gateway_pb.SERVING, within=30)
    print("strategy started again: everything recovered by itself")

    # Two replicas of risk; one killed while a client keeps calling.
    calls, failures, stop = [0], [], threading.Event()

    def keep_calling():
        while not stop.is_set():
            try:
                risk.GetBudgetLimits(risk_pb.GetBudgetLimitsRequest(), metadata=auth, timeout=5)
            except grpc.RpcError as error:
                failures.append(f"{error.code()}: {error.details()}")
            calls[0] += 1
            time.sleep(0.02)  # within the per-user rate limit

    caller = threading.Thread(target=keep_calling)
    caller.start()
    time.sleep(2)
    compose("kill", "risk-b")
    time.sleep(5)
    stop.set()
    caller.join()
    if len(failures) > 1:
        sys.exit(f"a replica killed: {len(failures)} of {calls[0]} calls failed (at most the one in flight may): "
                 f"{failures[:5]}")
    print(f"risk-b killed while a client called risk: {calls[0]} calls, {len(failures)} failed")
    compose("start", "risk-b")
    wait("risk-b is healthy again", lambda: health("risk-b") == "healthy")

    # One request's spans: the gateway and at least two backends, as separate services, in one trace.
    trace_id = uuid.uuid4().hex
    traced = auth + [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01")]
    trading.GetPortfolio(trading_pb.GetPortfolioRequest(), metadata=traced, timeout=10)

    def services_in_trace():
        with urllib.request.urlopen(f"http://127.0.0.1:16686/api/traces/{trace_id}", timeout=5) as answer:
            data = json.load(answer)["data"]
        if not data:
            return None
        names = {p["serviceName"] for p in data[0]["processes"].values()}
        return names if "fastbreak-gateway" in names and len(names) >= 3 else None

    names = wait("the trace reaches the collector", services_in_trace, within=30)
    print(f"one trace from {len(names)} services: {sorted(names)}")


def _answers(call):
    import grpc

    try:
        call()
        return True
    except grpc.RpcError:
        return False


if __name__ == "__main__":
    try:
        main()
        print("compose tests passed")
    finally:
        compose("down", "-v", "--remove-orphans", check=False)
