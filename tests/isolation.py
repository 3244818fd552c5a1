"""The tenant-isolation sweep: every organisation route, tried by a second tenant.

`sweep()` enumerates every URL pattern that takes an `org_slug`, so new endpoints are covered without anyone
remembering to add them; that includes the portal's pages under /app/<org_slug>/. For each it tries every write
and read method as a member and as an API key (all scopes) of organisation B:
  1. on organisation A's URL with A's object: must answer 404 (A does not exist for B);
  2. on B's own URL with A's object id: must answer 404 or 405, never 2xx;
  3. on B's own list URLs: the body must not contain any id of A's objects;
and finally A's objects must be exactly as they were. It returns findings instead of asserting, so a test can
prove that it catches a leaky endpoint.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str
    kwargs: tuple[str, ...]
    view_class: type | None


def _pattern_kwargs(pattern) -> set[str]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters:
        return set(converters)
    return set(pattern.pattern.regex.groupindex)


def org_routes(urlconf=None) -> list[Route]:
    routes: list[Route] = []

    def walk(patterns, inherited: set[str], namespace: str) -> None:
        for p in patterns:
            names = inherited | _pattern_kwargs(p)
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, names, ns)
            elif isinstance(p, URLPattern) and "org_slug" in names and p.name:
                view_class = getattr(p.callback, "cls", None) or getattr(p.callback, "view_class", None)
                routes.append(Route(f"{namespace}{p.name}", tuple(sorted(names)), view_class))

    walk(get_resolver(urlconf).url_patterns, set(), "")
    return routes


def route_model(route: Route) -> type[models.Model] | None:
    """The model a route's `pk` addresses: an API view's queryset, or a portal page's `model`."""
    queryset = getattr(route.view_class, "queryset", None)
    return queryset.model if queryset is not None else getattr(route.view_class, "model", None)


def is_page(route: Route) -> bool:
    """A portal page (HTML for a signed-in person) rather than an API view."""
    return route.name.startswith("portal:")


def _leaked_ids(response, a_ids: set[str]) -> list[str]:
    if response.get("Content-Type", "").startswith("application/json"):
        return sorted(_ids_in(response.json()) & a_ids)
    # A page: look for A's ids in the HTML. Short integer ids would match any digit run, so only long ones.
    text = response.content.decode(errors="replace")
    return sorted(i for i in a_ids if len(i) >= 12 and i in text)


def _ids_in(data) -> set[str]:
    """Every value under an `id` or `*_id` key, anywhere in a JSON body."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if (key == "id" or key.endswith("_id")) and isinstance(value, str | int):
                found.add(str(value))
            else:
                found |= _ids_in(value)
    elif isinstance(data, list):
        for item in data:
            found |= _ids_in(item)
    return found


def snapshot(objects: list[Any]) -> dict:  # models of several kinds, each with its `objects`
    return {
        (type(o).__name__, str(o.pk)): json.dumps(model_to_dict(type(o).objects.get(pk=o.pk)), default=str)
        for o in objects
        if type(o).objects.filter(pk=o.pk).exists()
    } | {("count", type(o).__name__): type(o).objects.filter(pk=o.pk).count() for o in objects}


def _sent_to_sign_in(route: Route, response) -> bool:
    """An API key is no credential for the portal: its pages send such a caller to sign in, showing nothing."""
    return is_page(route) and response.status_code == 302 and "/login" in response.get("Location", "")


def sweep(*, org_a, objects_a: list[models.Model], org_b, clients_b: dict, urlconf=None) -> list[str]:
    findings: list[str] = []
    by_model: dict[type[models.Model] | None, models.Model] = {}
    for obj in objects_a:
        by_model.setdefault(type(obj), obj)
    a_ids = {str(o.pk) for o in objects_a} | {str(org_a.pk)}
    before = snapshot(objects_a)

    routes = org_routes(urlconf)
    if not routes:
        return ["no organisation routes found"]
    for route in routes:
        model = route_model(route)
        kwargs_a = {"org_slug": org_a.slug}
        if "pk" in route.kwargs:
            target = by_model.get(model)
            if target is None:
                findings.append(
                    f"{route.name}: organisation A has no {model.__name__ if model else '?'} object; "
                    "extend the sweep's world so this route is covered"
                )
                continue
            kwargs_a["pk"] = str(target.pk)
        unknown = set(route.kwargs) - {"org_slug", "pk"}
        if unknown:
            findings.append(f"{route.name}: the sweep does not know how to fill {sorted(unknown)}")
            continue
        url_a = reverse(route.name, kwargs=kwargs_a, urlconf=urlconf)
        url_b = reverse(route.name, kwargs={**kwargs_a, "org_slug": org_b.slug}, urlconf=urlconf)
        for who, client in clients_b.items():
            for method in METHODS:
                response = getattr(client, method)(url_a, data={}, format="json")
                if response.status_code != 404 and not _sent_to_sign_in(route, response):
                    findings.append(f"{who} {method.upper()} {url_a} (A's organisation) -> {response.status_code}")
                response = getattr(client, method)(url_b, data={}, format="json")
                if (
                    "pk" in route.kwargs
                    and response.status_code not in (404, 405)
                    and not _sent_to_sign_in(route, response)
                ):
                    findings.append(f"{who} {method.upper()} {url_b} (A's object in B's URL) -> {response.status_code}")
                if method == "get" and response.status_code == 200:
                    leaked = _leaked_ids(response, a_ids)
                    if leaked:
                        findings.append(f"{who} GET {url_b} shows A's ids {leaked}")
    if snapshot(objects_a) != before:
        findings.append("organisation A's objects changed during the sweep")
    return findings
