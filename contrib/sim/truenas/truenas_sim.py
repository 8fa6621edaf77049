#!/usr/bin/python3
"""TrueNAS SCALE API simulator for vmlift's tests and lab.

An independent implementation (python3-websockets, python3-jsonschema) of the
transports and methods vmlift uses, served as one chosen release:

    truenas_sim.py --release 25.10 --schemas DIR --state DIR [--listen 127.0.0.1:0]
                   [--api-key-file FILE] [--user root] [--plain]

Releases: 24.10 (REST /api/v2.0 only; GET /api/versions is 404), 25.04.0 and
25.04.1 (JSON-RPC, no vm.* methods), 25.04.2, 25.10, 26 (JSON-RPC at
/api/vXX for every API version the release has; REST gone on 26). Each
JSON-RPC call is checked against that release's published schema (DIR/vXX.json):
unknown keys rejected, no type coercion, enums; errors have the real shapes
(-32601 "Method does not exist", -32602 with "[ERRNO] attribute: message"
lines, -32001 with errname/reason). Unauthenticated calls other than auth.*
and core.ping are refused. An API key sent over plain ws:// from a
non-loopback peer is revoked (login answers EXPIRED), as TrueNAS does.
With core.set_options({"legacy_jobs": false}) (25.10+) job methods answer when
the job ends; otherwise they answer a job id to poll with core.get_jobs.

The state directory receives cert.pem/key.pem, `fingerprint`, and `port`.
POST-free control: a JSON-RPC call to `sim.inject` (after login) makes the next
call of a method fail with a given error object.
"""
import argparse
import asyncio
import hashlib
import http
import json
import os
import ssl
import subprocess
import sys
import threading
import time

import jsonschema
import websockets

RELEASES = {
    "24.10": {"versions": None, "schema": "v24.10.json", "vm": True, "rest": True,
              "version_short": "24.10.2.4"},
    "25.04.0": {"versions": ["v24.10", "v25.04.0"], "schema": None, "vm": False, "rest": True,
                "version_short": "25.04.0"},
    "25.04.1": {"versions": ["v24.10", "v25.04.0", "v25.04.1"], "schema": None, "vm": False,
                "rest": True, "version_short": "25.04.1"},
    "25.04.2": {"versions": ["v24.10", "v25.04.0", "v25.04.1", "v25.04.2"],
                "schema": "v25.04.2.json", "vm": True, "rest": True, "version_short": "25.04.2.6"},
    "25.10": {"versions": ["v24.10", "v25.04.0", "v25.04.1", "v25.04.2", "v25.10.0", "v25.10.1",
                           "v25.10.2", "v25.10.3", "v25.10.4", "v25.10.5"],
              "schema": "v25.10.5.json", "vm": True, "rest": True, "version_short": "25.10.6"},
    "26": {"versions": ["v24.10", "v25.04.0", "v25.04.1", "v25.04.2", "v25.10.0", "v25.10.1",
                        "v25.10.2", "v25.10.3", "v25.10.4", "v25.10.5", "v26.0.0"],
           "schema": "v26.0.0.json", "vm": True, "rest": False, "version_short": "26.0.0"},
}

ALWAYS_ALLOWED = {"auth.login_ex", "auth.login_with_api_key", "auth.login", "core.ping"}


class CallError(Exception):
    def __init__(self, code, message, errname=None, reason=None, errno=None):
        super().__init__(message)
        self.code, self.message, self.errname, self.reason, self.errno = (
            code, message, errname, reason, errno)

    def to_json(self):
        e = {"code": self.code, "message": self.message}
        if self.errname or self.reason:
            e["data"] = {"error": self.errno or 22, "errname": self.errname or "EINVAL",
                         "reason": self.reason or self.message,
                         "trace": {"class": "CallError", "frames": [], "formatted": ""},
                         "extra": []}
        return e


def strip_markers(schema):
    """Turns the dumps into plain JSON Schema: pydantic dumps mark a required
    parameter with a boolean `required` (dropped); legacy (24.10) dumps mark
    required properties with `_required_: true` (turned into `required`
    arrays) and carry other `_..._` keys (dropped)."""
    if isinstance(schema, dict):
        out = {k: strip_markers(v) for k, v in schema.items()
               if not (k == "required" and isinstance(v, bool)) and not (k.startswith("_") and k.endswith("_"))}
        # Legacy dumps write `items` as a list of alternatives (draft-4 style).
        if isinstance(schema.get("items"), list):
            alts = [strip_markers(i) for i in schema["items"]]
            if not alts:
                out.pop("items")  # no alternatives listed: anything goes
            else:
                out["items"] = alts[0] if len(alts) == 1 else {"anyOf": alts}
        props = schema.get("properties")
        if isinstance(props, dict):
            legacy_required = [n for n, p in props.items() if isinstance(p, dict) and p.get("_required_") is True]
            if legacy_required:
                out["required"] = sorted(set(out.get("required", [])) | set(legacy_required))
        return out
    if isinstance(schema, list):
        return [strip_markers(v) for v in schema]
    return schema


class Qemu:
    """vm.start for real: qemu-system-x86_64 (TCG) with the VM's zvol files as
    disks, each NIC a tap on the bridge its nic_attach names (the bridge must
    exist on this host), SeaBIOS for UEFI_CSM and OVMF with the VM's NVRAM
    file (NVRAM_DIR/<id>_<name>_VARS.fd) for UEFI; with --direct-kernel DIR,
    DIR/vmlinuz, DIR/initrd.img and DIR/cmdline are booted directly (the lab's
    guest has no bootloader). The serial console goes to
    STATE/console-<id>.log."""

    def __init__(self, args):
        self.state = args.state
        self.kernel = args.direct_kernel
        self.nvram = args.nvram_dir or os.path.join(args.state, "nvram")
        self.binary = args.qemu_binary

    def alive(self, vm):
        q = vm.get("_qemu")
        return bool(q) and q["proc"].poll() is None

    def start(self, vm, zvols):
        argv = [self.binary, "-name", vm["name"], "-machine", "q35", "-accel", "tcg,thread=multi",
                "-m", str(min(int(vm.get("memory", 512)), 2048)),
                "-smp", str(max(1, min(2, vm.get("vcpus", 1) * vm.get("cores", 1)))),
                "-display", "none", "-monitor", "none", "-no-user-config",
                "-serial", "file:%s" % os.path.join(self.state, "console-%d.log" % vm["id"])]
        if vm.get("bootloader") == "UEFI":
            os.makedirs(self.nvram, exist_ok=True)
            vars_file = os.path.join(self.nvram, "%d_%s_VARS.fd" % (vm["id"], vm["name"]))
            if not os.path.exists(vars_file):
                with open("/usr/share/OVMF/OVMF_VARS_4M.fd", "rb") as src, open(vars_file, "wb") as dst:
                    dst.write(src.read())
            argv += ["-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
                     "-drive", "if=pflash,format=raw,file=%s" % vars_file]
        else:
            argv += ["-bios", "/usr/share/seabios/bios-256k.bin"]
        if self.kernel:
            with open(os.path.join(self.kernel, "cmdline")) as f:
                cmdline = f.read().strip()
            argv += ["-kernel", os.path.join(self.kernel, "vmlinuz"),
                     "-initrd", os.path.join(self.kernel, "initrd.img"), "-append", cmdline]
        taps = []
        ahci = False
        devices = sorted(vm["devices"], key=lambda d: d.get("order", 0))
        for n, d in enumerate(devices):
            a = d["attributes"]
            dtype = d.get("dtype") or a.get("dtype")
            if dtype == "DISK":
                name = a["path"][len("/dev/zvol/"):].replace("+", " ")
                path = zvols[name]["path"]
                if a.get("type") == "AHCI":
                    if not ahci:
                        argv += ["-device", "ahci,id=ahci0"]
                        ahci = True
                    argv += ["-drive", "id=d%d,file=%s,format=raw,if=none" % (n, path),
                             "-device", "ide-hd,drive=d%d,bus=ahci0.%d" % (n, n % 6)]
                else:
                    argv += ["-drive", "id=d%d,file=%s,format=raw,if=none" % (n, path),
                             "-device", "virtio-blk-pci,drive=d%d" % n]
            elif dtype == "NIC":
                tap = "vmlift%dn%d" % (vm["id"], n)
                bridge = a.get("nic_attach")
                if subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode:
                    self.drop_taps(taps)
                    raise CallError(-32001, "Method call error", "ENOENT",
                                    "bridge %s does not exist on this host" % bridge)
                subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
                subprocess.run(["ip", "link", "set", tap, "master", bridge, "up"], check=True)
                taps.append(tap)
                model = "virtio-net-pci" if a.get("type") == "VIRTIO" else "e1000"
                argv += ["-netdev", "tap,id=n%d,ifname=%s,script=no,downscript=no" % (n, tap),
                         "-device", "%s,netdev=n%d,mac=%s" % (model, n, a.get("mac", ""))]
        log = open(os.path.join(self.state, "qemu-%d.log" % vm["id"]), "w")
        log.write(" ".join(argv) + "\n")
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        vm["_qemu"] = {"proc": proc, "taps": taps}

    def drop_taps(self, taps):
        for t in taps:
            subprocess.run(["ip", "link", "del", t], capture_output=True)

    def stop(self, vm):
        q = vm.pop("_qemu", None)
        if not q:
            return
        q["proc"].terminate()
        try:
            q["proc"].wait(10)
        except subprocess.TimeoutExpired:
            q["proc"].kill()
            q["proc"].wait()
        self.drop_taps(q["taps"])


class Sim:
    def __init__(self, args):
        self.release = RELEASES[args.release]
        self.name = args.release
        self.methods = {}
        if self.release["schema"]:
            with open(os.path.join(args.schemas, self.release["schema"])) as f:
                self.methods = json.load(f)["methods"]
        self.device_schemas = {}
        if self.release["schema"]:
            with open(os.path.join(args.schemas, self.release["schema"])) as f:
                self.device_schemas = json.load(f).get("vm_device_attribute_schemas_by_dtype", {})
        self.api_key = "1-simsecret"
        if args.api_key_file:
            with open(args.api_key_file) as f:
                self.api_key = f.read().strip()
        self.user = args.user
        self.revoked = False
        self.jobs = {}
        self.next_job = 1
        self.injections = {}
        self.zvol_root = os.path.join(args.state or ".", "zvols")
        self.pools = {}
        for spec in (args.pool or ["tank:1T"]):
            name, _, size = spec.partition(":")
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(size[-1:], 1)
            self.pools[name] = {"free": int(size.rstrip("KMGT")) * mult}
        self.bridges = args.bridge or ["br0"]
        self.nics = ["enp1s0"]
        self.noexec = set(args.noexec or [])
        self.max_vcpus = 16
        self.tables = {}
        self.zvols = {}
        self.vms = {}
        self.next_vm = 1
        self.next_device = 1
        self.lock = threading.Lock()
        self.qemu = Qemu(args) if getattr(args, "qemu", False) else None

    def validate(self, method, params):
        spec = self.methods.get(method)
        if spec is None:
            return
        pspecs = spec.get("params", [])
        if len(params) > len(pspecs):
            raise CallError(-32602, "Invalid params", "EINVAL",
                            "[EINVAL] %s: too many arguments\n" % method)
        errors = []
        for i, (value, pspec) in enumerate(zip(params, pspecs)):
            name = pspec.get("title", "param%d" % i)
            schema = strip_markers(pspec)
            validator = jsonschema.Draft202012Validator(schema)
            for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
                path = ".".join([name.lower()] + [str(p) for p in err.absolute_path])
                if err.validator == "additionalProperties":
                    extra = err.message.split("'")[1] if "'" in err.message else ""
                    path = path + "." + extra if extra else path
                    msg = "Extra inputs are not permitted"
                elif err.validator == "type":
                    msg = "Input should be a valid %s" % err.validator_value
                elif err.validator == "enum":
                    msg = "Input should be %s" % " or ".join(repr(v) for v in err.validator_value)
                else:
                    msg = err.message
                errors.append("[EINVAL] %s: %s" % (path, msg))
        # 24.10: `attributes` is free-form in the method schema and checked per dtype.
        by_dtype = self.device_schemas
        if method in ("vm.device.create", "vm.device.update") and by_dtype and params:
            dev = params[-1] if isinstance(params[-1], dict) else {}
            dtype = dev.get("dtype")
            if dtype in by_dtype:
                validator = jsonschema.Draft202012Validator(strip_markers(by_dtype[dtype]))
                for err in validator.iter_errors(dev.get("attributes") or {}):
                    path = ".".join(["vmdevice_create", "attributes"] + [str(p) for p in err.absolute_path])
                    errors.append("[EINVAL] %s: %s" % (path, err.message))
        if errors:
            raise CallError(-32602, "Invalid params", "EINVAL", "\n".join(errors) + "\n")

    def call(self, session, method, params):
        inj = self.injections.pop(method, None)
        if inj:
            raise CallError(inj.get("code", -32001), inj.get("message", "injected"),
                            inj.get("errname"), inj.get("reason"))
        if method == "sim.inject":
            self.injections[params[0]] = params[1]
            return True
        known = set(self.methods) | {"core.ping"}
        if method not in known or (method.startswith("vm.") and not self.release["vm"]):
            raise CallError(-32601, "Method does not exist")
        if method not in ALWAYS_ALLOWED and not session["authenticated"]:
            raise CallError(-32001, "Not authenticated", "EACCES", "Not authenticated")
        self.validate(method, params)
        if method == "core.ping":
            return "pong"
        if method == "auth.login_ex":
            p = params[0]
            if p.get("mechanism") != "API_KEY_PLAIN":
                return {"response_type": "AUTH_ERR"}
            if not session["secure"] and p.get("api_key") == self.api_key:
                self.revoked = True
                return {"response_type": "EXPIRED"}
            if self.revoked or p.get("api_key") != self.api_key or p.get("username") != self.user:
                return {"response_type": "AUTH_ERR"}
            session["authenticated"] = True
            return {"response_type": "SUCCESS", "user_info": None, "authenticator": "LEVEL_1"}
        if method == "auth.login_with_api_key":
            ok = params[0] == self.api_key and not self.revoked and session["secure"]
            session["authenticated"] = ok
            return ok
        if method == "system.version_short":
            return self.release["version_short"]
        if method == "system.info":
            return {"version": "TrueNAS-SCALE-" + self.release["version_short"], "hostname": "truenas",
                    "cores": 2, "physmem": 24 << 30}
        if method == "core.set_options":
            session["options"].update(params[0])
            return dict(session["options"])
        if method == "core.get_jobs":
            return apply_filters(list(self.jobs.values()), params[0] if params else [])
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            raise CallError(-32001, "Method %s is not implemented by the simulator" % method, "ENOTSUP",
                            "not implemented by the simulator yet")
        result = handler(*params)
        if self.methods.get(method, {}).get("job"):
            return self.run_job(session, method, params, result)
        return result

    # ---- jobs
    def run_job(self, session, method, params, result):
        job_id = self.next_job
        self.next_job += 1
        self.jobs[job_id] = {"id": job_id, "method": method, "arguments": params, "state": "SUCCESS",
                             "progress": {"percent": 100, "description": "done", "extra": None},
                             "result": result, "error": None, "exception": None,
                             "time_started": {"$date": int(time.time() * 1000)},
                             "time_finished": {"$date": int(time.time() * 1000)}}
        if session["options"].get("legacy_jobs", True):
            return job_id
        for percent, what in ((50, "stopping"), (100, "done")):
            session.setdefault("notify", []).append({
                "jsonrpc": "2.0", "method": "collection_update",
                "params": {"msg": "changed", "collection": "core.get_jobs", "id": job_id,
                           "fields": {"id": job_id, "state": "RUNNING" if percent < 100 else "SUCCESS",
                                      "progress": {"percent": percent, "description": what, "extra": None}}}})
        return result

    # ---- storage: pools, zvols backed by sparse files
    def check_space(self, pool, size):
        free = self.pools[pool]["free"] - sum(z["volsize"] for z in self.zvols.values()
                                              if z["pool"] == pool and not z["sparse"])
        if size > free:
            raise CallError(-32602, "Invalid params", "ENOSPC",
                            "[ENOSPC] pool_dataset_create.volsize: Insufficient space on pool %s: "
                            "%d bytes requested, %d available\n" % (pool, size, free))

    def m_pool_query(self, filters=None, options=None):
        return [{"id": i, "name": n, "status": "ONLINE", "healthy": True, "free": p["free"],
                 "size": p["free"]} for i, (n, p) in enumerate(self.pools.items(), 1)]

    def m_pool_dataset_query(self, filters=None, options=None):
        roots = [{"id": n, "name": n, "type": "FILESYSTEM", "pool": n,
                  "exec": {"value": "off" if n in self.noexec else "on"},
                  "comments": {"value": ""}} for n in self.pools]
        out = roots + [{"id": n, "name": n, "type": "VOLUME", "pool": z["pool"],
                "volsize": {"parsed": z["volsize"]}, "volblocksize": {"value": z["volblocksize"]},
                "comments": {"value": z["comments"]}} for n, z in self.zvols.items()]
        return apply_filters(out, filters)

    def m_pool_dataset_create(self, data):
        name = data["name"]
        pool = name.split("/")[0]
        if pool not in self.pools:
            raise CallError(-32602, "Invalid params", "ENOENT",
                            "[ENOENT] pool_dataset_create.name: Pool %s does not exist\n" % pool)
        if name in self.zvols:
            raise CallError(-32602, "Invalid params", "EEXIST",
                            "[EEXIST] pool_dataset_create.name: Path %s already exists\n" % name)
        if data.get("type") != "VOLUME":
            raise CallError(-32001, "only zvols are simulated", "ENOTSUP", "only zvols are simulated")
        bs_text = data.get("volblocksize", "16K")
        bs = int(bs_text[:-1]) * 1024 if bs_text.endswith("K") else int(bs_text.rstrip("B"))
        volsize = data["volsize"]
        if volsize % bs and not data.get("force_size"):
            raise CallError(-32602, "Invalid params", "EINVAL",
                            "[EINVAL] pool_dataset_create.volsize: Volume size should be a multiple "
                            "of volume block size\n")
        sparse = data.get("sparse", False)
        self.check_space(pool, 0 if sparse else volsize)
        path = os.path.join(self.zvol_root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(volsize)
        self.zvols[name] = {"pool": pool, "volsize": volsize, "volblocksize": bs_text,
                            "sparse": sparse, "comments": data.get("comments", ""), "path": path}
        return self.m_pool_dataset_query([["id", "=", name]])[0]

    def m_pool_dataset_delete(self, name, options=None):
        if name not in self.zvols:
            raise CallError(-32001, "Method call error", "ENOENT", "%s does not exist" % name)
        for vm in self.vms.values():
            for d in vm["devices"]:
                if d["attributes"].get("path") == "/dev/zvol/" + name.replace(" ", "+"):
                    raise CallError(-32001, "Method call error", "EBUSY",
                                    "%s is in use by VM %s" % (name, vm["name"]))
        os.unlink(self.zvols.pop(name)["path"])
        return True

    # ---- VMs
    def vm_entry(self, vm):
        if self.qemu and vm["state"] == "RUNNING" and not self.qemu.alive(vm):
            vm["state"] = "STOPPED"  # the guest powered off, or QEMU died
        out = {k: v for k, v in vm.items() if k not in ("devices", "_qemu")}
        out["devices"] = [dict(d) for d in vm["devices"]]
        pid = vm["_qemu"]["proc"].pid if vm.get("_qemu") and vm["state"] == "RUNNING" else None
        out["status"] = {"state": vm["state"], "pid": pid, "domain_state": vm["state"]}
        return out

    def m_vm_query(self, filters=None, options=None):
        return apply_filters([self.vm_entry(v) for v in self.vms.values()], filters)

    def m_vm_get_instance(self, vm_id, options=None):
        if vm_id not in self.vms:
            raise CallError(-32001, "Method call error", "ENOENT", "VM %d does not exist" % vm_id)
        return self.vm_entry(self.vms[vm_id])

    def m_vm_create(self, data):
        import re
        if not re.match(r"^[a-zA-Z_0-9]+$", data["name"]):
            raise CallError(-32602, "Invalid params", "EINVAL",
                            "[EINVAL] vm_create.name: Only alphanumeric characters are allowed\n")
        if any(v["name"] == data["name"] for v in self.vms.values()):
            raise CallError(-32602, "Invalid params", "EEXIST",
                            "[EEXIST] vm_create.name: This name already exists.\n")
        if data.get("vcpus", 1) * data.get("cores", 1) * data.get("threads", 1) > self.max_vcpus:
            raise CallError(-32602, "Invalid params", "EINVAL",
                            "[EINVAL] vm_create.vcpus: Maximum %d vcpus are supported\n" % self.max_vcpus)
        vm_id = self.next_vm
        self.next_vm += 1
        vm = dict(data)
        vm.update({"id": vm_id, "devices": [], "state": "STOPPED"})
        vm.setdefault("autostart", True)
        vm.setdefault("description", "")
        self.vms[vm_id] = vm
        return self.vm_entry(vm)

    def m_vm_delete(self, vm_id, options=None):
        vm = self.vms.get(vm_id)
        if vm is None:
            raise CallError(-32001, "Method call error", "ENOENT", "VM %d does not exist" % vm_id)
        if vm["state"] == "RUNNING" and not (options or {}).get("force"):
            raise CallError(-32001, "Method call error", "EBUSY", "VM is running")
        if self.qemu:
            self.qemu.stop(vm)
        del self.vms[vm_id]
        if (options or {}).get("zvols"):
            for d in vm["devices"]:
                path = d["attributes"].get("path", "")
                name = path[len("/dev/zvol/"):].replace("+", " ")
                if name in self.zvols:
                    os.unlink(self.zvols.pop(name)["path"])
        return True

    def m_vm_device_nic_attach_choices(self):
        return {b: b for b in self.bridges + self.nics}

    def m_interface_query(self, filters=None, options=None):
        rows = [{"id": b, "name": b, "type": "BRIDGE"} for b in self.bridges]
        rows += [{"id": n, "name": n, "type": "PHYSICAL"} for n in self.nics]
        return apply_filters(rows, filters)

    def m_vm_device_query(self, filters=None, options=None):
        return apply_filters([dict(d) for v in self.vms.values() for d in v["devices"]], filters)

    def m_vm_device_create(self, data):
        vm = self.vms.get(data["vm"])
        if vm is None:
            raise CallError(-32602, "Invalid params", "ENOENT",
                            "[ENOENT] vm_device_create.vm: No such VM\n")
        attrs = dict(data.get("attributes") or {})
        dtype = data.get("dtype") or attrs.get("dtype")
        if self.release["schema"] != "v24.10.json":
            attrs["dtype"] = dtype
        if dtype == "DISK":
            path = attrs.get("path") or ""
            name = path[len("/dev/zvol/"):].replace("+", " ")
            if name not in self.zvols:
                raise CallError(-32602, "Invalid params", "ENOENT",
                                "[ENOENT] vm_device_create.attributes.path: Disk path %s does not exist\n" % path)
        if dtype == "NIC":
            if attrs.get("nic_attach") not in self.bridges + self.nics:
                raise CallError(-32602, "Invalid params", "EINVAL",
                                "[EINVAL] vm_device_create.attributes.nic_attach: Not a valid choice. "
                                "The choices are: %s\n" % ", ".join(self.bridges + self.nics))
            mac = (attrs.get("mac") or "").lower()
            for v in self.vms.values():
                for d in v["devices"]:
                    if mac and (d["attributes"].get("mac") or "").lower() == mac:
                        raise CallError(-32602, "Invalid params", "EEXIST",
                                        "[EEXIST] vm_device_create.attributes.mac: MAC address %s is "
                                        "in use by VM %s\n" % (mac, v["name"]))
        dev_id = self.next_device
        self.next_device += 1
        dev = {"id": dev_id, "vm": vm["id"], "order": data.get("order") or 1000 + dev_id,
               "attributes": attrs}
        if self.release["schema"] == "v24.10.json":
            dev["dtype"] = dtype
        vm["devices"].append(dev)
        return dict(dev)

    def m_vm_device_delete(self, dev_id, options=None):
        for v in self.vms.values():
            for d in v["devices"]:
                if d["id"] == dev_id:
                    v["devices"].remove(d)
                    return True
        raise CallError(-32001, "Method call error", "ENOENT", "Device %d does not exist" % dev_id)

    def m_vm_status(self, vm_id):
        return self.m_vm_get_instance(vm_id)["status"]

    def m_vm_start(self, vm_id, options=None):
        self.m_vm_get_instance(vm_id)
        vm = self.vms[vm_id]
        if vm["state"] == "RUNNING":
            return None
        if self.qemu:
            self.qemu.start(vm, self.zvols)
        vm["state"] = "RUNNING"
        return None

    def m_vm_stop(self, vm_id, options=None):
        self.m_vm_get_instance(vm_id)
        if self.qemu:
            self.qemu.stop(self.vms[vm_id])
        self.vms[vm_id]["state"] = "STOPPED"
        return None

    def m_vm_maximum_supported_vcpus(self):
        return self.max_vcpus

    def m_vm_bootloader_options(self):
        return {"UEFI": "UEFI", "UEFI_CSM": "Legacy BIOS"}

    def m_vm_bootloader_ovmf_choices(self):
        return {"OVMF_CODE.fd": "OVMF_CODE.fd", "OVMF_CODE_4M.secboot.fd": "OVMF_CODE_4M.secboot.fd"}

    # ---- cron jobs and init/shutdown scripts
    def crud(self, table, data=None, ident=None, filters=None, delete=False):
        rows = self.tables.setdefault(table, {})
        if delete:
            if ident not in rows:
                raise CallError(-32001, "Method call error", "ENOENT", "%s %s does not exist" % (table, ident))
            del rows[ident]
            return True
        if data is not None:
            ident = max(rows, default=0) + 1
            rows[ident] = dict(data, id=ident)
            return dict(rows[ident])
        return apply_filters([dict(r) for r in rows.values()], filters)

    def m_cronjob_create(self, data):
        schedule = {"minute": "00", "hour": "*", "dom": "*", "month": "*", "dow": "*"}
        schedule.update(data.get("schedule") or {})
        return self.crud("cronjob", dict(data, schedule=schedule))

    def m_cronjob_query(self, filters=None, options=None):
        return self.crud("cronjob", filters=filters)

    def m_cronjob_delete(self, ident):
        return self.crud("cronjob", ident=ident, delete=True)

    def m_initshutdownscript_create(self, data):
        return self.crud("initshutdownscript", data)

    def m_initshutdownscript_query(self, filters=None, options=None):
        return self.crud("initshutdownscript", filters=filters)

    def m_initshutdownscript_delete(self, ident):
        return self.crud("initshutdownscript", ident=ident, delete=True)


def apply_filters(rows, filters):
    for f in filters or []:
        if len(f) == 3 and f[1] == "=":
            key = f[0]
            rows = [r for r in rows if r.get(key) == f[2]]
        elif len(f) == 3 and f[1] == "^":
            rows = [r for r in rows if str(r.get(f[0], "")).startswith(f[2])]
    return rows


def serve_rest(sim, args, ctx, port_holder):
    """TrueNAS 24.10: REST /api/v2.0 with a Bearer key, mapped onto the same
    handlers as JSON-RPC (restful.py's mapping)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import urllib.parse

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self, verb):
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path == "/api/versions":
                return self.reply(404, {"message": "Not Found"})
            if not url.path.startswith("/api/v2.0/"):
                return self.reply(404, {"message": "Not Found"})
            if self.headers.get("Authorization") != "Bearer " + sim.api_key or sim.revoked:
                return self.reply(401, {"message": "Authentication credentials were not provided"})
            parts = [urllib.parse.unquote(p) for p in url.path[len("/api/v2.0/"):].split("/") if p]
            body = json.loads(raw) if raw else None
            query = urllib.parse.parse_qsl(url.query)
            if "id" in parts:
                i = parts.index("id")
                service, ident, rest = ".".join(parts[:i]), parts[i + 1], parts[i + 2:]
                ident = int(ident) if ident.isdigit() else ident
                if rest:
                    method, params = service + "." + rest[0], [ident] + ([body] if body is not None else [])
                else:
                    method = service + {"GET": ".get_instance", "PUT": ".update", "DELETE": ".delete"}[verb]
                    params = [ident] + ([body] if body is not None else [])
            else:
                name = ".".join(parts)
                if verb == "GET" and name in sim.methods:
                    method = name
                    params = [[[k, "=", int(v) if v.isdigit() else v] for k, v in query]] if query else []
                elif verb == "GET":
                    method = name + ".query"
                    params = [[[k, "=", int(v) if v.isdigit() else v] for k, v in query]]
                elif verb == "POST" and name + ".create" in sim.methods:
                    method, params = name + ".create", [body]
                else:
                    method = name
                    params = [] if body is None else (body if isinstance(body, list) else [body])
            session = {"authenticated": True, "options": {"legacy_jobs": True}, "secure": True}
            try:
                with sim.lock:
                    result = sim.call(session, method, params)
                return self.reply(200, result)
            except CallError as e:
                if e.code == -32601:
                    return self.reply(404, {"message": "Method does not exist"})
                if e.code == -32602:
                    out = {}
                    for line in (e.reason or "").splitlines():
                        line = line.strip()
                        if not line:
                            continue
                        err, _, rest = line.partition("] ")
                        attr, _, msg = rest.partition(": ")
                        out.setdefault(attr, []).append({"message": msg, "errno": 22 if "EINVAL" in err else 17})
                    return self.reply(422, out)
                if e.errname == "ENOENT":
                    return self.reply(404, {"message": e.reason or e.message})
                return self.reply(422, {"message": e.reason or e.message, "errno": e.errno or 22})

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

        def do_PUT(self):
            self.route("PUT")

        def do_DELETE(self):
            self.route("DELETE")

    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    if ctx is not None:
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    port_holder.append(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()


async def serve(sim, args):
    cert, key = os.path.join(args.state, "cert.pem"), os.path.join(args.state, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "30", "-subj", "/CN=truenas-sim", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    fp = hashlib.sha256(der).hexdigest().upper()
    ctx = None
    if not args.plain:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    versions = sim.release["versions"]

    async def process_request(path, headers):
        if path == "/api/versions":
            if versions is None:
                return http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"404: Not Found"
            return http.HTTPStatus.OK, [("Content-Type", "application/json")], json.dumps(versions).encode()
        if versions is None or not path.startswith("/api/") or (
                path[len("/api/"):] not in versions and path != "/api/current"):
            return http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"404: Not Found"
        return None

    async def handler(ws, path=None):
        peer = ws.remote_address[0] if ws.remote_address else ""
        session = {"authenticated": False, "options": {"legacy_jobs": True},
                   "secure": ctx is not None or peer in ("127.0.0.1", "::1")}
        async for raw in ws:
            try:
                req = json.loads(raw)
            except ValueError:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": None,
                                          "error": {"code": -32700, "message": "Parse error"}}))
                continue
            rid = req.get("id")
            if req.get("jsonrpc") != "2.0" or "method" not in req:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": rid,
                                          "error": {"code": -32600, "message": "Invalid Request"}}))
                continue
            params = req.get("params", [])
            try:
                with sim.lock:
                    result = sim.call(session, req["method"], params if isinstance(params, list) else [params])
                reply = {"jsonrpc": "2.0", "id": rid, "result": result}
            except CallError as e:
                reply = {"jsonrpc": "2.0", "id": rid, "error": e.to_json()}
            for note in session.pop("notify", []):
                await ws.send(json.dumps(note))
            if rid is not None:
                await ws.send(json.dumps(reply))

    if versions is None:  # 24.10: REST only
        holder = []
        serve_rest(sim, args, ctx, holder)
        port = holder[0]
    else:
        server = await websockets.serve(handler, args.listen.rsplit(":", 1)[0],
                                        int(args.listen.rsplit(":", 1)[1]), ssl=ctx,
                                        process_request=process_request, max_size=64 << 20)
        port = server.sockets[0].getsockname()[1]
    with open(os.path.join(args.state, "fingerprint"), "w") as f:
        f.write(":".join(fp[i:i + 2] for i in range(0, len(fp), 2)) + "\n")
    with open(os.path.join(args.state, "port.tmp"), "w") as f:
        f.write("%d\n" % port)
    os.rename(os.path.join(args.state, "port.tmp"), os.path.join(args.state, "port"))
    await asyncio.Future()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--release", required=True, choices=sorted(RELEASES))
    ap.add_argument("--schemas", required=True)
    ap.add_argument("--state")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--api-key-file", help="the one valid API key (default 1-simsecret)")
    ap.add_argument("--user", default="root")
    ap.add_argument("--plain", action="store_true", help="serve ws:// instead of wss://")
    ap.add_argument("--pool", action="append", help="NAME:SIZE (e.g. tank:1T); repeatable")
    ap.add_argument("--bridge", action="append", help="a bridge VMs may attach to; repeatable")
    ap.add_argument("--noexec", action="append", help="a pool whose root dataset has exec=off")
    ap.add_argument("--qemu", action="store_true",
                    help="vm.start runs the VM under qemu-system-x86_64 (TCG); see class Qemu")
    ap.add_argument("--qemu-binary", default="qemu-system-x86_64")
    ap.add_argument("--direct-kernel", help="boot DIR/vmlinuz, DIR/initrd.img with DIR/cmdline")
    ap.add_argument("--nvram-dir", help="UEFI NVRAM files (default STATE/nvram)")
    ap.add_argument("--validate-calls", action="store_true",
                    help="no server: check JSON lines {method, params} on stdin against the "
                         "release's schema (\"${vm.id}\" stands for a VM id); exit 1 on errors")
    args = ap.parse_args()
    if args.validate_calls:
        sys.exit(validate_calls(Sim(args)))
    os.makedirs(args.state, exist_ok=True)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the VMs are stopped below
    sim = Sim(args)
    try:
        asyncio.run(serve(sim, args))
    finally:
        for vm in list(sim.vms.values()):
            if sim.qemu:
                sim.qemu.stop(vm)


def validate_calls(sim):
    bad = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        call = json.loads(line.replace('"${vm.id}"', "1"))
        method = call["method"]
        if method not in sim.methods or (method.startswith("vm.") and not sim.release["vm"]):
            print("line %d: %s: Method does not exist on %s" % (n, method, sim.name))
            bad += 1
            continue
        try:
            sim.validate(method, call["params"])
        except CallError as e:
            print("line %d: %s: %s" % (n, method, (e.reason or e.message).strip()))
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    main()
