"""A redis-server that speaks only TLS, with a certificate authority made at test time.

TlsRedis(tmpdir, client_certs=False, password=None) makes, with the openssl command:
  ca.pem / ca.key          the test CA
  server.pem / server.key  signed by it, for DNS:localhost and IP:127.0.0.1
  client.pem / client.key  signed by it (for servers that require client certificates)
  other-ca.pem             an unrelated CA (a wrong `ca=`)
and starts redis-server with only a TLS port (`port 0`), optionally requiring client
certificates (tls-auth-clients yes) and a password. `url(**query)` builds a rediss:// URL;
`cli(*args)` runs redis-cli over TLS.
"""
import os
import shutil
import subprocess
import time
import urllib.parse

from liner_testkit import free_port


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(directory):
    """The CA, server and client certificates described above, in `directory`."""
    def ca(name):
        openssl("req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                "-keyout", name + ".key", "-out", name + ".pem", "-subj", "/CN=liner test " + name, cwd=directory)

    def signed(name, subject, extension):
        openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", name + ".key",
                "-out", name + ".csr", "-subj", subject, cwd=directory)
        with open(os.path.join(directory, name + ".ext"), "w") as f:
            f.write(extension + "\n")
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext", cwd=directory)

    ca("ca")
    ca("other-ca")
    signed("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    signed("client", "/CN=liner-client", "extendedKeyUsage=clientAuth")
    return {name: os.path.join(directory, name) for name in
            ("ca.pem", "other-ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class TlsRedis:
    def __init__(self, directory, client_certs=False, password=None):
        self.dir = directory
        self.files = make_pki(directory)
        self.password = password
        self.client_certs = client_certs
        self.host = "127.0.0.1"
        self.port = free_port()
        args = [shutil.which("redis-server") or "redis-server", "--port", "0", "--tls-port", str(self.port),
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                "--tls-cert-file", self.files["server.pem"], "--tls-key-file", self.files["server.key"],
                "--tls-ca-cert-file", self.files["ca.pem"],
                "--tls-auth-clients", "yes" if client_certs else "no"]
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                if self.cli("PING") == "PONG":
                    break
            except Exception:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("redis-server with TLS did not start (is it built with TLS?)")
            time.sleep(0.05)

    def url(self, host=None, db=0, password=None, **query):
        """rediss://[:password@]host:port/db?query; query values are file paths or names
        (ca="ca.pem" is taken as the file of that name made here)."""
        q = {k: self.files.get(v, v) for k, v in query.items()}
        password = self.password if password is None else password
        auth = ":%s@" % urllib.parse.quote(password, safe="") if password else ""
        tail = ("?" + urllib.parse.urlencode(q)) if q else ""
        return "rediss://%s%s:%d/%d%s" % (auth, host or self.host, self.port, db, tail)

    def cli(self, *args):
        cmd = ["redis-cli", "--tls", "--cacert", self.files["ca.pem"], "-h", self.host, "-p", str(self.port)]
        if self.client_certs:
            cmd += ["--cert", self.files["client.pem"], "--key", self.files["client.key"]]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        out = subprocess.run(cmd + [str(a) for a in args], capture_output=True, timeout=10)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode())
        return out.stdout.decode("utf-8", "replace").rstrip("\n")

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
