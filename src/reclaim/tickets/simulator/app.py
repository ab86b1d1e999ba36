"""The simulator's HTTP face: a Starlette app speaking Jira's REST v2/v3, with faults in front.

Status codes and bodies follow Atlassian's OpenAPI document (``ErrorCollection`` for refusals,
201 for creates, 204 for transitions and edits); tests validate answers against it.
"""

from __future__ import annotations

__all__ = ["SimulatorApp", "build_app"]

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reclaim.tickets.simulator.body import decode_bulk, decode_create
from reclaim.tickets.simulator.faults import FaultPlan, Faults
from reclaim.tickets.simulator.jql import JqlError, parse_jql
from reclaim.tickets.simulator.render import Renderer, jira_time
from reclaim.tickets.simulator.state import JiraFault, JiraState, SimChange, SimComment, SimIssue
from reclaim.tickets.simulator.webhooks import WebhookHub

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOSE_HEADER = "x-reclaim-sim-lose"
DEFAULT_FIELDS_JQL = ("id",)


class LostResponse(Exception):
    """Raised after the answer's headers went out, so the client's connection breaks mid-answer."""


def _error(status: int, messages: list[str], errors: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errorMessages": messages, "errors": errors or {}}, status_code=status)


def _encode_token(cursor: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{cursor}:{offset}".encode()).decode()


def _decode_token(token: str) -> tuple[int, int]:
    try:
        cursor, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        return int(cursor), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise JiraFault(400, ["The provided next page token is invalid or expired."]) from exc


class SimulatorApp:
    """Holds the state, the faults and the webhook hub; ``asgi`` is the server entry point."""

    def __init__(
        self,
        state: JiraState | None = None,
        *,
        faults: FaultPlan | None = None,
        accounts: dict[str, str] | None = None,
        deployment_type: str = "Cloud",
        base_url: str = "http://127.0.0.1",
        fault_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state or JiraState()
        self.faults = Faults(faults, clock=fault_clock)
        self.hub = WebhookHub()
        self.accounts = accounts
        self.deployment_type = deployment_type
        self.base_url = base_url
        self.state.listeners.append(self._on_change)
        self.starlette = Starlette(routes=self._routes())

    # -- plumbing ------------------------------------------------------------------------

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/rest/"):
            await self.starlette(scope, receive, send)
            return
        await self.faults.wait_latency()
        retry_after = self.faults.admit()
        if retry_after is not None:
            response: Response = JSONResponse(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}},
                status_code=429,
                headers={
                    "Retry-After": str(int(retry_after)),
                    "RateLimit-Reason": "jira-burst-based",
                    "X-RateLimit-Limit": str(int(self.faults.plan.rate_limit or 0)),
                },
            )
            await response(scope, receive, send)
            return
        status = self.faults.server_error()
        if status is not None:
            await _error(status, ["The server is temporarily unavailable."])(scope, receive, send)
            return

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.decode() != LOSE_HEADER
                ]
                lose = len(headers) != len(message.get("headers", []))
                await send({**message, "headers": headers})
                if lose:
                    raise LostResponse("simulated: the create happened, the answer is lost")
                return
            await send(message)

        await self.starlette(scope, receive, guarded_send)

    def _routes(self) -> list[Route]:
        api = "/rest/api/{version:int}"
        handlers: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
            (f"{api}/serverInfo", self.server_info, ["GET"]),
            (f"{api}/myself", self.myself, ["GET"]),
            (f"{api}/field", self.field, ["GET"]),
            (f"{api}/project", self.projects, ["GET"]),
            (f"{api}/project/{{key}}", self.project, ["GET"]),
            (f"{api}/project/{{key}}/statuses", self.project_statuses, ["GET"]),
            (f"{api}/issue", self.create, ["POST"]),
            (f"{api}/issue/bulk", self.create_bulk, ["POST"]),
            (f"{api}/issue/{{key}}", self.issue, ["GET", "PUT"]),
            (f"{api}/issue/{{key}}/transitions", self.transitions, ["GET", "POST"]),
            (f"{api}/issue/{{key}}/comment", self.comments, ["GET", "POST"]),
            (f"{api}/issue/{{key}}/properties", self.property_keys, ["GET"]),
            (f"{api}/issue/{{key}}/properties/{{prop}}", self.property, ["GET", "PUT", "DELETE"]),
            (f"{api}/issue/{{key}}/changelog", self.changelog, ["GET"]),
            (f"{api}/search/jql", self.search_jql, ["GET", "POST"]),
            (f"{api}/search", self.search_offset, ["GET", "POST"]),
            ("/rest/webhooks/1.0/webhook", self.webhooks, ["GET", "POST"]),
            ("/rest/webhooks/1.0/webhook/{hook:int}", self.webhook, ["GET", "DELETE"]),
            ("/_sim/faults", self.sim_faults, ["GET", "PUT"]),
            ("/_sim/stats", self.sim_stats, ["GET"]),
        ]
        return [
            Route(path, self._wrap(handler), methods=methods) for path, handler, methods in handlers
        ]

    def _wrap(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if request.url.path.startswith("/rest/"):
                denied = self._authenticate(request)
                if denied is not None:
                    return denied
            try:
                return await handler(request)
            except JiraFault as fault:
                return JSONResponse(fault.body(), status_code=fault.status)

        return endpoint

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        user = None
        if header.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                email, token = "", ""
            if self.accounts is None or self.accounts.get(email) == token:
                user = email
        elif header.startswith("Bearer "):
            token = header[7:]
            if self.accounts is None or token in self.accounts.values():
                user = "pat-user"
        if user is None:
            return _error(
                401,
                ["You are not authenticated. Authentication required to perform this operation."],
            )
        request.state.user = user
        return None

    def _renderer(self, request: Request) -> Renderer:
        return Renderer(self._base(request), int(request.path_params.get("version", 3)))

    def _base(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def _json(self, request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise JiraFault(400, [f"Unexpected character in the request body: {exc}"]) from exc

    def _lost(self, response: Response) -> Response:
        if self.faults.lose_this_create():
            response.headers[LOSE_HEADER] = "1"
        return response

    def _lost_write(self, response: Response) -> Response:
        if not self.faults.lose_this_write():
            return response
        if response.status_code == 204:
            # A 204 is complete at its headers: only a promised body can go missing.
            response = JSONResponse({}, status_code=200)
        response.headers[LOSE_HEADER] = "1"
        return response

    # -- site ----------------------------------------------------------------------------

    async def server_info(self, request: Request) -> Response:
        now = self.state.now_ms()
        return JSONResponse(
            {
                "baseUrl": self._base(request),
                "displayUrl": self._base(request),
                "version": "1001.0.0-SNAPSHOT" if self.deployment_type == "Cloud" else "9.12.0",
                "versionNumbers": [1001, 0, 0] if self.deployment_type == "Cloud" else [9, 12, 0],
                "deploymentType": self.deployment_type,
                "buildNumber": 100276,
                "buildDate": "2024-01-01T00:00:00.000+00:00",
                "serverTime": jira_time(now, rfc3339=True),
                "scmInfo": "reclaim-simulator",
                "serverTitle": "Jira (reclaim simulator)",
                "serverTimeZone": str(self.state.zone),
            }
        )

    async def myself(self, request: Request) -> Response:
        user = self._renderer(request).user(request.state.user) or {}
        return JSONResponse(
            {
                **user,
                "emailAddress": request.state.user,
                "timeZone": str(self.state.zone),
                "locale": "en_US",
            }
        )

    async def field(self, request: Request) -> Response:
        return JSONResponse(self._renderer(request).fields())

    async def projects(self, request: Request) -> Response:
        renderer = self._renderer(request)
        return JSONResponse([renderer.project(p) for p in self.state.projects.values()])

    async def project(self, request: Request) -> Response:
        project = self.state.project(request.path_params["key"])
        return JSONResponse(self._renderer(request).project(project))

    async def project_statuses(self, request: Request) -> Response:
        project = self.state.project(request.path_params["key"])
        renderer = self._renderer(request)
        statuses = [renderer.status(project, s) for s in project.workflow.statuses]
        return JSONResponse(
            [
                {
                    "self": renderer.api(f"issuetype/{type_id}"),
                    "id": type_id,
                    "name": name,
                    "subtask": False,
                    "statuses": statuses,
                }
                for type_id, name in project.issue_types
            ]
        )

    # -- issues --------------------------------------------------------------------------

    def _create_one(self, body: Any, *, author: str, adf: bool) -> SimIssue:
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            raise JiraFault(400, [], {"fields": "The request must contain a fields object."})
        return self.state.create(
            body["fields"], author=author, adf=adf, properties=body.get("properties") or ()
        )

    @staticmethod
    def _created(renderer: Renderer, issue: SimIssue) -> dict[str, Any]:
        return {"id": str(issue.id), "key": issue.key, "self": renderer.api(f"issue/{issue.id}")}

    async def create(self, request: Request) -> Response:
        body = decode_create(await request.body())
        if body is None:
            body = await self._json(request)
        adf = request.path_params["version"] >= 3
        issue = self._create_one(body, author=request.state.user, adf=adf)
        created = self._created(self._renderer(request), issue)
        return self._lost(JSONResponse(created, status_code=201))

    async def create_bulk(self, request: Request) -> Response:
        updates: Any = decode_bulk(await request.body())
        if updates is None:
            body = await self._json(request)
            updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list):
            raise JiraFault(400, ["issueUpdates is required."])
        if len(updates) > 50:
            raise JiraFault(400, ["The number of issues to create must not exceed 50."])
        issues: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        renderer = self._renderer(request)
        author, adf = request.state.user, request.path_params["version"] >= 3
        for number, update in enumerate(updates):
            try:
                issue = self._create_one(update, author=author, adf=adf)
                issues.append(self._created(renderer, issue))
            except JiraFault as fault:
                errors.append(
                    {
                        "status": fault.status,
                        "elementErrors": fault.body(),
                        "failedElementNumber": number,
                    }
                )
        status = 201 if issues or not updates else 400
        return self._lost(JSONResponse({"issues": issues, "errors": errors}, status_code=status))

    async def issue(self, request: Request) -> Response:
        key = request.path_params["key"]
        if request.method == "PUT":
            body = await self._json(request)
            self.state.edit(
                key,
                body.get("fields") or {},
                body.get("update") or {},
                author=request.state.user,
                adf=request.path_params["version"] >= 3,
            )
            return Response(status_code=204)
        issue = self.state.issue(key)
        fields = request.query_params.get("fields")
        properties = [p for p in request.query_params.get("properties", "").split(",") if p]
        expand = request.query_params.get("expand", "").split(",")
        return JSONResponse(
            self._renderer(request).issue(
                issue, fields.split(",") if fields else None, properties=properties, expand=expand
            )
        )

    async def transitions(self, request: Request) -> Response:
        issue = self.state.issue(request.path_params["key"])
        if request.method == "GET":
            renderer = self._renderer(request)
            available = issue.project.workflow.available(issue.status)
            return JSONResponse(
                {
                    "expand": "transitions",
                    "transitions": [renderer.transition(issue.project, t) for t in available],
                }
            )
        body = await self._json(request)
        transition = body.get("transition") or {}
        if not transition.get("id"):
            raise JiraFault(400, ["Missing 'transition' identifier"])
        resolution = ((body.get("fields") or {}).get("resolution") or {}).get("name")
        comments = [
            op["add"].get("body")
            for op in (body.get("update") or {}).get("comment") or ()
            if "add" in op
        ]
        self.state.transition(
            issue.key,
            str(transition["id"]),
            author=request.state.user,
            resolution=resolution,
            comment=comments[0] if comments else None,
        )
        return self._lost_write(Response(status_code=204))

    async def comments(self, request: Request) -> Response:
        issue = self.state.issue(request.path_params["key"])
        renderer = self._renderer(request)
        if request.method == "POST":
            body = await self._json(request)
            comment = self.state.comment(issue.key, body.get("body"), author=request.state.user)
            return self._lost_write(JSONResponse(renderer.comment(issue, comment), status_code=201))
        start = int(request.query_params.get("startAt", 0))
        size = int(request.query_params.get("maxResults", 5000))
        page = issue.comments[start : start + size]
        return JSONResponse(
            {
                "startAt": start,
                "maxResults": size,
                "total": len(issue.comments),
                "comments": [renderer.comment(issue, c) for c in page],
            }
        )

    async def property_keys(self, request: Request) -> Response:
        issue = self.state.issue(request.path_params["key"])
        base = self._renderer(request).api(f"issue/{issue.id}/properties")
        return JSONResponse({"keys": [{"key": k, "self": f"{base}/{k}"} for k in issue.properties]})

    async def property(self, request: Request) -> Response:
        issue = self.state.issue(request.path_params["key"])
        name = request.path_params["prop"]
        if request.method == "PUT":
            created = self.state.set_property(issue.key, name, await self._json(request))
            return Response(status_code=201 if created else 200)
        if name not in issue.properties:
            raise JiraFault(404, [f"The property with key '{name}' does not exist."])
        if request.method == "DELETE":
            with self.state.lock:
                del issue.properties[name]
            return Response(status_code=204)
        return JSONResponse({"key": name, "value": issue.properties[name]})

    async def changelog(self, request: Request) -> Response:
        if request.path_params["version"] < 3:
            raise JiraFault(404, ["null for uri: changelog"])
        issue = self.state.issue(request.path_params["key"])
        start = int(request.query_params.get("startAt", 0))
        size = min(int(request.query_params.get("maxResults", 100)), 100)
        page = issue.changelog[start : start + size]
        renderer = self._renderer(request)
        return JSONResponse(
            {
                "self": renderer.api(
                    f"issue/{issue.key}/changelog?startAt={start}&maxResults={size}"
                ),
                "startAt": start,
                "maxResults": size,
                "total": len(issue.changelog),
                "isLast": start + len(page) >= len(issue.changelog),
                "values": [renderer.change(c) for c in page],
            }
        )

    # -- search --------------------------------------------------------------------------

    async def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = await self._json(request)
            return body if isinstance(body, dict) else {}
        query = request.query_params
        params: dict[str, Any] = {k: query[k] for k in query}
        for name in ("fields", "properties", "reconcileIssues", "expand"):
            if name in query:
                params[name] = [v for v in query[name].split(",") if v]
        return params

    async def search_jql(self, request: Request) -> Response:
        """Cloud's search: nextPageToken paging, no total, only ``id`` unless fields are asked."""
        params = await self._search_params(request)
        jql = str(params.get("jql") or "")
        try:
            bounded = parse_jql(jql).predicate is not None
        except JqlError as exc:
            raise JiraFault(400, [str(exc)]) from exc
        if not bounded:
            raise JiraFault(
                400,
                [
                    "Unbounded JQL queries are not allowed here. "
                    "Please add a search restriction to your query."
                ],
            )
        fields = params.get("fields") or list(DEFAULT_FIELDS_JQL)
        cap = 5000 if list(fields) == ["id"] else 100
        size = max(1, min(int(params.get("maxResults", 50)), cap))
        token = params.get("nextPageToken")
        if token:
            cursor, offset = _decode_token(str(token))
            issues = self.state.cursor(cursor)
        else:
            reconcile = [int(i) for i in params.get("reconcileIssues") or ()]
            issues = self.state.search(jql, reconcile=reconcile)
            cursor, offset = self.state.open_cursor(issues), 0
        page = issues[offset : offset + size]
        renderer = self._renderer(request)
        expand = str(params.get("expand") or "").split(",")
        body: dict[str, Any] = {
            "issues": [
                renderer.issue(i, fields, properties=params.get("properties") or (), expand=expand)
                for i in page
            ],
            "isLast": offset + size >= len(issues),
        }
        if not body["isLast"]:
            body["nextPageToken"] = _encode_token(cursor, offset + size)
        return JSONResponse(body)

    async def search_offset(self, request: Request) -> Response:
        """The older startAt/total search that Data Center (and old clients) use."""
        params = await self._search_params(request)
        issues = self.state.search(str(params.get("jql") or ""))
        start = int(params.get("startAt", 0))
        size = max(0, min(int(params.get("maxResults", 50)), 100))
        fields = params.get("fields") or ["*navigable"]
        renderer = self._renderer(request)
        page = issues[start : start + size]
        return JSONResponse(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(issues),
                "issues": [renderer.issue(i, fields) for i in page],
            }
        )

    # -- webhooks and control ------------------------------------------------------------

    async def webhooks(self, request: Request) -> Response:
        if request.method == "POST":
            body = await self._json(request)
            if not body.get("url") or not body.get("events"):
                raise JiraFault(400, [], {"url": "A webhook needs a url and events."})
            filters = body.get("filters") or {}
            hook = self.hub.register(
                str(body.get("name") or "webhook"),
                str(body["url"]),
                list(body["events"]),
                body.get("secret"),
                jql=filters.get("issue-related-events-section"),
            )
            return JSONResponse(self._hook_json(request, hook.id), status_code=201)
        return JSONResponse([self._hook_json(request, i) for i in self.hub.hooks])

    def _hook_json(self, request: Request, hook_id: int) -> dict[str, Any]:
        hook = self.hub.hooks[hook_id]
        return {
            "self": f"{self._base(request)}/rest/webhooks/1.0/webhook/{hook.id}",
            "name": hook.name,
            "url": hook.url,
            "events": list(hook.events),
            "enabled": hook.enabled,
        }

    async def webhook(self, request: Request) -> Response:
        hook_id = request.path_params["hook"]
        if hook_id not in self.hub.hooks:
            raise JiraFault(404, ["Webhook not found."])
        if request.method == "DELETE":
            del self.hub.hooks[hook_id]
            return Response(status_code=204)
        return JSONResponse(self._hook_json(request, hook_id))

    async def sim_faults(self, request: Request) -> Response:
        if request.method == "PUT":
            try:
                self.faults.configure(FaultPlan.from_mapping(await self._json(request)))
            except (TypeError, ValueError) as exc:
                return _error(400, [str(exc)])
        return JSONResponse(self.faults.plan.to_mapping())

    async def sim_stats(self, request: Request) -> Response:
        return JSONResponse({**self.faults.counts, "issues": len(self.state.issues)})

    def _on_change(
        self, event: str, issue: SimIssue, change: SimChange | None, comment: SimComment | None
    ) -> None:
        if not self.hub.hooks:
            return
        renderer = Renderer(self.base_url, 2)
        payload: dict[str, Any] = {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": {
                "jira:issue_created": "issue_created",
                "comment_created": "issue_commented",
            }.get(event, "issue_generic"),
            "user": renderer.user(change.author if change else issue.creator),
            "issue": renderer.issue(issue),
        }
        if change is not None:
            payload["changelog"] = {"id": str(change.id), "items": renderer.change(change)["items"]}
        if comment is not None:
            payload["comment"] = renderer.comment(issue, comment)
        self.hub.publish(event, payload)


def build_app(**kwargs: Any) -> SimulatorApp:
    return SimulatorApp(**kwargs)
