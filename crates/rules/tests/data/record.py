#!/usr/bin/env python3
"""Records real host activity as palisade_event::Event JSON lines, for the tuning tests.

    record.py strace OUT.jsonl [--drop-reads-under DIR] -- COMMAND...   run COMMAND under strace -f and convert every
                                               traced system call (exec, open, connect, dup,
                                               rename/unlink/mkdir/chmod, mount, setns, ...);
                                               --drop-reads-under leaves out read-only opens
                                               below DIR (man-db's trigger reads every man
                                               page: 55,000 opens no rule is about)

Process trees come from the trace itself (clone/fork return values); above the traced command
stands a root login shell (bash <- sshd <- systemd). strace is the kernel's own record of the calls; the sensor reports the
same calls, so the recordings replay what the engine sees when these commands run on a host.
"""
import errno
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import tempfile

TRACED = ("execve,execveat,clone,clone3,fork,vfork,open,openat,openat2,creat,unlink,unlinkat,"
          "rename,renameat,renameat2,chmod,fchmodat,mkdir,mkdirat,symlink,symlinkat,link,linkat,"
          "connect,dup2,dup3,ptrace,setns,mount,init_module,finit_module,memfd_create,chdir")
OPEN_FLAGS = {name: getattr(os, name) for name in dir(os) if name.startswith("O_")}
OPEN_FLAGS["O_LARGEFILE"] = 0o100000
KIND = {"clone": "clone", "clone3": "clone3", "fork": "fork", "vfork": "vfork"}


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def proc_info(pid):
    """A process as /proc shows it, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ppid, tty = int(fields[1]), int(fields[4])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
        uid = os.stat(f"/proc/{pid}").st_uid
        def link(name):
            try:
                return os.readlink(f"/proc/{pid}/{name}")
            except OSError:
                return ""
        return {"pid": pid, "tid": pid, "ppid": ppid, "name": comm, "exe": argv[0] if argv else comm,
                "exepath": link("exe"), "args": argv[1:], "cwd": link("cwd"), "tty": tty,
                "uid": uid, "user": user_name(uid)}
    except (OSError, ValueError):
        return None


def ancestor(info):
    return {k: info[k] for k in ("pid", "name", "exe", "exepath", "args", "uid", "user")}


def unquote(text):
    """An strace-quoted C string (without the quotes)."""
    return bytes(text, "latin-1").decode("unicode_escape").encode("latin-1").decode(errors="replace")


STRING = r'"((?:[^"\\]|\\.)*)"'


def strings(text):
    return [unquote(s) for s in re.findall(STRING, text)]


def absolute(path, cwd, dirfd_path=None):
    if path.startswith("/"):
        return os.path.normpath(path)
    base = dirfd_path if dirfd_path else cwd
    return os.path.normpath(os.path.join(base or "/", path))


def errno_of(result):
    match = re.match(r"-1 (E[A-Z0-9]+)", result)
    if match:
        return -getattr(errno, match.group(1), 1)
    match = re.match(r"(-?\d+)", result)
    return int(match.group(1)) if match else 0


def fd_kind(annotation):
    if annotation.startswith(("TCP:", "TCPv6:", "UDP:", "UDPv6:", "socket:")):
        return "ipv6" if "v6" in annotation else "ipv4"
    if annotation.startswith("UNIX"):
        return "unix"
    if annotation.startswith("pipe:"):
        return "pipe"
    return "file"


def parse_sockaddr(args):
    if "AF_UNIX" in args:
        path = re.search(r'sun_path=' + STRING, args)
        return "unix", None, 0, unquote(path.group(1)) if path else ""
    port = re.search(r"sin6?_port=htons\((\d+)\)", args)
    addr = re.search(r'inet_addr\("([^"]+)"\)', args) or re.search(r'inet_pton\(AF_INET6, "([^"]+)"', args)
    if not port or not addr:
        return None
    return ("ipv6" if "AF_INET6" in args else "ipv4"), addr.group(1), int(port.group(1)), ""


class Converter:
    def __init__(self, root_pid, out, hostname, drop_reads_under):
        self.drop_reads_under = drop_reads_under
        self.procs = {}
        self.parent = {}
        self.out = out
        self.hostname = hostname
        self.root_pid = root_pid
        # Above the traced command: a login shell, rather than the recording machine's own
        # supervisor (a VM whose PID 1 is a test harness), which is no real host's tree.
        self.outside = LOGIN_SHELL
        self.count = 0

    def info(self, pid):
        if pid not in self.procs:
            info = proc_info(pid) or {"pid": pid, "tid": pid, "ppid": 0, "name": "", "exe": "",
                                      "exepath": "", "args": [], "cwd": os.getcwd(), "tty": 0,
                                      "uid": os.getuid(), "user": user_name(os.getuid())}
            if pid == self.root_pid:
                info["ppid"] = LOGIN_SHELL[0]["pid"]
            self.procs[pid] = info
        return self.procs[pid]

    def ancestors(self, pid):
        chain, seen = [], {pid}
        parent = self.parent.get(pid)
        while parent is not None and parent not in seen:
            seen.add(parent)
            chain.append(ancestor(self.info(parent)))
            parent = self.parent.get(parent)
        return chain + self.outside

    def emit(self, pid, ts, kind, ret, payload):
        if (self.drop_reads_under and payload and payload.get("type") == "open"
                and payload["flags"] & 3 == 0 and payload["fd"]["name"].startswith(self.drop_reads_under)):
            return
        info = dict(self.info(pid))
        info["ppid"] = self.parent.get(pid, info["ppid"])
        process = {k: info[k] for k in ("pid", "tid", "ppid", "name", "exe", "exepath", "args", "cwd", "tty", "uid", "user")}
        event = {"timestamp_ns": int(ts * 1e9), "kind": kind, "hostname": self.hostname,
                 "process": process, "ret": ret, "ancestors": self.ancestors(pid)}
        if payload is not None:
            event["payload"] = payload
        self.out.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.count += 1

    def line(self, pid, ts, call, args, result):
        info = self.info(pid)
        ret = errno_of(result)
        fds = re.findall(r"(-?\d+|AT_FDCWD)<([^>]*)>", args)
        if call in ("clone", "clone3", "fork", "vfork"):
            if ret > 0:
                child = dict(info)
                child["pid"] = child["tid"] = ret
                self.procs[ret] = child
                self.parent[ret] = self.parent.get(pid, info["ppid"]) if "CLONE_THREAD" in args else pid
                self.emit(pid, ts, KIND[call], ret, {"type": "spawn", "child_pid": ret, "flags": 0})
            return
        if call == "chdir":
            if ret == 0:
                info["cwd"] = absolute(strings(args)[0], info["cwd"])
            return
        if call in ("execve", "execveat"):
            texts = strings(args)
            if ret == 0 and texts:
                path = absolute(texts[0], info["cwd"])
                argv = texts[1:]
                info.update(name=os.path.basename(path)[:15], exe=argv[0] if argv else path,
                            exepath=path, args=argv[1:])
            self.emit(pid, ts, call, ret, None)
            return
        if call in ("open", "openat", "openat2", "creat"):
            texts = strings(args)
            if not texts:
                return
            dirfd = fds[0][1] if call != "open" and fds and not args.startswith("AT_FDCWD") else None
            path = absolute(texts[0], info["cwd"], dirfd)
            names = re.findall(r"\bO_[A-Z]+", args)
            flags = sum(OPEN_FLAGS.get(name, 0) for name in names)
            if call == "creat":
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            mode = re.search(r", (0[0-7]+)\)?$", args)
            kind = "directory" if "O_DIRECTORY" in names else "file"
            self.emit(pid, ts, call, ret, {"type": "open", "fd": {"num": ret if ret >= 0 else -1, "kind": kind, "name": path},
                                           "flags": flags, "mode": int(mode.group(1), 8) if mode else 0})
            return
        if call == "connect":
            address = parse_sockaddr(args)
            if address is None:
                return
            family, addr, port, path = address
            protocol = "udp" if fds and fds[0][1].startswith("UDP") else ("tcp" if family != "unix" else "unknown")
            sock = {"protocol": protocol, "remote_port": port, "connected": ret in (0, -errno.EINPROGRESS)}
            if addr:
                sock["remote_addr"] = addr
            if path:
                sock["unix_path"] = path
            num = int(fds[0][0]) if fds else -1
            self.emit(pid, ts, call, ret, {"type": "network", "fd": {"num": num, "kind": family, "socket": sock}})
            return
        if call in ("dup2", "dup3"):
            if not fds:
                return
            num, annotation = fds[0]
            self.emit(pid, ts, call, ret, {"type": "dup", "fd": {"num": int(num), "kind": fd_kind(annotation), "name": annotation},
                                           "new_fd": ret})
            return
        texts = strings(args)
        dirfd = fds[0][1] if fds and not args.startswith("AT_FDCWD") else None
        if call in ("rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat") and len(texts) >= 2:
            source = texts[0] if call.startswith("symlink") else absolute(texts[0], info["cwd"], dirfd)
            self.emit(pid, ts, call, ret, {"type": "link", "source": source, "target": absolute(texts[1], info["cwd"])})
        elif call in ("unlink", "unlinkat", "mkdir", "mkdirat", "chmod", "fchmodat") and texts:
            mode = re.search(r", (0[0-7]+)", args)
            self.emit(pid, ts, call, ret, {"type": "path", "path": absolute(texts[0], info["cwd"], dirfd),
                                           "mode": int(mode.group(1), 8) if mode else 0, "flags": 0})
        elif call in ("init_module", "finit_module"):
            self.emit(pid, ts, call, ret, {"type": "module", "name": fds[0][1] if fds else ""})
        elif call == "memfd_create" and texts:
            self.emit(pid, ts, call, ret, {"type": "memfd", "name": texts[0], "flags": 0})


LOGIN_SHELL = [
    {"pid": 2210, "name": "bash", "exe": "-bash", "exepath": "/usr/bin/bash", "args": [], "uid": 0, "user": "root"},
    {"pid": 2200, "name": "sshd", "exe": "sshd:", "exepath": "/usr/sbin/sshd", "args": ["root@pts/0"], "uid": 0, "user": "root"},
    {"pid": 610, "name": "sshd", "exe": "/usr/sbin/sshd", "exepath": "/usr/sbin/sshd", "args": ["-D"], "uid": 0, "user": "root"},
    {"pid": 1, "name": "systemd", "exe": "/sbin/init", "exepath": "/usr/lib/systemd/systemd", "args": [], "uid": 0, "user": "root"},
]

LINE = re.compile(r"^(\d+) +(\d+\.\d+) (.*)$")


def convert_strace(path, out, hostname, drop_reads_under=None):
    converter = None
    pending = {}
    with open(path, errors="replace") as f:
        for raw in f:
            match = LINE.match(raw.rstrip("\n"))
            if not match:
                continue
            pid, ts, rest = int(match.group(1)), float(match.group(2)), match.group(3)
            if converter is None:
                converter = Converter(pid, out, hostname, drop_reads_under)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
                continue
            resumed = re.match(r"<\.\.\. (\w+) resumed>(.*)$", rest)
            if resumed:
                rest = pending.pop(pid, resumed.group(1) + "(") + resumed.group(2)
            call = re.match(r"(\w+)\((.*)\) += (.*)$", rest)
            if not call:
                continue
            converter.line(pid, ts, call.group(1), call.group(2), call.group(3))
    return converter.count if converter else 0


def main():
    mode, output = sys.argv[1], sys.argv[2]
    hostname = socket.gethostname()
    with open(output, "w") as out:
        if mode == "strace":
            command = sys.argv[sys.argv.index("--") + 1:]
            options = sys.argv[3:sys.argv.index("--")]
            drop = options[options.index("--drop-reads-under") + 1] if "--drop-reads-under" in options else None
            with tempfile.NamedTemporaryFile(suffix=".strace") as trace:
                subprocess.run(["strace", "-f", "-qq", "-ttt", "-yy", "-s", "512", "-e", "trace=" + TRACED,
                                "-o", trace.name, "--"] + command, check=True)
                count = convert_strace(trace.name, out, hostname, drop)
        else:
            sys.exit(f"unknown mode {mode}")
    print(f"{output}: {count} events", file=sys.stderr)


if __name__ == "__main__":
    main()
