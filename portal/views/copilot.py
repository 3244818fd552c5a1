"""The copilot page: the member's conversations, each answer with its facts and citations beside the prose, and
the changes it proposed with a button to confirm each. Asking streams the answer as server-sent events (fetch +
ReadableStream in portal.js); without JavaScript the form posts to the page and the answer comes back whole.
Everything goes through `assistant.services`, the same as the API: the member's own permissions apply per tool."""

from django import forms
from django.contrib import messages
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from assistant import events, services
from assistant.models import Conversation, Proposal
from foundation.api.errors import ApiError
from tenants.roles import Scope

from ..access import OrgPage


class AskForm(forms.Form):
    question = forms.CharField(
        label=gettext_lazy("Your question"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    conversation = forms.UUIDField(required=False, widget=forms.HiddenInput)


class _Copilot(OrgPage):
    section = "copilot"
    scopes = {**OrgPage.scopes, "POST": Scope.ORG_READ}  # asking is reading; each tool checks its own scope

    def conversations(self):
        return Conversation.objects.filter(organization=self.organization, user=self.request.user, api_key=None)

    def conversation(self, pk) -> Conversation | None:
        if not pk:
            return None
        found = self.conversations().filter(pk=pk).first()
        if found is None:
            raise Http404
        return found

    def conversation_for(self, form: AskForm) -> Conversation:
        found = self.conversation(form.cleaned_data.get("conversation"))
        return found or services.conversation_create(organization=self.organization, actor=self.actor)


class CopilotPage(_Copilot, TemplateView):
    template_name = "portal/assistant/copilot.html"

    def get_context_data(self, **kwargs):
        current = self.conversation(self.request.GET.get("c") or None)
        messages = []
        if current is not None:
            messages = list(current.messages.prefetch_related("proposals"))
        kwargs.setdefault("form", AskForm(initial={"conversation": current.pk if current else None}))
        return super().get_context_data(
            conversations=self.conversations()[:30],
            current=current,
            chat=messages,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        form = AskForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        conversation = self.conversation_for(form)
        for _event in services.message_answer(
            conversation=conversation, actor=self.actor, content=form.cleaned_data["question"]
        ):
            pass
        return redirect(f"{reverse('portal:copilot', args=[self.organization.slug])}?c={conversation.pk}")


class CopilotStream(_Copilot, View):
    """POST: the answer as server-sent events (message, tool, facts, token, citations, proposal or refusal, done)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = AskForm(request.POST)
        if not form.is_valid():
            return JsonResponse({"error": {"message": " ".join(" ".join(e) for e in form.errors.values())}}, status=400)
        conversation = self.conversation_for(form)
        answer = services.message_answer(
            conversation=conversation, actor=self.actor, content=form.cleaned_data["question"]
        )
        response = StreamingHttpResponse(
            events.sse_stream(request, _with_conversation(conversation, answer)), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


def _with_conversation(conversation: Conversation, answer):
    yield "conversation", {"id": str(conversation.pk)}
    yield from answer


class CopilotConfirm(_Copilot, View):
    """POST: run a proposal of the member's (once), with the member's permissions."""

    model = Proposal  # what `pk` addresses (the isolation sweep reads it)
    http_method_names = ["post"]

    def post(self, request, org_slug, pk):
        proposal = Proposal.objects.filter(
            organization=self.organization, pk=pk, conversation__user=request.user, conversation__api_key=None
        ).first()
        if proposal is None:
            raise Http404
        try:
            proposal = services.proposal_confirm(proposal=proposal, actor=self.actor)
        except ApiError as exc:
            messages.error(request, str(exc.detail))
        else:
            if proposal.status == Proposal.Status.CONFIRMED:
                messages.success(request, _("Done: %(summary)s") % {"summary": proposal.summary})
            else:
                messages.error(request, _("The change was refused: %(why)s") % {"why": proposal.result.get("error")})
        return redirect(f"{reverse('portal:copilot', args=[org_slug])}?c={proposal.conversation_id}")


urlpatterns = [
    path("copilot", CopilotPage.as_view(), name="copilot"),
    path("copilot/stream", CopilotStream.as_view(), name="copilot-stream"),
    path("copilot/proposals/<uuid:pk>/confirm", CopilotConfirm.as_view(), name="copilot-confirm"),
]
