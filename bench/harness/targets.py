"""The upstream and the proxies under test: config files, start commands, readiness."""
import os
import subprocess

from . import procs, yamlout

BODY = "x" * 99 + "\n"  # ~100-byte upstream response body
UPSTREAM_STATUS = "/__upstream_status"
KEEPALIVE_REQUESTS = 10000  # both nginx sides (Kong's upstream_keepalive_max_requests default)

NGINX_COMMON = """\
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 65535;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
"""
NGINX_HTTP_COMMON = """\
    access_log off;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    keepalive_requests {kareq};
    keepalive_timeout 60s;
"""


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path



def start_upstream(run_dir, cpu, nginx):
    """nginx, one worker, `return 200` with a ~100-byte body, stub_status for the request counter."""
    d = _mkdir(os.path.join(run_dir, "upstream"))
    port = procs.free_port()
    conf = NGINX_COMMON.format(workers=1, dir=d) + "http {\n" + NGINX_HTTP_COMMON.format(
        dir=d, kareq=1000000) + f"""\
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = {UPSTREAM_STATUS} {{ stub_status; }}
        location / {{ default_type text/plain; return 200 "{BODY[:-1]}\\n"; }}
    }}
}}
"""
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.Proc("upstream", procs.pin_prefix(cpu) + [nginx, "-p", d, "-c", path],
                   os.path.join(d, "stdout.log"))
    err = procs.wait_ready(p, [(port, UPSTREAM_STATUS, None)], timeout=10)
    if err:
        p.stop()
        raise RuntimeError(f"upstream nginx failed: {err}\n{p.tail()}")
    return p, port


def tls_cert(run_dir):
    """(cert, key) paths of the ECDSA P-256 certificate every TLS target serves (made once)."""
    cert, key = os.path.join(run_dir, "tls-cert.pem"), os.path.join(run_dir, "tls-key.pem")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


def upstream_requests(port):
    """Total requests the upstream nginx has handled (stub_status), or None."""
    status, body = procs.http_get(port, UPSTREAM_STATUS, timeout=2)
    if status != 200:
        return None
    # "Active connections: N \nserver accepts handled requests\n A H R \n..."
    lines = body.decode().splitlines()
    return int(lines[2].split()[2])


class Target:
    """A proxy under test. Subclasses write their config and return (argv, readiness checks)."""
    name = "?"
    proxy_port = admin_port = status_port = None

    def available(self):
        return None  # or a reason string

    def prepare(self, run_dir, ctx):
        raise NotImplementedError

    def start(self, run_dir, ctx, cpu):
        d = _mkdir(os.path.join(run_dir, ctx["scenario"].name, self.name))
        self.proxy_port = procs.free_port()
        argv, checks = self.prepare(d, ctx)
        p = procs.Proc(self.name, procs.pin_prefix(cpu) + argv, os.path.join(d, "stdout.log"))
        err = procs.wait_ready(p, checks, timeout=ctx.get("ready_timeout", 30))
        if err:
            tail = p.tail()
            p.stop()
            return None, f"{err}\n{tail}"
        return p, None


class NginxProxy(Target):
    def __init__(self, name, nginx, keepalive, workers=1, status_server=False):
        self.name, self.nginx, self.keepalive, self.workers = name, nginx, keepalive, workers
        self.status_server = status_server  # used by the hidden nginx stand-in for gatehouse

    def available(self):
        return None if self.nginx else "nginx not installed"

    def prepare(self, d, ctx):
        extra = ctx["scenario"].nginx_location_extra
        status = ""
        if self.status_server:
            self.status_port = procs.free_port()
            status = (f"    server {{ listen 127.0.0.1:{self.status_port}; "
                      f"location = /status {{ return 200 '{{}}'; }} }}\n")
        sc = ctx["scenario"]
        listen, tls = f"127.0.0.1:{self.proxy_port} reuseport backlog=4096", ""
        if sc.tls:
            # Kong's nginx template: TLS 1.2/1.3, a 10 MiB shared session cache, tickets on.
            cert, key = tls_cert(ctx["run_dir"])
            listen += " ssl http2"
            tls = (f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
                   "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                   "        ssl_session_cache shared:SSL:10m;\n        ssl_session_timeout 1d;\n")
        conf = NGINX_COMMON.format(workers=self.workers, dir=d) + "http {\n" + \
            NGINX_HTTP_COMMON.format(dir=d, kareq=KEEPALIVE_REQUESTS) + f"""\
    upstream bench_upstream {{
        server 127.0.0.1:{ctx['upstream_port']};
        keepalive {self.keepalive};
        keepalive_requests {KEEPALIVE_REQUESTS};
    }}
    server {{
        listen {listen};
{tls}        location / {{
{extra}            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
{status}}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        checks = [(self.proxy_port, sc.path, sc.headers, sc.tls)]
        if self.status_port:
            checks.insert(0, (self.status_port, "/status", None))
        return [self.nginx, "-p", d, "-c", path], checks


class HAProxy(Target):
    name = "haproxy"

    def __init__(self, haproxy, workers=1):
        self.haproxy, self.workers = haproxy, workers

    def available(self):
        return None if self.haproxy else "haproxy not installed (--install-deps)"

    def prepare(self, d, ctx):
        conf = f"""\
global
    nbthread {self.workers}
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{self.proxy_port}
    default_backend be
backend be
    server up1 127.0.0.1:{ctx['upstream_port']}
"""
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(conf)
        return [self.haproxy, "-db", "-f", path], [
            (self.proxy_port, ctx["scenario"].path, ctx["scenario"].headers)]


class Gatehouse(Target):
    """`gatehouse start -c <dir>/gatehouse.conf` with a kong.yml generated by the scenario."""

    def __init__(self, name, binary, workers=1):
        self.name, self.binary, self.workers = name, binary, workers

    def available(self):
        if not (self.binary and os.access(self.binary, os.X_OK)):
            return (f"gatehouse binary not found at {self.binary} "
                    "(cargo build --release, or --gatehouse PATH)")
        return None

    def prepare(self, d, ctx):
        self.admin_port, self.status_port = procs.free_port(), procs.free_port()
        kong_yml = os.path.join(d, "kong.yml")
        with open(kong_yml, "w") as f:
            f.write(yamlout.dump(ctx["scenario"].kong_config(ctx["upstream_url"])))
        _mkdir(os.path.join(d, "gh"))
        conf = os.path.join(d, "gatehouse.conf")
        settings = {
            "prefix": os.path.join(d, "gh"),
            "database": "off",
            "declarative_config": kong_yml,
            "proxy_listen": f"127.0.0.1:{self.proxy_port} reuseport",
            "admin_listen": f"127.0.0.1:{self.admin_port}",
            "status_listen": f"127.0.0.1:{self.status_port}",
            "nginx_worker_processes": str(self.workers),
            # nginx runs with `access_log off`; compare like with like.
            "proxy_access_log": "off",
        }
        sc = ctx["scenario"]
        if sc.tls:
            cert, key = tls_cert(ctx["run_dir"])
            settings.update(proxy_listen=f"127.0.0.1:{self.proxy_port} ssl http2 reuseport",
                            ssl_cert=cert, ssl_cert_key=key)
        settings.update(sc.gatehouse_settings)
        with open(conf, "w") as f:
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
        return [self.binary, "start", "-c", conf], [
            (self.status_port, "/status", None),
            (self.proxy_port, sc.path, sc.headers, sc.tls)]
