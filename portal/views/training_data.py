"""Training data from the factory: build a question-answer data set from the organisation's documents and records
(`assistant.datasets.qa_dataset_build`), review it pair by pair beside each answer's source (edit, delete), and
start a fine-tuning job on it (`qa_dataset_fine_tune`), which then shows on the fine-tuning pages."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from assistant.datasets import (
    qa_dataset_build,
    qa_dataset_delete,
    qa_dataset_fine_tune,
    qa_pair_delete,
    qa_pair_update,
)
from assistant.models import QaDataset, QaPair
from billing.errors import BillingRefusal
from tenants.roles import Scope

from ..access import OrgPage, errors_into

PAIRS_PER_PAGE = 50


class BuildForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    documents = forms.BooleanField(label=gettext_lazy("From the documents"), required=False, initial=True)
    records = forms.BooleanField(label=gettext_lazy("From assets, machines and products"), required=False, initial=True)


class PairForm(forms.Form):
    question = forms.CharField(
        label=gettext_lazy("Question"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    answer = forms.CharField(label=gettext_lazy("Answer"), max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class DatasetsPage(OrgPage, TemplateView):
    template_name = "portal/models/datasets.html"
    section = "finetuning"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("build_form", BuildForm())
        datasets = QaDataset.objects.filter(organization=self.organization).order_by("-created_at")
        return super().get_context_data(datasets=datasets, **kwargs)

    def post(self, request, *args, **kwargs):
        form = BuildForm(request.POST)
        if form.is_valid():
            try:
                dataset = qa_dataset_build(organization=self.organization, actor=self.actor, **form.cleaned_data)
            except ValidationError as exc:
                errors_into(form, exc)
            else:
                messages.success(
                    request,
                    _("%(count)s question-answer pairs made. Review them below.") % {"count": dataset.pair_count},
                )
                return redirect("portal:dataset", org_slug=self.organization.slug, pk=dataset.pk)
        return self.render_to_response(self.get_context_data(build_form=form), status=400)


class DatasetPage(OrgPage, TemplateView):
    model = QaDataset  # what `pk` addresses (the isolation sweep reads it)
    template_name = "portal/models/dataset.html"
    section = "finetuning"

    def get_context_data(self, **kwargs):
        dataset = self.owned(QaDataset, pk=self.kwargs["pk"])
        pairs = Paginator(dataset.pairs.order_by("ordinal"), PAIRS_PER_PAGE).get_page(self.request.GET.get("page"))
        for pair in pairs:
            pair.form = PairForm(initial={"question": pair.question, "answer": pair.answer}, prefix=str(pair.pk))
            if pair.answer_start is not None and pair.answer_end is not None and not pair.edited:
                text = pair.source_text
                pair.before, pair.quote, pair.after = (
                    text[: pair.answer_start],
                    text[pair.answer_start : pair.answer_end],
                    text[pair.answer_end :],
                )
        return super().get_context_data(dataset=dataset, pairs=pairs, **kwargs)


class PairEdit(OrgPage, View):
    model = QaPair

    def post(self, request, *args, **kwargs):
        pair = self.owned(QaPair, pk=kwargs["pk"])
        slug = self.organization.slug
        if "delete" in request.POST:
            try:
                qa_pair_delete(pair=pair, actor=self.actor)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("Pair deleted."))
            return redirect("portal:dataset", org_slug=slug, pk=pair.dataset_id)
        form = PairForm(request.POST, prefix=str(pair.pk))
        if form.is_valid():
            try:
                qa_pair_update(pair=pair, actor=self.actor, **form.cleaned_data)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("Pair saved."))
        else:
            messages.error(request, _("A question and an answer are both needed."))
        return redirect("portal:dataset", org_slug=slug, pk=pair.dataset_id)


class DatasetDelete(OrgPage, View):
    model = QaDataset

    def post(self, request, *args, **kwargs):
        dataset = self.owned(QaDataset, pk=kwargs["pk"])
        qa_dataset_delete(dataset=dataset, actor=self.actor)
        messages.success(request, _("%(name)s deleted.") % {"name": dataset.name})
        return redirect("portal:datasets", org_slug=self.organization.slug)


class DatasetFineTune(OrgPage, View):
    model = QaDataset
    scopes = {**OrgPage.scopes, "POST": Scope.JOBS}

    def post(self, request, *args, **kwargs):
        dataset = self.owned(QaDataset, pk=kwargs["pk"])
        slug = self.organization.slug
        try:
            job = qa_dataset_fine_tune(dataset=dataset, actor=self.actor)
        except (ValidationError, BillingRefusal) as exc:
            text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc.detail)
            messages.error(request, text)
            return redirect("portal:dataset", org_slug=slug, pk=dataset.pk)
        messages.success(request, _("Fine-tuning started."))
        return redirect("portal:finetuning-job", org_slug=slug, pk=job.pk)


urlpatterns = [
    path("fine-tuning/datasets", DatasetsPage.as_view(), name="datasets"),
    path("fine-tuning/datasets/<uuid:pk>", DatasetPage.as_view(), name="dataset"),
    path("fine-tuning/datasets/<uuid:pk>/delete", DatasetDelete.as_view(), name="dataset-delete"),
    path("fine-tuning/datasets/<uuid:pk>/fine-tune", DatasetFineTune.as_view(), name="dataset-fine-tune"),
    path("fine-tuning/pairs/<uuid:pk>", PairEdit.as_view(), name="dataset-pair"),
]
