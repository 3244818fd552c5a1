"""The playground: a chat with one of the organisation's models, sent to the real gateway (`/v1/chat/completions`)
with the organisation's playground system key, so it is routed, rate-limited, quota-checked and metered like API
traffic, and streamed back to the page as the gateway's server-sent events."""

import json

import httpx
from asgiref.sync import sync_to_async
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from inference.selectors import gateway_model_list
from tenants.roles import Scope
from tenants.system_keys import SystemKeyUnavailable, system_key_forget, system_key_get

from ..access import OrgPage

PLAYGROUND_KEY_PURPOSE = "portal.playground"
PLAYGROUND_KEY_NAME = "portal playground (system)"
MAX_HISTORY_MESSAGES = 20
MAX_HISTORY_CHARS = 32_000


class PlaygroundForm(forms.Form):
    model = forms.ChoiceField(label=gettext_lazy("Model"))
    system = forms.CharField(
        label=gettext_lazy("System prompt (optional)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Instructions followed in every answer, e.g. “Be brief.”"),
    )
    message = forms.CharField(label=gettext_lazy("Message"), max_length=8000, widget=forms.Textarea(attrs={"rows": 4}))
    max_tokens = forms.IntegerField(
        label=gettext_lazy("Maximum length (tokens)"), min_value=1, max_value=1024, initial=256
    )
    temperature = forms.FloatField(
        label=gettext_lazy("Temperature"),
        min_value=0,
        max_value=2,
        initial=0.2,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )
    history = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, model_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices

    def clean_history(self) -> list[dict]:
        raw = self.cleaned_data.get("history") or "[]"
        try:
            turns = json.loads(raw)
        except ValueError:
            raise ValidationError(_("The conversation so far could not be read; start a new one.")) from None
        if (
            not isinstance(turns, list)
            or len(raw) > MAX_HISTORY_CHARS
            or not all(
                isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
                for t in turns
            )
        ):
            raise ValidationError(_("The conversation so far is too long or malformed; start a new one."))
        return [{"role": t["role"], "content": t["content"]} for t in turns[-MAX_HISTORY_MESSAGES:]]

    def chat_request(self, *, stream: bool) -> dict:
        data = self.cleaned_data
        chat = [{"role": "system", "content": data["system"]}] if data["system"].strip() else []
        chat += [*data["history"], {"role": "user", "content": data["message"]}]
        return {
            "model": data["model"],
            "messages": chat,
            "max_tokens": data["max_tokens"],
            "temperature": data["temperature"],
            "stream": stream,
        }


def _model_choices(organization) -> list:
    rows = gateway_model_list(organization_id=str(organization.pk), region=organization.region)
    own = [(r["id"], r["id"]) for r in rows if r["owned_by"] == "organization"]
    base = [(r["id"], r["id"]) for r in rows if r["owned_by"] != "organization"]
    groups = []
    if own:
        groups.append((_("Your models"), own))
    if base:
        groups.append((_("Base models"), base))
    return groups


def _gateway_url(request) -> str:
    base = (settings.PUBLIC_BASE_URL or request.build_absolute_uri("/")).rstrip("/")
    return f"{base}/v1/chat/completions"


def _error_leads() -> dict:
    """Our sentence for each refusal of the gateway, in the request's language (made while it is active: a streamed
    answer is read after the view returned)."""
    return {
        None: _("The gateway did not answer. Try again in a moment."),
        429: _("Your organisation has reached a limit (rate or monthly quota)."),
        503: _("No server can run this model right now. Try again in a minute, or deploy it on the Models page."),
        402: _("Payment is overdue: settle the open invoice on the Plan and invoices page."),
        403: _("This request is not allowed for your organisation."),
        404: _("This model does not exist (any more)."),
        "other": _("The model could not answer (HTTP %(status)s)."),
    }


def _gateway_error_text(status: int | None, body: bytes, leads: dict) -> str:
    """A refusal of the gateway as a sentence for the page: ours, then the gateway's own words."""
    try:
        detail = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = body.decode("utf-8", "replace")[:300]
    lead = leads[status] if status in leads else leads["other"] % {"status": status}
    return f"{lead} {detail}".strip()


class PlaygroundPage(OrgPage, TemplateView):
    """The chat page. Its form streams through `PlaygroundStream` with JavaScript; without, it posts here and the
    answer comes back whole."""

    template_name = "portal/models/playground.html"
    section = "playground"
    scopes = {**OrgPage.scopes, "POST": Scope.INFERENCE}

    def model_choices(self):
        return _model_choices(self.organization)

    def get_context_data(self, **kwargs):
        choices = self.model_choices()
        if "form" not in kwargs:
            wanted = self.request.GET.get("model", "")
            names = [name for _group, options in choices for name, _label in options]
            kwargs["form"] = PlaygroundForm(
                model_choices=choices, initial={"model": wanted if wanted in names else None}
            )
        return super().get_context_data(has_models=bool(choices), **kwargs)

    def post(self, request, *args, **kwargs):
        form = PlaygroundForm(request.POST, model_choices=self.model_choices())
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        answer, error = "", ""
        payload = form.chat_request(stream=False)
        try:
            for attempt in range(2):
                key = system_key_get(
                    organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE, name=PLAYGROUND_KEY_NAME
                )
                response = httpx.post(
                    _gateway_url(request), json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=_timeout()
                )
                if response.status_code == 401 and attempt == 0:
                    system_key_forget(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE)
                    continue
                break
            if response.status_code == 200:
                answer = response.json()["choices"][0]["message"]["content"]
            else:
                error = _gateway_error_text(response.status_code, response.content, _error_leads())
        except httpx.HTTPError:
            error = _gateway_error_text(None, b"", _error_leads())
        except SystemKeyUnavailable as exc:
            error = str(exc)
        except (ValueError, KeyError, IndexError, TypeError):
            error = _("The gateway's answer had no message.")
        return self.render_to_response(
            self.get_context_data(form=form, question=form.cleaned_data["message"], answer=answer, error=error)
        )


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(getattr(settings, "PORTAL_PLAYGROUND_TIMEOUT_S", 120.0), connect=10.0)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class _GatewayStream:
    """The gateway's server-sent events, relayed as they come; a refusal becomes one `event: error` whose message is
    for people. The same relay synchronously (WSGI, the test client) and asynchronously (ASGI, uvicorn: Django would
    otherwise read a synchronous iterator whole before sending anything)."""

    def __init__(self, *, organization, url: str, payload: dict, key: str, leads: dict):
        self.organization, self.url, self.payload, self.key, self.leads = organization, url, payload, key, leads

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}", "Accept": "text/event-stream"}

    def _new_key(self) -> str:
        system_key_forget(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE)
        return system_key_get(organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE, name=PLAYGROUND_KEY_NAME)

    def __iter__(self):
        try:
            with httpx.Client(timeout=_timeout()) as client:
                for attempt in range(2):
                    with client.stream("POST", self.url, json=self.payload, headers=self._headers()) as response:
                        if response.status_code == 401 and attempt == 0:
                            self.key = self._new_key()  # the gateway refused the stored key: replace it once
                            continue
                        if response.status_code != 200:
                            yield _sse(
                                "error",
                                {
                                    "status": response.status_code,
                                    "message": _gateway_error_text(response.status_code, response.read(), self.leads),
                                },
                            )
                            return
                        yield from response.iter_raw()
                        return
        except httpx.HTTPError:
            yield _sse("error", {"status": None, "message": self.leads[None]})
        except SystemKeyUnavailable as exc:
            yield _sse("error", {"status": None, "message": str(exc)})

    async def __aiter__(self):
        try:
            async with httpx.AsyncClient(timeout=_timeout()) as client:
                for attempt in range(2):
                    async with client.stream("POST", self.url, json=self.payload, headers=self._headers()) as response:
                        if response.status_code == 401 and attempt == 0:
                            self.key = await sync_to_async(self._new_key)()
                            continue
                        if response.status_code != 200:
                            body = await response.aread()
                            yield _sse(
                                "error",
                                {
                                    "status": response.status_code,
                                    "message": _gateway_error_text(response.status_code, body, self.leads),
                                },
                            )
                            return
                        async for chunk in response.aiter_raw():
                            yield chunk
                        return
        except httpx.HTTPError:
            yield _sse("error", {"status": None, "message": self.leads[None]})
        except SystemKeyUnavailable as exc:
            yield _sse("error", {"status": None, "message": str(exc)})


class PlaygroundStream(PlaygroundPage):
    """POST: the answer as the gateway's server-sent events (`data: {chat.completion.chunk}` … `data: [DONE]`), or
    `event: error` with a readable message; an invalid form is a 400 with `{"error": {"message": ...}}`."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = PlaygroundForm(request.POST, model_choices=self.model_choices())
        if not form.is_valid():
            problems = [
                (f"{form.fields[name].label}: " if name in form.fields else "") + " ".join(errors)
                for name, errors in form.errors.items()
            ]
            return JsonResponse({"error": {"message": " ".join(problems), "fields": form.errors}}, status=400)
        try:
            key = system_key_get(
                organization=self.organization, purpose=PLAYGROUND_KEY_PURPOSE, name=PLAYGROUND_KEY_NAME
            )
        except SystemKeyUnavailable as exc:
            return JsonResponse({"error": {"message": str(exc)}}, status=503)
        relay = _GatewayStream(
            organization=self.organization,
            url=_gateway_url(request),
            payload=form.chat_request(stream=True),
            key=key,
            leads=_error_leads(),
        )
        stream = relay.__aiter__() if isinstance(request, ASGIRequest) else iter(relay)
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # proxies (nginx) must pass each event on at once
        return response


urlpatterns = [
    path("playground", PlaygroundPage.as_view(), name="playground"),
    path("playground/stream", PlaygroundStream.as_view(), name="playground-stream"),
]
