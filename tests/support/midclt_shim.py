#!/usr/bin/python3
"""Stands in for TrueNAS's `midclt` in tests: `midclt call [-j] METHOD [ARG...]`
(each ARG one JSON value), talking JSON-RPC to the TrueNAS simulator as the real
one talks to the local middleware. Prints the result as JSON; on an error
prints the middleware's reason ("[EINVAL] attr: message" lines) on stderr and
exits 1, as midclt does.

    midclt_shim.py --url ws://127.0.0.1:PORT/api/v25.10.0 --key-file FILE call ...
"""
import asyncio
import json
import sys

import websockets


async def main(argv):
    url = argv[argv.index("--url") + 1]
    key = open(argv[argv.index("--key-file") + 1]).read().strip()
    rest = argv[argv.index("call") + 1:]
    job = False
    if rest and rest[0] == "-j":
        job = True
        rest = rest[1:]
    method, args = rest[0], [json.loads(a) for a in rest[1:]]
    async with websockets.connect(url) as ws:
        ids = iter(range(1, 1 << 30))

        async def call(m, p):
            i = next(ids)
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": m, "params": p}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == i:
                    if "error" in msg:
                        e = msg["error"]
                        reason = (e.get("data") or {}).get("reason") or e.get("message")
                        sys.stderr.write(reason.rstrip("\n") + "\n")
                        sys.exit(1)
                    return msg.get("result")

        r = await call("auth.login_ex", [{"mechanism": "API_KEY_PLAIN", "username": "root", "api_key": key}])
        if r.get("response_type") != "SUCCESS":
            sys.stderr.write("Failed to authenticate\n")
            sys.exit(1)
        result = await call(method, args)
        if job and isinstance(result, int):
            while True:
                jobs = await call("core.get_jobs", [[["id", "=", result]]])
                if jobs and jobs[0]["state"] in ("SUCCESS", "FAILED", "ABORTED"):
                    if jobs[0]["state"] != "SUCCESS":
                        sys.stderr.write("[EFAULT] %s\n" % jobs[0].get("error"))
                        sys.exit(1)
                    result = jobs[0]["result"]
                    break
                await asyncio.sleep(0.1)
        print(json.dumps(result))


asyncio.run(main(sys.argv))
