#!/usr/bin/env python3
"""Smart-HTTP git server requiring basic auth, for tests of ibsync's git
authentication (tests/unit/test_source.c, tests/scenarios/git_auth.sh).

usage: git-http-auth-server.py ROOT USER TOKEN_FILE PORT_FILE

Serves the repositories under ROOT through `git http-backend` run as a CGI
program, on 127.0.0.1 at a port chosen by the kernel, written to PORT_FILE
once the server listens. Every request must carry "Authorization: Basic"
for USER and the token read from TOKEN_FILE at each request (so that a test
can rotate it); others get 401 with a Basic challenge. Each request is
logged to stderr as "METHOD PATH STATUS user=NAME" (never the password).
Standard library only; runs until killed.
"""
import base64
import hmac
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, USER, TOKEN_FILE, PORT_FILE = sys.argv[1:5]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # libgit2 keeps the connection alive

    def log_message(self, fmt, *args):
        pass

    def log(self, status, user):
        sys.stderr.write("%s %s %d user=%s\n" % (self.command, self.path, status, user))
        sys.stderr.flush()

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def credentials(self):
        """The (user, password) of the request, or (None, None)."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return user, password

    def send(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_git(self):
        body = self.read_body()  # before any answer, so that the connection stays usable
        user, password = self.credentials()
        with open(TOKEN_FILE) as f:
            token = f.read().strip()
        if user != USER or not hmac.compare_digest((password or "").encode(), token.encode()):
            self.log(401, user)
            self.send(401, [("WWW-Authenticate", 'Basic realm="ibsync-test"'),
                            ("Content-Type", "text/plain")], b"authentication required\n")
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": ROOT,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, check=False).stdout
        sep = out.find(b"\r\n\r\n")
        head, content = (out[:sep], out[sep + 4:]) if sep >= 0 else out.partition(b"\n\n")[::2]
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.log(status, user)
        self.send(status, headers, content)

    do_GET = handle_git
    do_POST = handle_git


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = PORT_FILE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, PORT_FILE)
    server.serve_forever()


if __name__ == "__main__":
    main()
