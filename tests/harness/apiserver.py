"""The HTTP front of the Kubernetes API emulator: URL routing, discovery, watch streams,
authentication, RBAC and fault injection over a :class:`tests.harness.store.Store`.

Started by :class:`tests.harness.harness.KubeHarness`; it can be stopped and restarted on
the same port to model an API server that goes away and comes back.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.harness import disruption, errors, openapi, tables
from tests.harness.errors import ApiError
from tests.harness.faults import Faults, fault_error
from tests.harness.rbac import Attributes, Authorizer, Tokens, User, forbidden, unauthorized
from tests.harness.resources import ResourceType, discovery_resources
from tests.harness.schema import FIELD_VALIDATION_MODES, FieldValidation
from tests.harness.selectors import parse_field_selector, parse_label_selector
from tests.harness.store import IDLE, Obj, Store

# What the real server's system:public-info-viewer role lets anonymous callers see.
ANONYMOUS_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version"})
VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-headroom-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class AuditRecord:
    """One served request, so tests can see what a component actually called."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int


@dataclass(frozen=True)
class Route:
    rt: ResourceType
    version: str
    namespace: str
    name: str
    subresource: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer


class _TlsServer(_Server):
    """HTTPS: the handshake runs in the request's thread, not in the accept loop."""

    tls: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(10)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


class ApiServer:
    """An HTTP server on ``host``; ``stop()`` and ``start()`` keep the same port."""

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        *,
        authorize: bool = True,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.authorizer = Authorizer(store) if authorize else None
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.bookmark_interval = bookmark_interval
        self.audit: deque[AuditRecord] = deque(maxlen=20000)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.tls: ssl.SSLContext | None = None
        self.tls_port = 0
        self._tls_httpd: _TlsServer | None = None
        self._tls_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._watch_stops: set[threading.Event] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str:
        """The HTTPS listener's URL (after :meth:`enable_tls`)."""
        return f"https://{self.host}:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = _Server((self.host, self.port), _Handler)
        httpd.api = self
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = self._serve_in_thread(httpd, self.port)
        if self.tls is not None:
            self._start_tls()

    def enable_tls(self, context: ssl.SSLContext) -> None:
        """Serve HTTPS too (on ``tls_port``), now and after every restart."""
        self.tls = context
        if self._httpd is not None and self._tls_httpd is None:
            self._start_tls()

    def _start_tls(self) -> None:
        assert self.tls is not None
        httpd = _TlsServer((self.host, self.tls_port), _Handler)
        httpd.api = self
        httpd.tls = self.tls
        self.tls_port = int(httpd.server_address[1])
        self._tls_httpd = httpd
        self._tls_thread = self._serve_in_thread(httpd, self.tls_port)

    @staticmethod
    def _serve_in_thread(httpd: _Server, port: int) -> threading.Thread:
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"kube-api-{port}",
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Go away: close the listeners, every open connection and every watch."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        tls_httpd, self._tls_httpd = self._tls_httpd, None
        for server in (httpd, tls_httpd):
            if server is not None:
                server.shutdown()
                server.server_close()
        self.drop_watches()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in (self._thread, self._tls_thread):
            if thread is not None:
                thread.join(5)

    def drop_watches(self) -> int:
        """End every open watch stream (cleanly, as a server-side timeout would)."""
        with self._lock:
            stops = list(self._watch_stops)
        for stop in stops:
            stop.set()
        self.store.wake_watchers()
        return len(stops)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _watching(self, stop: threading.Event, add: bool) -> None:
        with self._lock:
            if add:
                self._watch_stops.add(stop)
            else:
                self._watch_stops.discard(stop)


def _version_of(rt: ResourceType, version: str, obj: Obj) -> Obj:
    obj["apiVersion"] = rt.api_version(version)
    return obj


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server: _Server
    _auditing: tuple[str, Attributes] | None = None  # (user, attributes) until recorded

    # ---- plumbing --------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def send_response(self, code: int, message: str | None = None) -> None:
        # The request is audited as its status line goes out, so a client that has its
        # answer (kubectl exiting, a test reading ``audit``) always finds it recorded.
        if self._auditing is not None:
            self._record(code)
        super().send_response(code, message)

    def _record(self, code: int) -> None:
        assert self._auditing is not None
        user_name, attrs = self._auditing
        self._auditing = None
        self.server.api.audit.append(
            AuditRecord(
                user_name,
                attrs.verb,
                attrs.group,
                attrs.resource,
                attrs.subresource,
                attrs.namespace,
                attrs.name,
                code,
            )
        )

    def _send_json(
        self,
        code: int,
        body: Any,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        pairs = list(headers.items()) if isinstance(headers, dict) else headers or []
        for k, v in pairs:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_body(self) -> Any:
        raw = self._read_raw()
        if not raw:
            return None
        media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media in ("application/vnd.kubernetes.protobuf", "application/cbor"):
            # Protobuf and CBOR are not served (the real server takes protobuf for built-in
            # kinds); a 415 makes client-go fall back to JSON.
            raise errors.unsupported_body(media)
        try:
            return json.loads(raw)
        except ValueError as err:
            raise errors.bad_request(f"the request body is not valid JSON: {err}") from err

    # ---- request flow ----------------------------------------------------------------
    def _serve(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        user_name, attrs, code = "", Attributes(verb=method.lower(), path=path), 500
        self._auditing = (user_name, attrs)
        try:
            if method == "PATCH" and "apply-patch" in (self.headers.get("Content-Type") or ""):
                self._read_raw()
                raise errors.unsupported_media_type(self.headers.get("Content-Type") or "")
            body = self._read_body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            rule = api.faults.take(method, path)
            if rule is not None:
                if rule.delay:
                    time.sleep(rule.delay)
                if rule.status is not None:
                    raise fault_error(rule.status)
            user = self._authenticate()
            user_name = user.name if user else ""
            self._auditing = (user_name, attrs)
            route = self._route(path)
            attrs = self._attributes(method, path, query, route, body)
            self._auditing = (user_name, attrs)
            if api.authorizer is not None and not (user is None and path in ANONYMOUS_PATHS):
                if user is None:
                    raise unauthorized()
                if not api.authorizer.allowed(user, attrs):
                    raise forbidden(user, attrs)
            if route is None:
                code = self._serve_discovery(path)
            else:
                code = self._serve_resource(method, route, query, body, attrs.verb)
        except ApiError as err:
            code = err.code
            headers = {"Retry-After": "1"} if err.code == 429 else None
            self._send_json(err.code, err.status(), headers)
        except (BrokenPipeError, ConnectionResetError):
            code = 499
            self.close_connection = True
        finally:
            if self._auditing is not None:  # nothing was sent (the client went away first)
                self._record(code)

    def _authenticate(self) -> User | None:
        header = self.headers.get("Authorization") or ""
        if not header.lower().startswith("bearer "):
            return None
        user = self.server.api.tokens.user(header[7:].strip())
        if user is None:
            raise unauthorized()
        return user

    def _route(self, path: str) -> Route | None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        if not rest:
            return None
        store = self.server.api.store
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        rt = store.type(group, rest[0], version)
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        eviction = sub == "eviction" and rt.key == ("", "pods")
        if sub and not (
            (sub == "status" and rt.status) or (sub == "scale" and rt.scale) or eviction
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if namespace and not rt.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return Route(rt, version, namespace, name, sub)

    def _attributes(
        self, method: str, path: str, query: dict[str, str], route: Route | None, body: Any
    ) -> Attributes:
        if route is None:
            return Attributes(verb=method.lower(), path=path)
        watching = query.get("watch") in ("true", "1")
        verb = {
            "GET": "watch" if watching else ("get" if route.name else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if route.name else "deletecollection",
        }[method]
        return Attributes(
            verb=verb,
            group=route.rt.group,
            resource=route.rt.plural,
            subresource=route.subresource,
            namespace=route.namespace,
            name=route.name,
            path=path,
        )

    def _client_gone(self) -> bool:
        """True when the watching client closed its end (readable with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            # Peek at the raw socket: an SSLSocket refuses recv flags, and a FIN is the same.
            return bool(readable) and socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # ---- discovery -------------------------------------------------------------------
    def _serve_discovery(self, path: str) -> int:
        store = self.server.api.store
        types = store.types()
        parts = [p for p in path.split("/") if p]
        body: Any
        if path == "/version":
            body = VERSION_INFO
        elif path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(data)
            return 200
        elif path == "/openapi/v3":
            body = openapi.root_document(
                types, lambda g, v: openapi.group_version_document(types, g, v)
            )
        elif path.startswith("/openapi/v3/"):
            gv = path.removeprefix("/openapi/v3/")
            known = {openapi.gv_path(g, v): (g, v) for g, v in openapi.group_versions(types)}
            if gv not in known:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            body = openapi.group_version_document(types, *known[gv])
        elif path == "/api":
            body = {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {
                        "clientCIDR": "0.0.0.0/0",
                        "serverAddress": f"{self.server.api.host}:{self.server.api.port}",
                    }
                ],
            }
        elif path == "/api/v1":
            body = self._resource_list("v1", [t for t in types if t.group == ""])
        elif path == "/apis":
            body = {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    self._group(g, types) for g in sorted({t.group for t in types if t.group})
                ],
            }
        elif len(parts) == 2 and parts[0] == "apis":
            if not any(t.group == parts[1] for t in types):
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            body = self._group(parts[1], types)
        elif len(parts) == 3 and parts[0] == "apis":
            members = [t for t in types if t.group == parts[1] and parts[2] in t.versions]
            if not members:
                raise ApiError(
                    404, "NotFound", "the server could not find the requested resource", {}
                )
            body = self._resource_list(f"{parts[1]}/{parts[2]}", members, parts[2])
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        self._send_json(200, body)
        return 200

    @staticmethod
    def _group(group: str, types: list[ResourceType]) -> Obj:
        versions: list[str] = []
        for t in types:
            if t.group == group:
                versions += [v for v in t.versions if v not in versions]
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    @staticmethod
    def _resource_list(group_version: str, types: list[ResourceType], version: str = "v1") -> Obj:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": discovery_resources(types, version),
        }

    # ---- resources -------------------------------------------------------------------
    def _serve_resource(
        self, method: str, route: Route, query: dict[str, str], body: Any, verb: str
    ) -> int:
        store = self.server.api.store
        rt, version, ns, name, sub = (
            route.rt,
            route.version,
            route.namespace,
            route.name,
            route.subresource,
        )
        if sub == "eviction":
            if verb != "create":
                raise errors.method_not_allowed()
            self._send_json(201, disruption.evict(store, ns, name, body))
            return 201
        if verb == "watch":
            return self._watch(route, query)
        if verb == "list":
            return self._list(route, query)
        if verb in ("create", "update", "patch") and body is None:
            raise errors.bad_request("the request body is empty")
        mode = query.get("fieldValidation") or "Warn"  # the real server's default
        if mode not in FIELD_VALIDATION_MODES:
            raise errors.bad_request(
                f'invalid fieldValidation directive "{mode}": must be one of '
                + ", ".join(FIELD_VALIDATION_MODES)
            )
        validation = FieldValidation(mode)
        result: Obj
        code = 200
        if verb == "get":
            result = store.get_scale(rt, ns, name) if sub == "scale" else store.get(rt, ns, name)
        elif verb == "create":
            if name:
                raise errors.method_not_allowed()
            if not isinstance(body, dict):
                raise errors.bad_request("the request body is not an object")
            result, code = store.create(rt, ns, body, validation=validation), 201
        elif verb == "update":
            if not isinstance(body, dict):
                raise errors.bad_request("the request body is not an object")
            if sub == "scale":
                result = store.update_scale(rt, ns, name, body)
            else:
                result = store.update(
                    rt, ns, name, body, subresource=sub or None, validation=validation
                )
        elif verb == "patch":
            ctype = self.headers.get("Content-Type") or ""
            result = store.patch(
                rt, ns, name, ctype, body, subresource=sub or None, validation=validation
            )
        elif verb == "delete":
            pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
            obj, removed = store.delete(
                rt,
                ns,
                name,
                precondition_rv=pre.get("resourceVersion"),
                precondition_uid=pre.get("uid"),
            )
            if removed and not rt.return_deleted:
                details = {"name": name, "kind": rt.plural, "uid": obj["metadata"]["uid"]}
                if rt.group:
                    details["group"] = rt.group
                result = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            else:
                result = obj
        else:  # deletecollection
            items, _, _ = store.list_objects(
                rt,
                ns or None,
                parse_label_selector(query.get("labelSelector")),
                parse_field_selector(query.get("fieldSelector"), rt.plural),
            )
            for item in items:
                try:
                    store.delete(
                        rt, item["metadata"].get("namespace", ""), item["metadata"]["name"]
                    )
                except ApiError:
                    pass
            result = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        if result.get("kind") not in ("Status", "Scale"):
            result = _version_of(rt, version, result)
            table_version = tables.wants_table(self.headers.get("Accept"))
            if verb == "get" and table_version:
                result = tables.to_table(
                    rt,
                    version,
                    [result],
                    resource_version=result["metadata"].get("resourceVersion", ""),
                    table_version=table_version,
                    include_object=query.get("includeObject") or "Metadata",
                )
        # One header per dropped field, as the real server warns (kubectl prints them).
        warnings = [("Warning", f"299 - {json.dumps(w)}") for w in validation.warnings]
        self._send_json(code, result, warnings)
        return code

    def _list(self, route: Route, query: dict[str, str]) -> int:
        store = self.server.api.store
        rt = route.rt
        rv = query.get("resourceVersion")
        if rv and rv != "0" and query.get("resourceVersionMatch") == "Exact":
            if int(rv) < store.compacted_rv:
                raise errors.gone(f"too old resource version: {rv} ({store.compacted_rv})")
        items, current, token = store.list_objects(
            rt,
            route.namespace or None,
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector"), rt.plural),
            limit=int(query.get("limit") or 0),
            continue_token=query.get("continue") or None,
        )
        table_version = tables.wants_table(self.headers.get("Accept"))
        if table_version:
            table = tables.to_table(
                rt,
                route.version,
                [_version_of(rt, route.version, i) for i in items],
                resource_version=str(current),
                table_version=table_version,
                include_object=query.get("includeObject") or "Metadata",
                continue_token=token,
            )
            self._send_json(200, table)
            return 200
        meta: Obj = {"resourceVersion": str(current)}
        if token:
            meta["continue"] = token
        body = {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version(route.version),
            "metadata": meta,
            "items": [_version_of(rt, route.version, i) for i in items],
        }
        self._send_json(200, body)
        return 200

    def _watch(self, route: Route, query: dict[str, str]) -> int:
        api = self.server.api
        rt = route.rt
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        stop = threading.Event()
        events = api.store.watch(
            rt,
            route.namespace or None,
            query.get("resourceVersion"),
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector"), rt.plural),
            timeout=timeout,
            bookmark_interval=api.bookmark_interval if bookmarks else None,
            stop=stop,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # kubectl get -w asks for Tables: each event's object is a one-row Table, the
        # column definitions in the first one only (as kube-apiserver sends them).
        table_version = tables.wants_table(self.headers.get("Accept"))
        first_row = True
        api._watching(stop, True)
        try:
            for event in events:
                if event is IDLE:
                    if self._client_gone():
                        return 200
                    continue
                if event["type"] != "ERROR" and event["type"] != "BOOKMARK":
                    _version_of(rt, route.version, event["object"])
                    if table_version:
                        obj = event["object"]
                        table = tables.to_table(
                            rt,
                            route.version,
                            [obj],
                            resource_version=str(obj["metadata"].get("resourceVersion", "")),
                            table_version=table_version,
                            include_object=query.get("includeObject") or "Metadata",
                        )
                        if not first_row:
                            table["columnDefinitions"] = []
                        first_row = False
                        event = {"type": event["type"], "object": table}
                line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                if not api.running:
                    raise ConnectionResetError
            if not api.running:
                raise ConnectionResetError  # the API went away: no clean end of stream
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            api._watching(stop, False)
            stop.set()
        return 200
