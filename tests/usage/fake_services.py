#!/usr/bin/env python3
"""Fake outside services for the usage tests, on 127.0.0.1 only.

  POST /sts/                  AWS STS AssumeRoleWithWebIdentity (Query
                              protocol, XML answer). The token must be a JWT
                              whose payload has aud "sts.amazonaws.com"; the
                              role must be one of --role. Answers the
                              credentials of --credentials AKID:SECRET, which
                              the test's `ibsync emulator` requires, so an
                              ibsync that did not use them is refused there.
  /api/v4/projects/P/merge_requests/M/notes[/N]
                              GitLab merge request notes: GET (paginated),
                              POST, PUT; needs the PRIVATE-TOKEN --gitlab-token
  PUT|POST /metrics/job/...   a Prometheus Pushgateway: keeps the last body
  /git/REPO/...               git smart HTTP (git http-backend) for the
                              repositories under --git-root, behind HTTP basic
                              auth: any user name, the password --git-token
  GET /_state                 everything above, as JSON (for assertions)

Every request is appended to --log as a JSON line. The port is written to
--port-file once listening. Runs until SIGTERM.
"""
import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"sts": [], "notes": {}, "pushes": {}, "git": []}
LOCK = threading.Lock()
NEXT_NOTE = [1]


def jwt_claims(token):
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-services/1"

    def log_message(self, fmt, *args):
        pass

    def record(self, status, extra=None):
        entry = {"method": self.command, "path": self.path, "status": status}
        entry.update(extra or {})
        with open(self.server.args.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, data, ctype="application/json", extra=None):
        raw = data if isinstance(data, bytes) else data.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.record(status, extra)

    # ---- STS ----
    def sts(self):
        form = urllib.parse.parse_qs(self.body().decode())
        get = lambda k: (form.get(k) or [""])[0]
        action, role, token = get("Action"), get("RoleArn"), get("WebIdentityToken")
        claims = jwt_claims(token)

        def error(code, msg):
            xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message>"
                   "</Error><RequestId>fake</RequestId></ErrorResponse>" % (code, msg))
            self.answer(400, xml, "text/xml", {"sts_error": code, "role": role})

        if action != "AssumeRoleWithWebIdentity":
            return error("InvalidAction", "only AssumeRoleWithWebIdentity is faked")
        if not claims or claims.get("aud") != "sts.amazonaws.com":
            return error("InvalidIdentityToken", "the token's audience is not sts.amazonaws.com")
        if role not in self.server.args.role:
            return error("AccessDenied", "not authorized to assume %s" % role)
        akid, secret = self.server.args.credentials.split(":", 1)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        with LOCK:
            STATE["sts"].append({"role": role, "session": get("RoleSessionName"),
                                 "sub": claims.get("sub")})
        xml = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
               "<AssumeRoleWithWebIdentityResult><Credentials>"
               "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
               "<SessionToken>fake-session-token</SessionToken><Expiration>%s</Expiration>"
               "</Credentials><SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>"
               "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
               % (akid, secret, expires, claims.get("sub", "")))
        self.answer(200, xml, "text/xml", {"role": role})

    # ---- GitLab notes ----
    def notes(self, m):
        if self.headers.get("PRIVATE-TOKEN") != self.server.args.gitlab_token:
            return self.answer(401, json.dumps({"message": "401 Unauthorized"}))
        key = "%s!%s" % (urllib.parse.unquote(m.group(1)), m.group(2))
        note_id = m.group(3)
        with LOCK:
            notes = STATE["notes"].setdefault(key, [])
            if self.command == "GET" and not note_id:
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                per_page = int((q.get("per_page") or ["20"])[0])
                page = int((q.get("page") or ["1"])[0])
                return self.answer(200, json.dumps(notes[(page - 1) * per_page:page * per_page]))
            if self.headers.get("Content-Type") != "application/json":
                return self.answer(415, json.dumps({"message": "expected application/json"}))
            data = json.loads(self.body() or b"{}")
            if not isinstance(data.get("body"), str) or not data["body"]:
                return self.answer(400, json.dumps({"message": "body is missing"}))
            if self.command == "POST" and not note_id:
                note = {"id": NEXT_NOTE[0], "body": data["body"], "edits": 0}
                NEXT_NOTE[0] += 1
                notes.append(note)
                return self.answer(201, json.dumps(note))
            if self.command == "PUT" and note_id:
                for note in notes:
                    if note["id"] == int(note_id):
                        note["body"] = data["body"]
                        note["edits"] += 1
                        return self.answer(200, json.dumps(note))
                return self.answer(404, json.dumps({"message": "404 Not found"}))
        return self.answer(405, json.dumps({"message": "method not allowed"}))

    # ---- git over HTTP ----
    def git(self, path):
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if password != self.server.args.git_token:
                user = None
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return self.record(401)
        with LOCK:
            STATE["git"].append({"user": user, "path": path})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GIT_PROJECT_ROOT": self.server.args.git_root, "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path[len("/git"):], "REMOTE_USER": user,
               "QUERY_STRING": urllib.parse.urlparse(self.path).query,
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "GIT_CONFIG_NOSYSTEM": "1", "HOME": self.server.args.git_root}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        body = self.body()
        env["CONTENT_LENGTH"] = str(len(body))
        r = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = r.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(": ")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k:
                headers.append((k, v))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.record(status, {"user": user})

    def route(self):
        path = urllib.parse.urlparse(self.path).path
        if path.startswith("/git/"):
            return self.git(path)
        if self.command == "POST" and path.rstrip("/") == "/sts":
            return self.sts()
        m = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests/(\d+)/notes(?:/(\d+))?", path)
        if m:
            return self.notes(m)
        if path.startswith("/metrics/job/") and self.command in ("PUT", "POST"):
            with LOCK:
                STATE["pushes"][path] = self.body().decode()
            return self.answer(200, "", "text/plain")
        if self.command == "GET" and path == "/_state":
            with LOCK:
                return self.answer(200, json.dumps(STATE))
        return self.answer(404, json.dumps({"message": "no such fake"}))

    do_GET = do_POST = do_PUT = route


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--credentials", required=True)
    p.add_argument("--role", action="append", default=[])
    p.add_argument("--gitlab-token", default="")
    p.add_argument("--git-root", default="/nonexistent")
    p.add_argument("--git-token", default="")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.args = args
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
