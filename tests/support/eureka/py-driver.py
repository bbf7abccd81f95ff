"""Drives py-eureka-client (0.13.3) for the Eureka double's tests
(tests/support/eureka_clients.rs). Run with the venv's python; argument 1 is a JSON
config:
  {"url": "http://127.0.0.1:P/eureka", "app": "py-svc", "id": "py-1", "port": 9090,
   "heartbeat_secs": 1, "lease_secs": 3}
Prints one JSON line per event on stdout:
  {"event":"registered","status":"UP"}  {"event":"heartbeat"}  {"event":"cancelled"}
  {"event":"fetched","kind":"full"|"delta","instances":[{"app","id","host","port","status"}...]}
  {"event":"lookup","app":"X","instances":[...]}   {"event":"status","status":"..."}
  {"event":"error","what":"...","message":"..."}   {"event":"started"}
  {"event":"stopped"} then exit
Commands on stdin, one a line: "lookup APP", "status STATUS" (the client's
status_update), "stop". End of stdin stops too.
"""

import json
import os
import sys
import threading

import py_eureka_client.eureka_client as ec

CONFIG = json.loads(sys.argv[1])
_out = threading.Lock()


def emit(event, **fields):
    with _out:
        sys.stdout.write(json.dumps(dict(event=event, **fields)) + "\n")
        sys.stdout.flush()


def view(instances):
    return [
        dict(app=i.app, id=i.instanceId, host=i.hostName,
             port=i.port.port if i.port else None, status=i.status)
        for i in instances
    ]


def everything(client):
    apps = client._EurekaClient__applications
    if apps is None:
        return []
    return [i for a in sorted(apps.applications, key=lambda a: a.name or "")
            for i in view(a.instances)]


# Success of each call the client makes: wrap the module functions it calls.
def wrap(name, after):
    original = getattr(ec, name)

    async def wrapped(*args, **kwargs):
        result = await original(*args, **kwargs)
        after(args, kwargs)
        return result
    setattr(ec, name, wrapped)


wrap("_register", lambda a, k: emit("registered", status=a[1]["status"]))
wrap("send_heartbeat", lambda a, k: emit("heartbeat"))
wrap("cancel", lambda a, k: emit("cancelled"))


# Fetches: after the full pull and after each delta round, what the client holds.
def wrap_fetch(attr, kind):
    original = getattr(ec.EurekaClient, attr)

    async def wrapped(self):
        await original(self)
        emit("fetched", kind=kind, instances=everything(self))
    setattr(ec.EurekaClient, attr, wrapped)


wrap_fetch("_EurekaClient__pull_full_registry", "full")
wrap_fetch("_EurekaClient__fetch_delta", "delta")


def on_error(what, exception):
    emit("error", what=what, message=repr(exception))


client = ec.init(
    eureka_server=CONFIG["url"] + "/",
    app_name=CONFIG["app"],
    instance_id=CONFIG["id"],
    instance_host="127.0.0.1",
    instance_ip="127.0.0.1",
    instance_port=CONFIG["port"],
    renewal_interval_in_secs=CONFIG.get("heartbeat_secs", 1),
    duration_in_secs=CONFIG.get("lease_secs", 3),
    data_center_name="MyOwn",
    on_error=on_error,
)
emit("started")


def stop():
    ec.stop()
    emit("stopped")
    # The heartbeat thread would register again at its next turn: leave at once.
    os._exit(0)


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "lookup" and len(words) == 2:
        app = client.applications.get_application(words[1].upper())
        emit("lookup", app=words[1], instances=view(app.instances) if app else [])
    elif words[0] == "status" and len(words) == 2:
        ec.get_event_loop().run_until_complete(client.status_update(words[1]))
        emit("status", status=words[1])
    elif words[0] == "stop":
        stop()
    else:
        emit("error", what="command", message="unknown command " + line.strip())
stop()
