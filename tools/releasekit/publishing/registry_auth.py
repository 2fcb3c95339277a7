"""How a registry wants to be authenticated: a static bearer token, Basic, or the Bearer token challenge
(WWW-Authenticate realm, service, scope), with a token per scope. Apart from the upload logic in registry.py."""

import re
import threading

from releasekit.core import environment
from releasekit.core.errors import AuthError
from releasekit.core.http import basic_authorization, origin, raise_for_transient, with_retries
from releasekit.core.redact import register_secret

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class RegistryAuth:
    """The Authorization header for each scope of one registry host. Thread-safe."""

    def __init__(self, host, credentials, http, policy):
        self.host, self.credentials, self.http, self.policy = host, credentials, http, policy
        self._auth_lock = threading.Lock()
        self._scheme = "bearer-static" if credentials.token else None
        self._challenge = {}
        self._tokens = {}

    @property
    def uses_token_challenge(self):
        return self._scheme == "bearer"

    def authorization(self, scope):
        with self._auth_lock:
            if self._scheme == "bearer-static":
                return "Bearer " + self.credentials.token
            if self._scheme == "basic" and self.credentials.has_basic:
                return basic_authorization(self.credentials.username, self.credentials.password)
            if self._scheme == "bearer":
                token = self._tokens.get(scope)
                return "Bearer " + token if token else None
        return None

    def handle_challenge(self, response, scope, what, sent=None):
        """Learn how the registry wants us to authenticate. Returns True when a retry may now succeed.

        sent is the Authorization the refused request carried: a 401 only means "these credentials are
        refused" when it carried the current ones. Otherwise another thread changed them meanwhile.
        """
        header = response.headers.get("WWW-Authenticate", "")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "basic":
            if not self.credentials.has_basic:
                username, password = self.credentials.variables or (environment.REGISTRY_USERNAME,
                                                                    environment.REGISTRY_PASSWORD)
                raise AuthError(
                    "{}: the registry {} requires credentials and none were found. Set {} and {}, name the "
                    "variables that hold them under credentials.{} in releasekit.yaml, or log in with `docker login "
                    "{}`.".format(what, self.host, username, password, self.host, self.host)
                )
            with self._auth_lock:
                self._scheme = "basic"
            return sent is None or not sent.startswith("Basic ")
        if scheme == "bearer":
            params = dict(_CHALLENGE_RE.findall(header))
            with self._auth_lock:
                self._scheme = "bearer"
                self._challenge = params
                current = self._tokens.get(scope)
            if current and sent != "Bearer " + current:
                return True  # refreshed by another thread since this request went out
            self.fetch_token(scope, what)
            return True
        return False

    def fetch_token(self, scope, what):
        realm = self._challenge.get("realm")
        if not realm:
            raise AuthError("{}: the registry {} sent a Bearer challenge without a realm.".format(what, self.host))
        query = [("scope", s) for s in scope.split(" ") if s]
        if self._challenge.get("service"):
            query.insert(0, ("service", self._challenge["service"]))
        auth = (self.credentials.username, self.credentials.password) if self.credentials.has_basic else None

        def fetch():
            response = self.http.get(realm, params=query, auth=auth, timeout=self.policy.timeout)
            raise_for_transient(response, what + " (token)")
            return response

        response = with_retries(fetch, self.policy, "{}: token from {}".format(what, origin(realm)))
        if response.status_code in (401, 403):
            raise AuthError(
                "{}: the token service of {} refused the credentials from {} (HTTP {}). Check the "
                "username and password.".format(what, self.host, self.credentials.source, response.status_code)
            )
        if response.status_code != 200:
            raise AuthError("{}: the token service answered HTTP {}.".format(what, response.status_code))
        try:
            body = response.json()
        except ValueError:
            raise AuthError("{}: the token service did not answer with JSON.".format(what)) from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise AuthError("{}: the token service answered without a token.".format(what))
        register_secret(token)
        with self._auth_lock:
            self._tokens[scope] = token
