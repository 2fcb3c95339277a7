"""Real servers for tests, on free loopback ports, stopped when the test is done."""

import os
import socket
import subprocess
import sys
import time
import warnings

import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, process, log_path, timeout=20.0, verify=True):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early: " + open(log_path).read()[-2000:])
        try:
            with warnings.catch_warnings():
                # Readiness only: a TLS server's certificate is checked by the tests themselves.
                warnings.simplefilter("ignore")
                requests.get(url, timeout=1, verify=verify)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError("server at {} did not come up; log: {}".format(url, open(log_path).read()[-2000:]))


class Registry:
    """The CNCF distribution registry (Debian docker-registry), optionally with htpasswd basic auth."""

    def __init__(self, workdir, username=None, password=None, port=None, auth_config=None, tls=None, in_memory=False):
        """tls: (certificate, key) PEM paths to serve HTTPS. in_memory: blobs in memory, not on this disk."""
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1:{}".format(self.port)
        self.url = ("https://" if tls else "http://") + self.host
        self.username, self.password = username, password
        os.makedirs(workdir, exist_ok=True)
        auth = ""
        if username:
            htpasswd = os.path.join(workdir, "htpasswd")
            line = subprocess.run(
                ["htpasswd", "-Bbn", username, password], check=True, capture_output=True, text=True
            ).stdout.strip()
            with open(htpasswd, "w") as handle:
                handle.write(line + "\n")
            auth = "auth:\n  htpasswd:\n    realm: releasekit-test\n    path: {}\n".format(htpasswd)
        if auth_config:
            auth = auth_config
        config = os.path.join(workdir, "config.yml")
        with open(config, "w") as handle:
            handle.write(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                "storage:\n  {}\n  delete:\n    enabled: true\n"
                "http:\n  addr: {}\n{}{}".format(
                    "inmemory: {}" if in_memory else "filesystem:\n    rootdirectory: " + os.path.join(workdir, "data"),
                    self.host,
                    "  tls:\n    certificate: {}\n    key: {}\n".format(*tls) if tls else "", auth)
            )
        self.log_path = os.path.join(workdir, "registry.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", config], stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for_http(self.url + "/v2/", self.process, self.log_path, verify=False)

    def skopeo_args(self):
        args = ["--tls-verify=false"]
        if self.username:
            args.append("--creds={}:{}".format(self.username, self.password))
        return args

    def inspect(self, reference):
        """skopeo inspect of host/reference; None when the image is not there."""
        result = subprocess.run(
            ["skopeo", "inspect", *self.skopeo_args(), "docker://{}/{}".format(self.host, reference)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            return None
        import json

        return json.loads(result.stdout)

    def tags(self, repository):
        auth = (self.username, self.password) if self.username else None
        response = requests.get("{}/v2/{}/tags/list".format(self.url, repository), auth=auth, timeout=10)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def image_tags(self, repository):
        """The tags releases push, without the referrers fallback's `sha256-<hex>` tags (their images' provenance)."""
        return [tag for tag in self.tags(repository) if not tag.startswith("sha256-")]

    def catalog(self):
        """Every repository: the registry answers 100 a page, and a shared registry holds more."""
        auth = (self.username, self.password) if self.username else None
        repositories, url = [], self.url + "/v2/_catalog?n=1000"
        while url:
            response = requests.get(url, auth=auth, timeout=10)
            response.raise_for_status()
            repositories += response.json().get("repositories") or []
            following = response.links.get("next", {}).get("url")
            url = self.url + following if following and following.startswith("/") else following
        return repositories

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _stop(process, log):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


def _start_nginx(workdir, config_text, ready_url):
    """nginx with this config, in the foreground under workdir; returns (process, log file) once it answers."""
    os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
    config = os.path.join(workdir, "nginx.conf")
    with open(config, "w") as handle:
        handle.write(config_text)
    log = open(os.path.join(workdir, "stdout.log"), "w")
    process = subprocess.Popen(["nginx", "-c", config, "-p", workdir], stdout=log, stderr=subprocess.STDOUT)
    wait_for_http(ready_url, process, log.name, verify=False)
    return process, log


class NginxStore:
    """A real HTTP PUT store: Debian nginx-light with WebDAV PUT/DELETE/MKCOL; writes need basic auth when a
    username is given. It also serves Bazel's HTTP remote cache protocol (GET and PUT of /ac/ and /cas/).

    Directories answer a GET with nginx's JSON autoindex (the run history lists them). /nolock/ takes PUT and DELETE
    but answers 405 to MKCOL, as an HTTP store without WebDAV collections does: no lock can be taken there. tls:
    (certificate, key) PEM paths to serve HTTPS (on the same port).
    /refusing/, /refusing-400/ and /refusing-403/ answer 409, 400 and 403 to a PUT of a file that exists, as Nexus and
    Artifactory do on redeploy. /bearer/ takes writes with `Authorization: Bearer <STORE_TOKEN>` only. /elsewhere/
    redirects to the same files on a second port (another origin), and /renamed/ to / on this one; requests.log says,
    per request, whether it carried an Authorization header (never its value), and its bytes: the body sent back, the
    body received (Content-Length) and the whole request received.
    """

    def __init__(self, workdir, username=None, password=None, tls=None):
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        os.makedirs(self.root, exist_ok=True)
        self.port, self.elsewhere_port = free_port(), free_port()
        self.url = "{}://127.0.0.1:{}".format("https" if tls else "http", self.port)
        self.request_log = os.path.join(workdir, "requests.log")
        self.username, self.password = username, password
        htpasswd = os.path.join(workdir, "htpasswd")
        auth = ""
        if username:
            subprocess.run(["htpasswd", "-bc", htpasswd, username, password], check=True, capture_output=True)
            auth = ('limit_except GET HEAD {{ auth_basic "releasekit test store"; auth_basic_user_file {}; '
                    '}}').format(htpasswd)
        self.process, self.log = _start_nginx(
            workdir, _NGINX_CONFIG.format(workdir=workdir, root=self.root, port=self.port, auth=auth,
                                         elsewhere_port=self.elsewhere_port, token=STORE_TOKEN,
                                         refusing=_REFUSING_REDEPLOY, tls=_tls_directives(tls)), self.url + "/")

    def path(self, relative):
        return os.path.join(self.root, relative)

    def stop(self):
        _stop(self.process, self.log)


def _tls_directives(tls):
    if not tls:
        return ""
    return " ssl; ssl_certificate {}; ssl_certificate_key {}".format(*tls)


# A store token no output may contain, for the bearer-token location.
STORE_TOKEN = "store-token-never-printed-5b1e"
# A location that stores new files and refuses to overwrite one that exists, with the status that follows.
_REFUSING_REDEPLOY = ("dav_methods PUT DELETE MKCOL; create_full_put_path on; set $redeploy \"\"; "
                      "if (-f $request_filename) { set $redeploy \"exists\"; } "
                      "if ($request_method = PUT) { set $redeploy \"${redeploy}-put\"; } "
                      "if ($redeploy = \"exists-put\") { return")

_NGINX_CONFIG = """
user root;
worker_processes 2;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 128; }}
http {{
  map $http_authorization $with_credentials {{ "" no; default yes; }}
  log_format credentials '$server_port $request_method $uri credentials=$with_credentials status=$status via=$http_via '
                         'sent=$body_bytes_sent body=$content_length received=$request_length';
  access_log {workdir}/requests.log credentials;
  client_body_temp_path {workdir}/tmp;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{elsewhere_port};
    root {root};
  }}
  server {{
    listen 127.0.0.1:{port}{tls};
    root {root};
    location /refusing/ {{ {refusing} 409; }} }}
    location /refusing-400/ {{ {refusing} 400; }} }}
    location /refusing-403/ {{ {refusing} 403; }} }}
    location /bearer/ {{
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      set $bearer_write "";
      if ($request_method !~ ^(GET|HEAD)$) {{ set $bearer_write "w"; }}
      if ($http_authorization != "Bearer {token}") {{ set $bearer_write "${{bearer_write}}-unauthorised"; }}
      if ($bearer_write = "w-unauthorised") {{ return 401; }}
    }}
    location /elsewhere/ {{
      rewrite ^/elsewhere/(.*)$ http://127.0.0.1:{elsewhere_port}/$1 redirect;
    }}
    location /renamed/ {{
      rewrite ^/renamed/(.*)$ /$1 redirect;
    }}
    location /nolock/ {{
      dav_methods PUT DELETE;
      create_full_put_path on;
      autoindex on;
      autoindex_format json;
      {auth}
    }}
    location / {{
      dav_methods PUT DELETE MKCOL;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      autoindex on;
      autoindex_format json;
      {auth}
    }}
  }}
}}
"""


class MotoS3:
    """An S3 endpoint (moto's server) on loopback, with one bucket."""

    def __init__(self, workdir, bucket="releases"):
        import boto3

        self.port = free_port()
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.bucket = bucket
        self.log = open(os.path.join(workdir, "moto.log"), "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_http(self.url, self.process, self.log.name)
        self.environ = {"RELEASEKIT_S3_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_DEFAULT_REGION": "us-east-1"}
        self.client = boto3.client("s3", endpoint_url=self.url, aws_access_key_id="testing",
                                   aws_secret_access_key="testing-secret", region_name="us-east-1")
        self.client.create_bucket(Bucket=bucket)

    def get(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def stop(self):
        _stop(self.process, self.log)


class MavenClient:
    """Real Maven (Debian's), resolving with strict checksums from a store.

    Debian's local repository (central's mirror) has no checksum files, so a first run without
    -C puts the dependency plugin in a local repository; each get then starts from a copy of it,
    so that what it fetches from the store is checked strictly and nothing is served from cache.
    """

    def __init__(self, workdir):
        self.workdir = workdir
        self.settings = os.path.join(workdir, "settings.xml")
        with open(self.settings, "w") as handle:
            handle.write(
                "<settings><mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf>"
                "<url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>\n"
            )
        self.warm_repo = os.path.join(workdir, "warm-repo")
        result = self._mvn(self.warm_repo, [DEPENDENCY_GET, "-Dartifact=junit:junit:4.13.2", "-Dtransitive=false"])
        if result.returncode != 0:
            raise RuntimeError("maven warm-up failed:\n" + result.stdout[-3000:])
        self.runs = 0

    def _mvn(self, repo, args, strict=False):
        command = ["mvn", "-B", "-q", "-s", self.settings, "-Dmaven.repo.local=" + repo, *args]
        if strict:
            command.insert(1, "-C")
        return subprocess.run(command, capture_output=True, text=True, cwd=self.workdir, timeout=300)

    def get(self, artifact, repository_url):
        """mvn -C dependency:get of group:artifact:version[:packaging[:classifier]] with its dependencies."""
        import shutil

        self.runs += 1
        repo = os.path.join(self.workdir, "repo-{}".format(self.runs))
        shutil.copytree(self.warm_repo, repo)
        result = self._mvn(repo, [DEPENDENCY_GET, "-Dartifact=" + artifact,
                                  "-DremoteRepositories=store::default::" + repository_url], strict=True)
        result.repo = repo
        return result


DEPENDENCY_GET = "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get"


class RegistryProxy:
    """nginx in front of a registry, denying pushes to some repositories (403), as an access policy would."""

    def __init__(self, workdir, registry, denied=()):
        self.port = free_port()
        self.host = "127.0.0.1:{}".format(self.port)
        denials = "".join("    location /v2/{}/ {{ return 403; }}\n".format(name) for name in denied)
        config = _PROXY_CONFIG.format(workdir=workdir, port=self.port, upstream=registry.host, denials=denials)
        self.process, self.log = _start_nginx(workdir, config, "http://{}/v2/".format(self.host))

    def stop(self):
        _stop(self.process, self.log)


_PROXY_CONFIG = """
user root;
worker_processes 2;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/tmp;
  proxy_temp_path {workdir}/tmp;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
{denials}    location / {{
      proxy_pass http://{upstream};
      proxy_set_header Host $http_host;
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
"""
