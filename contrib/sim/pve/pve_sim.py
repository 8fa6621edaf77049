#!/usr/bin/python3
"""Proxmox VE API simulator for vmlift's tests and lab.

An independent implementation of the part of https://HOST:8006/api2/json that
vmlift uses, over HTTPS with a self-signed certificate. Every call is checked
against the official parameter schema (pve-docs apidata subset): unknown or
invalid parameters get the real 400 with an `errors` object. Auth is by API
token or ticket (cookie + CSRFPreventionToken on writes; failed logins and
bad credentials answer 401 after a delay, as Proxmox does). Privileges are
checked from the schema's `permissions`. Tasks get real UPIDs and run for a
while. Locks, HA and the guest agent are honoured; a VM's hookscript runs on
this host at pre-start, post-start, pre-stop and post-stop (a failing
pre-start aborts the start). Volumes map to real files or block devices, so a
migration can read them. POST /_sim/inject adds a one-shot error. A VM whose
"agent" names a "root" folder has a live guest agent: agent/exec runs the
command chrooted into that folder, in the background (exec-status polls it),
so the folder acts as the running guest's root filesystem.

    pve_sim.py --cluster cluster.json --schema pve-api-schema-subset.json \
               --state DIR [--listen 127.0.0.1:0] [--auth-delay 3]

The cluster file:
  {"nodes": ["pve1"],
   "users": {"root@pam": {"password": "...", "privs": ["*"]}},
   "tokens": {"root@pam!vmlift": {"secret": "...", "privs": ["VM.Audit", ...]}},
   "storage": [{"storage": "local", "type": "dir", "path": "/var/lib/vz",
                "content": "images,iso,snippets"}, ...],
   "vms": [{"vmid": 101, "node": "pve1", "config": "101.conf", "status": "running",
            "ha": null, "agent": {"interfaces": [...], "osinfo": {...},
                                  "root": "guest-root-folder (optional)"},
            "volumes": {"local-lvm:vm-101-disk-0": "/path/to/file"},
            "shutdown_seconds": 1}]}
Paths in it are relative to the cluster file. The state directory receives
cert.pem, key.pem, `fingerprint` (SHA-256, uppercase colon hex), `port`, and
the VMs' configs as the simulator changes them.
"""
import argparse
import hashlib
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/api2/json"
TICKET_LIFETIME = 7200

# Not in the schema subset but used by vmlift; shapes from the PVE API viewer.
EXTRA_SCHEMA = {
    "/nodes/{node}/qemu/{vmid}/agent/file-write": {
        "POST": {
            "parameters": {"additionalProperties": 0, "properties": {
                "node": {"type": "string", "format": "pve-node"},
                "vmid": {"type": "integer", "minimum": 100, "maximum": 999999999},
                "file": {"type": "string"},
                "content": {"type": "string", "maxLength": 61440},
                "encode": {"type": "boolean", "optional": 1, "default": 1}}},
            "permissions": {"check": ["perm", "/vms/{vmid}", ["VM.GuestAgent.FileWrite"]]},
            "protected": 1}},
}


class ApiError(Exception):
    def __init__(self, status, message, errors=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


# ---------------------------------------------------------------- config files

def parse_config(text):
    """qemu-server .conf → (current, pending, pending_delete, snapshots, description)."""
    current, pending, snaps, descr = {}, {}, {}, []
    pending_delete = []
    target = current
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if target is current:
                descr.append(urllib.parse.unquote(line[1:]))
            continue
        m = re.match(r"^\[([^\]]+)\]\s*$", line)
        if m:
            name = m.group(1)
            if name == "PENDING":
                target = pending
            elif name == "special:cloudinit":
                target = {}
            else:
                target = snaps.setdefault(name, {})
            continue
        m = re.match(r"^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$", line)
        if not m:
            continue
        if target is pending and m.group(1) == "delete":
            pending_delete += [k for k in m.group(2).split(",") if k]
            continue
        target[m.group(1)] = m.group(2)
    if descr:
        current["description"] = "\n".join(descr)
    return current, pending, pending_delete, snaps


def write_config(vm):
    lines = []
    for d in vm["config"].get("description", "").split("\n") if vm["config"].get("description") else []:
        lines.append("#" + urllib.parse.quote(d, safe=" :/,.=-_()[]@!'"))
    for k in sorted(vm["config"]):
        if k != "description":
            lines.append("%s: %s" % (k, vm["config"][k]))
    if vm["pending"] or vm["pending_delete"]:
        lines.append("")
        lines.append("[PENDING]")
        if vm["pending_delete"]:
            lines.append("delete: " + ",".join(vm["pending_delete"]))
        for k in sorted(vm["pending"]):
            lines.append("%s: %s" % (k, vm["pending"][k]))
    for name in sorted(vm["snapshots"]):
        lines.append("")
        lines.append("[%s]" % name)
        for k in sorted(vm["snapshots"][name]):
            lines.append("%s: %s" % (k, vm["snapshots"][name][k]))
    text = "\n".join(lines) + "\n"
    vm["digest"] = hashlib.sha1(text.encode()).hexdigest()
    with open(vm["config_out"], "w") as f:
        f.write(text)


# ---------------------------------------------------------------- schema checks

def schema_match(schema, path):
    """Finds the schema entry for a concrete path; returns (template, info, params)."""
    for template, entry in schema.items():
        names = re.findall(r"\{(\w+)\}", template)
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + "$"
        m = re.match(pattern, path)
        if m:
            params = {n: urllib.parse.unquote(v) for n, v in zip(names, m.groups())}
            return template, entry, params
    return None, None, None


def property_for(props, name):
    if name in props:
        return props[name]
    m = re.match(r"^([a-z_\-]+?)(\d+)$", name)
    if m and (m.group(1) + "[n]") in props:
        return props[m.group(1) + "[n]"]
    return None


def check_value(name, spec, value):
    t = spec.get("type", "string")
    if t == "array":
        values = value if isinstance(value, list) else [value]
        for v in values:
            err = check_value(name, spec.get("items", {"type": "string"}), v)
            if err:
                return err
        return None
    if isinstance(value, list):
        if len(value) != 1:
            return "property is not an array"
        value = value[0]
    if t == "boolean":
        if str(value) not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            return "type check ('boolean') failed - got '%s'" % value
    elif t == "integer":
        if not re.match(r"^-?\d+$", str(value)):
            return "type check ('integer') failed - got '%s'" % value
        v = int(value)
        if "minimum" in spec and v < spec["minimum"]:
            return "value must have a minimum value of %s" % spec["minimum"]
        if "maximum" in spec and v > spec["maximum"]:
            return "value must have a maximum value of %s" % spec["maximum"]
    elif t == "number":
        try:
            float(value)
        except ValueError:
            return "type check ('number') failed - got '%s'" % value
    else:
        s = str(value)
        if "maxLength" in spec and len(s) > spec["maxLength"]:
            return "value may only be %s characters long" % spec["maxLength"]
        if "enum" in spec and s not in spec["enum"]:
            return "value '%s' does not have a value in the enumeration '%s'" % (
                s, ", ".join(spec["enum"]))
        if "pattern" in spec and not re.match("^(?:" + spec["pattern"] + ")$", s):
            return "value does not match the regex pattern"
        fmt = spec.get("format")
        if fmt == "pve-node" and not re.match(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$", s):
            return "value does not look like a valid node name"
        if fmt == "pve-vmid" and not re.match(r"^\d+$", s):
            return "value does not look like a valid VM ID"
        if fmt == "pve-storage-id" and not re.match(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", s, re.I):
            return "storage ID '%s' contains illegal characters" % s
        if fmt == "pve-configid" and not re.match(r"^[a-z][a-z0-9_\-]+$", s, re.I):
            return "invalid configuration ID '%s'" % s
        if fmt == "mac-addr" and not re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", s, re.I):
            return "value does not look like a valid MAC address"
    return None


def validate(info, params):
    spec = info.get("parameters", {})
    props = spec.get("properties", {})
    errors = {}
    for name, value in params.items():
        p = property_for(props, name)
        if p is None:
            if not spec.get("additionalProperties"):
                errors[name] = "property is not defined in schema and the schema does not allow additional properties"
            continue
        err = check_value(name, p, value)
        if err:
            errors[name] = err
    for name, p in props.items():
        if "[n]" in name or p.get("optional") or name in params:
            continue
        errors[name] = "property is missing and it is not optional"
    if errors:
        raise ApiError(400, "Parameter verification failed.", errors)


def scalar(params, name, default=None):
    v = params.get(name, default)
    if isinstance(v, list):
        return v[0] if v else default
    return v


def truthy(v):
    return str(v) in ("1", "true", "yes", "on")


# ---------------------------------------------------------------- the cluster

class Cluster:
    def __init__(self, cluster_file, state_dir, auth_delay):
        base = os.path.dirname(os.path.abspath(cluster_file))
        with open(cluster_file) as f:
            c = json.load(f)
        self.lock = threading.RLock()
        self.nodes = c.get("nodes", ["pve"])
        self.users = c.get("users", {})
        self.tokens = c.get("tokens", {})
        self.storage = c.get("storage", [])
        self.auth_delay = auth_delay
        self.tickets = {}   # ticket -> (user, csrf, created)
        self.tasks = {}     # upid -> task dict
        self.injections = []
        self.vms = {}
        for v in c.get("vms", []):
            path = os.path.join(base, v["config"])
            with open(path) as f:
                current, pending, pdel, snaps = parse_config(f.read())
            vm = {"vmid": int(v["vmid"]), "node": v.get("node", self.nodes[0]),
                  "config": current, "pending": pending, "pending_delete": pdel,
                  "snapshots": snaps, "status": v.get("status", "stopped"),
                  "ha": v.get("ha"), "agent": v.get("agent"),
                  "guest_root": (os.path.join(base, v["agent"]["root"])
                                 if (v.get("agent") or {}).get("root") else None),
                  "volumes": {k: os.path.join(base, p) for k, p in v.get("volumes", {}).items()},
                  "shutdown_seconds": float(v.get("shutdown_seconds", 1)),
                  "ignore_acpi": bool(v.get("ignore_acpi", False)),
                  "config_out": os.path.join(state_dir, "%d.conf" % int(v["vmid"]))}
            write_config(vm)
            self.vms[vm["vmid"]] = vm
        self.exec_results = {}
        self.files_written = {}

    # ---- auth
    def authenticate(self, handler, method):
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("PVEAPIToken="):
            m = re.match(r"^PVEAPIToken=([^!]+![^=]+)[=:](.+)$", auth)
            tok = self.tokens.get(m.group(1)) if m else None
            if not tok or tok.get("secret") != m.group(2):
                time.sleep(self.auth_delay)
                raise ApiError(401, "authentication failure")
            user = m.group(1).split("!")[0]
            privs = set(tok.get("privs", []))
            if tok.get("privsep", 1) == 0:
                privs = set(self.users.get(user, {}).get("privs", []))
            return m.group(1), privs, False
        cookie = handler.headers.get("Cookie", "")
        m = re.search(r"PVEAuthCookie=([^;]+)", cookie)
        if m:
            ticket = urllib.parse.unquote(m.group(1))
            t = self.tickets.get(ticket)
            if not t or time.time() - t[2] > TICKET_LIFETIME:
                time.sleep(self.auth_delay)
                raise ApiError(401, "authentication failure")
            if method != "GET" and handler.headers.get("CSRFPreventionToken") != t[1]:
                raise ApiError(401, "Permission denied - invalid csrf token")
            return t[0], set(self.users.get(t[0], {}).get("privs", [])), True
        raise ApiError(401, "No ticket")

    def login(self, params):
        user = scalar(params, "username", "")
        password = scalar(params, "password", "")
        if "@" not in user:
            user += "@pam"
        u = self.users.get(user)
        ok = u is not None and (u.get("password") == password or
                                (password in self.tickets and self.tickets[password][0] == user))
        if not ok:
            time.sleep(self.auth_delay)
            raise ApiError(401, "authentication failure")
        ticket = "PVE:%s:%08X::%s" % (user, int(time.time()), os.urandom(32).hex())
        csrf = "%08X:%s" % (int(time.time()), os.urandom(16).hex())
        self.tickets[ticket] = (user, csrf, time.time())
        return {"username": user, "ticket": ticket, "CSRFPreventionToken": csrf,
                "cap": {}, "clustername": "vmlift-sim"}

    @staticmethod
    def check_perm(info, params, privs, userid):
        perm = info.get("permissions", {})
        check = perm.get("check")
        if not check or check[0] != "perm" or "*" in privs:
            return
        path = re.sub(r"\{(\w+)\}", lambda m: str(scalar(params, m.group(1), "")), check[1])
        needed = check[2]
        anyof = len(check) > 3 and "any" in check[3:]
        have = [p for p in needed if p in privs]
        if (anyof and not have) or (not anyof and len(have) != len(needed)):
            raise ApiError(403, "Permission check failed (%s, %s)" % (path, "|".join(needed)))

    # ---- helpers
    def vm(self, params):
        node = scalar(params, "node")
        vmid = int(scalar(params, "vmid"))
        vm = self.vms.get(vmid)
        if vm is None or vm["node"] != node:
            raise ApiError(500, "Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist" % (node, vmid))
        return vm

    def storage_def(self, sid):
        for s in self.storage:
            if s["storage"] == sid:
                return s
        return None

    def volume_path(self, volid):
        sid, _, volname = volid.partition(":")
        for vm in self.vms.values():
            if volid in vm["volumes"]:
                return vm["volumes"][volid]
        s = self.storage_def(sid)
        if s and s.get("type") == "dir":
            sub = "snippets" if volname.startswith("snippets/") else "images"
            name = volname[len("snippets/"):] if sub == "snippets" else volname
            return os.path.join(s["path"], sub, name)
        return None

    def new_task(self, node, ttype, tid, user, work):
        now = int(time.time())
        upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, os.getpid(), now & 0xFFFFFFFF, now, ttype, tid, user)
        task = {"upid": upid, "node": node, "type": ttype, "id": tid, "user": user,
                "starttime": now, "status": "running", "exitstatus": None, "log": []}
        self.tasks[upid] = task

        def run():
            try:
                work(task)
                task["exitstatus"] = "OK"
            except Exception as e:  # the task's error, as PVE writes it
                task["log"].append("TASK ERROR: %s" % e)
                task["exitstatus"] = str(e)
            task["status"] = "stopped"
        threading.Thread(target=run, daemon=True).start()
        return upid

    def hook(self, vm, phase, task):
        script = vm["config"].get("hookscript")
        if not script:
            return
        path = self.volume_path(script)
        if not path or not os.path.exists(path):
            raise RuntimeError("hookscript '%s' does not exist" % script)
        task["log"].append("executing hookscript for phase %s" % phase)
        r = subprocess.run([path, str(vm["vmid"]), phase], capture_output=True, text=True)
        task["log"] += (r.stdout + r.stderr).splitlines()
        if r.returncode != 0 and phase == "pre-start":
            raise RuntimeError("hookscript error for %d on pre-start: command '%s %d pre-start' failed: exit code %d"
                               % (vm["vmid"], path, vm["vmid"], r.returncode))

    def check_lock(self, vm, params):
        lock = vm["config"].get("lock")
        if lock and not truthy(scalar(params, "skiplock", "0")):
            raise ApiError(500, "VM is locked (%s)" % lock)


# ---------------------------------------------------------------- handlers

def handle(cluster, method, template, params, user, is_ticket):
    c = cluster
    if template == "/version":
        return {"version": "8.4.1", "release": "8.4", "repoid": "sim"}
    if template == "/nodes":
        return [{"node": n, "status": "online", "type": "node"} for n in c.nodes]
    if template == "/cluster/resources":
        out = []
        t = scalar(params, "type")
        if t in (None, "vm"):
            for vm in c.vms.values():
                r = {"id": "qemu/%d" % vm["vmid"], "type": "qemu", "vmid": vm["vmid"],
                     "node": vm["node"], "name": vm["config"].get("name", "VM%d" % vm["vmid"]),
                     "status": vm["status"], "template": int(vm["config"].get("template", 0))}
                if vm["config"].get("lock"):
                    r["lock"] = vm["config"]["lock"]
                if vm["ha"]:
                    r["hastate"] = vm["ha"]
                out.append(r)
        if t in (None, "node"):
            out += [{"id": "node/" + n, "type": "node", "node": n, "status": "online"} for n in c.nodes]
        if t in (None, "storage"):
            out += [{"id": "storage/%s/%s" % (n, s["storage"]), "type": "storage", "node": n,
                     "storage": s["storage"], "status": "available"} for n in c.nodes for s in c.storage]
        return out
    if template == "/storage":
        return [dict(s, digest="sim") for s in c.storage]
    if template == "/storage/{storage}":
        s = c.storage_def(scalar(params, "storage"))
        if not s:
            raise ApiError(500, "storage '%s' does not exist" % scalar(params, "storage"))
        return s
    if template == "/nodes/{node}/storage/{storage}/content/{volume}":
        volid = scalar(params, "volume")
        if ":" not in volid:
            volid = scalar(params, "storage") + ":" + volid
        path = c.volume_path(volid)
        if not path or not os.path.exists(path):
            raise ApiError(500, "volume '%s' does not exist" % volid)
        st = os.stat(path)
        size = st.st_size
        if not os.path.isfile(path):
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
        fmt = "qcow2" if path.endswith(".qcow2") else "raw"
        return {"volid": volid, "format": fmt, "size": size, "used": st.st_blocks * 512,
                "path": path, "ctime": int(st.st_ctime)}
    if template == "/nodes/{node}/tasks/{upid}/status":
        t = c.tasks.get(scalar(params, "upid"))
        if not t:
            raise ApiError(500, "no such task")
        r = {"upid": t["upid"], "node": t["node"], "type": t["type"], "id": t["id"], "user": t["user"],
             "pid": os.getpid(), "pstart": t["starttime"], "starttime": t["starttime"], "status": t["status"]}
        if t["status"] == "stopped":
            r["exitstatus"] = t["exitstatus"]
        return r
    if template == "/nodes/{node}/tasks/{upid}/log":
        t = c.tasks.get(scalar(params, "upid"))
        if not t:
            raise ApiError(500, "no such task")
        return [{"n": i + 1, "t": line} for i, line in enumerate(t["log"])]

    vm = c.vm(params) if "{vmid}" in template else None
    base = "/nodes/{node}/qemu/{vmid}"
    if template == base + "/config" and method == "GET":
        cfg = dict(vm["config"])
        if not truthy(scalar(params, "current", "0")):
            cfg.update(vm["pending"])
            for k in vm["pending_delete"]:
                cfg.pop(k, None)
        cfg["digest"] = vm["digest"]
        return cfg
    if template == base + "/config" and method in ("PUT", "POST"):
        digest = scalar(params, "digest")
        if digest and digest != vm["digest"]:
            raise ApiError(500, "detected modified configuration - file changed by other user? Try again.")
        if "hookscript" in params and user != "root@pam":
            raise ApiError(403, "Permission check failed (only root can set 'hookscript' config)")
        c.check_lock(vm, params)
        for k in [d for d in scalar(params, "delete", "").split(",") if d]:
            vm["config"].pop(k, None)
        for k, v in params.items():
            if k in ("node", "vmid", "digest", "delete", "skiplock", "force", "revert"):
                continue
            vm["config"][k] = scalar(params, k)
        write_config(vm)
        if method == "POST":
            return c.new_task(vm["node"], "qmconfig", str(vm["vmid"]), user, lambda t: None)
        return None
    if template == base + "/pending":
        out = []
        keys = set(vm["config"]) | set(vm["pending"]) | set(vm["pending_delete"])
        for k in sorted(keys):
            e = {"key": k}
            if k in vm["config"]:
                e["value"] = vm["config"][k]
            if k in vm["pending"]:
                e["pending"] = vm["pending"][k]
            if k in vm["pending_delete"]:
                e["delete"] = 1
            out.append(e)
        return out
    if template == base + "/status/current":
        r = {"vmid": vm["vmid"], "name": vm["config"].get("name", ""), "status":
             "running" if vm["status"] in ("running", "paused") else "stopped",
             "qmpstatus": vm["status"], "ha": {"managed": 1, "state": vm["ha"]} if vm["ha"] else {"managed": 0},
             "cpus": int(vm["config"].get("cores", 1)) * int(vm["config"].get("sockets", 1)),
             "maxmem": int(str(vm["config"].get("memory", "512")).split("=")[-1]) * 1048576}
        if vm["config"].get("lock"):
            r["lock"] = vm["config"]["lock"]
        if re.match(r"^(enabled=)?1", vm["config"].get("agent", "0")):
            r["agent"] = 1
        return r
    if template == base + "/status/start":
        c.check_lock(vm, params)
        if vm["status"] == "running":
            raise ApiError(500, "VM %d already running" % vm["vmid"])

        def work(task):
            c.hook(vm, "pre-start", task)
            time.sleep(0.3)
            vm["status"] = "running"
            c.hook(vm, "post-start", task)
        return c.new_task(vm["node"], "qmstart", str(vm["vmid"]), user, work)
    if template in (base + "/status/stop", base + "/status/shutdown"):
        c.check_lock(vm, params)
        shutdown = template.endswith("shutdown")
        timeout = int(scalar(params, "timeout", "60"))
        force = truthy(scalar(params, "forceStop", "0"))

        def work(task):
            if vm["status"] != "running":
                task["log"].append("VM %d not running" % vm["vmid"])
                return
            c.hook(vm, "pre-stop", task)
            if shutdown:
                if vm["ignore_acpi"] or vm["shutdown_seconds"] > timeout:
                    time.sleep(min(timeout, vm["shutdown_seconds"]))
                    if not force:
                        raise RuntimeError("VM quit/powerdown failed")
                    task["log"].append("VM still running - terminating now with SIGTERM")
                else:
                    time.sleep(vm["shutdown_seconds"])
            vm["status"] = "stopped"
            c.hook(vm, "post-stop", task)
        return c.new_task(vm["node"], "qmshutdown" if shutdown else "qmstop", str(vm["vmid"]), user, work)
    if template == base + "/snapshot" and method == "GET":
        out = [{"name": n, "description": s.get("description", ""), "snaptime": int(s.get("snaptime", 0)),
                "parent": s.get("parent")} for n, s in vm["snapshots"].items()]
        return out + [{"name": "current", "description": "You are here!", "running": int(vm["status"] == "running")}]
    if template == base + "/snapshot" and method == "POST":
        name = scalar(params, "snapname")
        if name in vm["snapshots"]:
            raise ApiError(500, "snapshot name '%s' already used" % name)
        c.check_lock(vm, params)

        def work(task):
            snap = {k: v for k, v in vm["config"].items() if k not in ("parent", "description")}
            snap["snaptime"] = str(int(time.time()))
            if scalar(params, "description"):
                snap["description"] = scalar(params, "description")
            if vm["config"].get("parent"):
                snap["parent"] = vm["config"]["parent"]
            vm["snapshots"][name] = snap
            vm["config"]["parent"] = name
            write_config(vm)
        return c.new_task(vm["node"], "qmsnapshot", str(vm["vmid"]), user, work)
    if template == base + "/snapshot/{snapname}" and method == "DELETE":
        name = scalar(params, "snapname")
        if name not in vm["snapshots"]:
            raise ApiError(500, "snapshot '%s' does not exist" % name)

        def work(task):
            parent = vm["snapshots"][name].get("parent")
            del vm["snapshots"][name]
            for s in vm["snapshots"].values():
                if s.get("parent") == name:
                    s["parent"] = parent
            if vm["config"].get("parent") == name:
                if parent:
                    vm["config"]["parent"] = parent
                else:
                    vm["config"].pop("parent", None)
            write_config(vm)
        return c.new_task(vm["node"], "qmdelsnapshot", str(vm["vmid"]), user, work)
    if "/agent/" in template:
        agent_on = re.match(r"^(enabled=)?1", vm["config"].get("agent", "0"))
        if not agent_on:
            raise ApiError(500, "No QEMU guest agent configured")
        if vm["status"] != "running" or not vm["agent"]:
            raise ApiError(500, "QEMU guest agent is not running")
        cmd = template.rsplit("/", 1)[1]
        if cmd == "network-get-interfaces":
            return {"result": vm["agent"].get("interfaces", [])}
        if cmd == "get-osinfo":
            return {"result": vm["agent"].get("osinfo", {})}
        if cmd == "ping":
            return {"result": {}}
        if cmd == "exec":
            argv = params.get("command", [])
            argv = argv if isinstance(argv, list) else [argv]
            with c.lock:
                pid = len(c.exec_results) + 1000
                c.exec_results[pid] = {"exited": 0}
            if vm["guest_root"]:
                run_in_guest(vm["guest_root"], argv, scalar(params, "input-data") or "",
                             c.exec_results[pid])
            else:
                # Canned answers only; anything else fails as qemu-guest-agent
                # does when the program is not in the guest.
                canned = vm["agent"].get("exec", {}).get(" ".join(argv))
                if canned is None:
                    c.exec_results.pop(pid)
                    raise ApiError(500, "Agent error: Failed to execute child process "
                                        "\u201c%s\u201d (No such file or directory)" % argv[0])
                c.exec_results[pid].update(canned, exited=1, argv=argv,
                                           input=scalar(params, "input-data"))
            return {"pid": pid}
        if cmd == "exec-status":
            r = c.exec_results.get(int(scalar(params, "pid")))
            if r is None:
                raise ApiError(500, "Agent error: Invalid parameter 'pid'")
            if not r.get("exited"):
                return {"exited": 0}
            out = {"exited": 1, "exitcode": r.get("exitcode", 0),
                   "out-data": r.get("out-data", ""), "err-data": r.get("err-data", "")}
            if r.get("out-truncated"):
                out["out-truncated"] = 1
            return out
        if cmd == "file-write":
            c.files_written[scalar(params, "file")] = scalar(params, "content")
            return None
    raise ApiError(501, "Method '%s %s' not implemented" % (method, template))


# qemu-guest-agent keeps at most 16 MiB of a command's output.
GUEST_EXEC_MAX_OUTPUT = 16 << 20


def run_in_guest(root, argv, input_data, entry):
    """A running guest's agent: `argv` runs chrooted into the guest's root
    folder, in the background, as guest-exec does; exec-status polls it."""
    def work():
        try:
            p = subprocess.run(["chroot", root] + argv, input=input_data.encode(),
                               capture_output=True, timeout=120)
            out = p.stdout
            if len(out) > GUEST_EXEC_MAX_OUTPUT:
                out = out[:GUEST_EXEC_MAX_OUTPUT]
                entry["out-truncated"] = 1
            entry.update({"exitcode": p.returncode,
                          "out-data": out.decode("utf-8", "replace"),
                          "err-data": p.stderr.decode("utf-8", "replace")})
        except (OSError, subprocess.TimeoutExpired) as e:
            entry.update({"exitcode": 127, "err-data": str(e)})
        entry["exited"] = 1
    threading.Thread(target=work, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("pve-sim: " + (fmt % args) + "\n")

    def reply(self, status, reason, body):
        data = json.dumps(body).encode()
        # The status line is latin-1 on the wire (http.server); the body keeps
        # the message whole.
        reason = reason.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        c = self.server.cluster
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if url.path == "/_sim/inject" and method == "POST":
                with c.lock:
                    c.injections.append(json.loads(raw))
                return self.reply(200, "OK", {"data": None})
            if url.path == "/_sim/state" and method == "GET":
                with c.lock:
                    return self.reply(200, "OK", {"data": {
                        "vms": {str(k): {"status": v["status"], "config": v["config"]} for k, v in c.vms.items()},
                        "files_written": c.files_written,
                        "exec": {str(k): v for k, v in c.exec_results.items()}}})
            if not url.path.startswith(API):
                raise ApiError(404, "Not Found")
            path = url.path[len(API):] or "/"
            with c.lock:
                for inj in list(c.injections):
                    if inj.get("method", method) == method and re.search(inj["path"], path):
                        inj["count"] = inj.get("count", 1) - 1
                        if inj["count"] <= 0:
                            c.injections.remove(inj)
                        if inj.get("drop"):
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        body = inj.get("body", {"data": None})
                        return self.reply(inj["status"], inj.get("reason", "injected"), body)
            params = {}
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                params.setdefault(k, []).append(v)
            ctype = self.headers.get("Content-Type", "")
            if raw and "json" in ctype:
                for k, v in json.loads(raw).items():
                    params[k] = v if isinstance(v, list) else [str(v) if not isinstance(v, bool) else str(int(v))]
            elif raw:
                for k, v in urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True):
                    params.setdefault(k, []).append(v)
            schema = dict(self.server.schema)
            template, entry, path_params = schema_match(schema, path)
            if template is None or method not in entry.get("info", {}):
                raise ApiError(501, "Method '%s %s' not implemented" % (method, path))
            info = entry["info"][method]
            for k, v in path_params.items():
                params[k] = [v]
            flat = params
            if template == "/access/ticket" and method == "POST":
                validate(info, flat)
                with c.lock:
                    data = c.login(flat)
                return self.reply(200, "OK", {"data": data})
            user, privs, is_ticket = c.authenticate(self, method)
            validate(info, flat)
            c.check_perm(info, flat, privs, user)
            with c.lock:
                data = handle(c, method, template, flat, user, is_ticket)
            self.reply(200, "OK", {"data": data})
        except ApiError as e:
            body = {"data": None, "message": e.message + "\n"}
            if e.errors:
                body["errors"] = e.errors
            self.reply(e.status, e.message, body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a simulator bug: say so like PVE would
            self.reply(500, "internal simulator error: %s" % e, {"data": None, "message": str(e)})


def ensure_cert(state, names):
    cert, key = os.path.join(state, "cert.pem"), os.path.join(state, "key.pem")
    if not os.path.exists(cert):
        san = ",".join(("IP:" + n) if re.match(r"^[\d.]+$", n) else ("DNS:" + n) for n in names)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "30", "-subj", "/CN=pve-sim", "-addext",
                        "subjectAltName=" + san], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    fp = hashlib.sha256(der).hexdigest().upper()
    return cert, key, ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--names", default="127.0.0.1,localhost", help="subjectAltNames of the certificate")
    ap.add_argument("--auth-delay", type=float, default=3.0)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.state, exist_ok=True)
    with open(a.schema) as f:
        schema = {p: e for p, e in json.load(f).items()}
    for p, methods in EXTRA_SCHEMA.items():
        schema[p] = {"path": p, "info": methods}
    host, port = a.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.schema = schema
    server.verbose = a.verbose
    server.cluster = Cluster(a.cluster, a.state, a.auth_delay)
    cert, key, fp = ensure_cert(a.state, a.names.split(","))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(os.path.join(a.state, "fingerprint"), "w") as f:
        f.write(fp + "\n")
    with open(os.path.join(a.state, "port.tmp"), "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(os.path.join(a.state, "port.tmp"), os.path.join(a.state, "port"))
    server.serve_forever()


if __name__ == "__main__":
    main()
