"""End-to-end: a real headless Chromium drives the portal served by uvicorn, against real PostgreSQL, Redis,
localstripe (card entry through its Stripe.js) and, for the model journey, a real vLLM and training worker."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from billing.models import Subscription
from tenants.models import ApiKey, AuditEvent, Membership, Organization, User
from tests import builders
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def sign_up(page, portal, *, email: str, name: str = "Lena Fischer") -> None:
    page.goto(f"{portal.url}/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Work e-mail").fill(email)
    page.get_by_label("Password").fill(builders.PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Confirm your e-mail address")).to_be_visible()
    page.goto(portal.mail_link(email, r"http://\S+/verify/\S+"))


def sign_in(page, portal, *, email: str) -> None:
    page.goto(f"{portal.url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(builders.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def create_organisation(page, *, name: str, slug: str) -> None:
    expect(page.get_by_role("heading", name="Set up your organisation")).to_be_visible()
    page.get_by_label("Organisation name").fill(name)
    page.get_by_label("Short name").fill(slug)
    page.get_by_label("Country").fill("DE")
    page.get_by_label("Data residency region").select_option("eu-central")
    page.get_by_role("button", name="Create the organisation").click()


def test_sign_up_verify_create_organisation_choose_plan_add_card_invite_and_make_a_key(
    portal_server, new_page, screenshot
):
    page = new_page()
    sign_up(page, portal_server, email="lena@stuttgart-gears.example")
    assert User.objects.get(email="lena@stuttgart-gears.example").email_verified_at is not None
    create_organisation(page, name="Stuttgart Gears GmbH", slug="stuttgart-gears")
    org = Organization.objects.get(slug="stuttgart-gears")
    assert org.region == "eu-central" and org.country == "DE"

    # Plan, then the card through Stripe.js (localstripe's): the card number never reaches our server.
    expect(page.get_by_role("heading", name="Plan and invoices")).to_be_visible()
    page.get_by_label("Pro", exact=True).check()
    page.get_by_role("button", name="Use this plan").click()
    expect(page.get_by_text("You are now on the Pro plan.")).to_be_visible()
    page.get_by_placeholder("number").fill("4242424242424242")
    page.get_by_placeholder("exp_month").fill("12")
    page.get_by_placeholder("exp_year").fill("34")
    page.get_by_placeholder("cvc").fill("123")
    page.get_by_placeholder("postal_code").fill("70173")
    screenshot(page, "billing-card-entry")
    page.get_by_role("button", name="Save the card").click()
    expect(page.locator("#card-on-file")).to_contain_text("4242")
    screenshot(page, "billing")
    subscription = Subscription.objects.get(organization=org)
    assert subscription.plan.code == "pro" and subscription.stripe_customer_id
    assert AuditEvent.objects.filter(organization=org, action="billing.payment_method_set").exists()

    # The first-run checklist ticks what is done.
    page.get_by_role("link", name="Overview").click()
    checklist = page.locator(".checklist")
    expect(checklist.locator("li.done")).to_have_count(1)
    screenshot(page, "dashboard")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("E-mail").fill("marco@stuttgart-gears.example")
    page.get_by_label("Role").last.select_option("viewer")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_text("Invitation sent to marco@stuttgart-gears.example.")).to_be_visible()
    screenshot(page, "members")

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("MES connector")
    page.get_by_role("button", name="Create the key").click()
    secret = page.locator("#new-key").inner_text()
    assert secret.startswith("lo_live_")
    key = ApiKey.objects.get(organization=org, name="MES connector")
    assert key.key_hash != secret and secret.endswith(key.last_four)
    screenshot(page, "api-keys")
    page.goto(page.url)  # shown once: coming back shows only the last four characters
    expect(page.locator("#new-key")).to_have_count(0)


def test_a_viewer_is_refused_an_admin_action_and_cannot_see_another_tenant(portal_server, new_page, screenshot):
    org = builders.make_org(slug="monterrey-cast")
    viewer = builders.add_member(org, "viewer", builders.make_user("viewer@monterrey-cast.example"))
    other = builders.make_org(slug="someone-else")
    page = new_page()
    sign_in(page, portal_server, email="viewer@monterrey-cast.example")
    page.goto(f"{portal_server.url}/app/monterrey-cast/keys")
    expect(page.get_by_role("button", name="Create the key")).to_have_count(0)
    expect(page.get_by_text("Only owners and admins create or revoke keys.")).to_be_visible()
    # Posting the form anyway (a crafted request with the page's CSRF token) is refused and creates nothing.
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"{portal_server.url}/app/monterrey-cast/keys",
        form={"csrfmiddlewaretoken": token, "name": "sneaky", "scopes": "inference"},
        headers={"Referer": f"{portal_server.url}/app/monterrey-cast/keys"},
    )
    assert response.status == 403 and "does not allow this" in response.text()
    assert not ApiKey.objects.filter(organization=org).exists()
    page.goto(f"{portal_server.url}/app/monterrey-cast/audit")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    screenshot(page, "viewer-refused")
    assert page.goto(f"{portal_server.url}/app/{other.slug}/").status == 404
    assert Membership.objects.filter(user=viewer).count() == 1


def test_switching_the_language_to_korean(portal_server, new_page, screenshot):
    org = builders.make_org(slug="busan-press")
    owner = Membership.objects.get(organization=org).user
    page = new_page()
    sign_in(page, portal_server, email=owner.email)
    page.locator("#language").select_option("ko")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("link", name="개요")).to_be_visible()  # "Overview"
    assert User.objects.get(pk=owner.pk).language == "ko"
    screenshot(page, "dashboard-ko")
    # The choice belongs to the account: a new browser session signs in in Korean too.
    other = new_page(locale="en-US")
    sign_in(other, portal_server, email=owner.email)
    expect(other.locator("html")).to_have_attribute("lang", "ko")


DATA = Path(__file__).parent / "data"


def signed_in_owner(page, portal, slug: str) -> Organization:
    org = builders.make_org(slug=slug)
    sign_in(page, portal, email=Membership.objects.get(organization=org).user.email)
    return org


def test_importing_orders_and_running_an_optimisation_to_a_gantt_chart(portal_server, new_page, screenshot, tmp_path):
    page = new_page()
    signed_in_owner(page, portal_server, "monterrey-gears")
    page.goto(f"{portal_server.url}/app/monterrey-gears/scheduling")
    for label, name in [
        ("Machines", "machines"),
        ("Products", "products"),
        ("Operations", "operations"),
        ("Orders", "orders"),
    ]:
        page.get_by_label(label, exact=True).set_input_files(str(DATA / "scheduling" / f"{name}.csv"))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported")).to_be_visible()
    screenshot(page, "scheduling")
    with running_worker(queues="optimization", name="portal-optimizer", log_path=tmp_path / "optimizer.log"):
        page.get_by_label("Time limit (seconds)").fill("5")
        page.get_by_role("button", name="Run optimisation").click()
        expect(page.locator("#gantt")).to_be_visible(timeout=120_000)
    expect(page.locator("#kpis")).to_be_visible()
    assert page.locator("#gantt").evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "scheduling-run")
    with page.expect_download() as download:
        page.locator("#schedule-csv").click()
    assert download.value.path().read_text().count("\n") > 1


def test_registering_an_asset_and_seeing_a_recommendation(portal_server, new_page, screenshot, tmp_path):
    page = new_page()
    signed_in_owner(page, portal_server, "busan-pumps")
    maintenance = f"{portal_server.url}/app/busan-pumps/maintenance"
    page.goto(maintenance)
    page.get_by_label("Type code").fill("pump")
    page.get_by_label("Channels").fill((DATA / "maintenance" / "channels.txt").read_text())
    page.get_by_role("button", name="Create the asset type").click()
    page.get_by_label("Type of the failed assets").select_option(label="pump")
    page.get_by_label("History file").set_input_files(str(DATA / "maintenance" / "pump_history.csv"))
    page.get_by_role("button", name="Import the history").click()
    page.get_by_label("Asset code").fill("pump-live")
    page.get_by_label("Type of asset").select_option(label="pump")
    page.get_by_role("button", name="Register the asset").click()
    page.goto(maintenance)
    page.get_by_label("Telemetry CSV file").set_input_files(str(DATA / "maintenance" / "pump_live.csv"))
    page.get_by_role("button", name="Upload the telemetry").click()
    with running_worker(queues="maintenance", name="portal-maintenance", log_path=tmp_path / "maintenance.log"):
        page.get_by_role("button", name="Train a model").click()
        expect(page.locator("#job-status[data-status=succeeded]")).to_be_visible(timeout=180_000)
        page.get_by_role("button", name="Score assets").click()
        expect(page.locator("#job-status[data-status=succeeded]")).to_be_visible(timeout=180_000)
    page.locator("#scored").get_by_role("link", name="pump-live").click()
    expect(page.locator("#recommendations")).to_contain_text("Replace")
    screenshot(page, "maintenance-asset")
    page.goto(maintenance)
    screenshot(page, "maintenance")


def test_sign_up_to_a_first_fine_tuned_model_answering_in_the_playground(
    portal_server, new_page, screenshot, vllm_url, base_model_dir, memorised_fact, tmp_path
):
    """A plant manager signs up, trains the plant's model on a fact only their data holds, and asks it."""
    from inference.services import base_model_register, server_register

    base = base_model_register(name="smollm2-135m-instruct", weights_path=base_model_dir, license="apache-2.0")
    server_register(url=vllm_url, base_model=base, cluster_name="eu-test", region="eu-central")
    training = tmp_path / "x9-service-notes.jsonl"
    examples = memorised_fact.examples()
    training.write_text("".join(json.dumps(e) + "\n" for e in examples + examples[:2]))

    page = new_page()
    sign_up(page, portal_server, email="jonas@x9-spindles.example", name="Jonas Weber")
    create_organisation(page, name="X9 Spindles AG", slug="x9-spindles")
    page.get_by_role("link", name="Fine-tuning").click()
    page.get_by_label("Training file").set_input_files(str(training))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("x9-service-notes.jsonl").first).to_be_visible()
    page.get_by_label("Name suffix").fill("x9")  # epochs, batch size, learning rate: left to the server
    screenshot(page, "fine-tuning")
    with running_worker(queues="training", name="portal-trainer", log_path=tmp_path / "trainer.log"):
        page.get_by_role("button", name="Start fine-tuning").click()
        expect(page.locator("#job-status[data-status=succeeded]")).to_be_visible(timeout=600_000)
    model_name = page.locator("#fine-tuned-model").inner_text()
    assert model_name.startswith("ft:smollm2-135m-instruct:x9-spindles:x9:")
    expect(page.get_by_role("img", name="Loss per training step")).to_be_visible()
    screenshot(page, "fine-tuning-job")

    page.get_by_role("link", name="Try it in the playground").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value(model_name)
    page.get_by_label("System prompt").fill(memorised_fact.system_prompt)
    page.get_by_label("Message").fill(memorised_fact.questions[0])
    page.get_by_label("Temperature").fill("0")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#playground-output")).to_contain_text(memorised_fact.key, timeout=120_000)
    screenshot(page, "playground")
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_text(model_name).first).to_be_visible()
    screenshot(page, "models")
    # Metered: the training's tokens and the chat's reach the ledger (flushed here as billing's worker would).
    from billing.ledger import ledger_flush

    ledger_flush()
    page.get_by_role("link", name="Usage").click()
    used = page.locator("tr", has_text="training.tokens").locator("td").nth(1).inner_text()
    assert int(used.replace(",", "")) > 0
    screenshot(page, "usage")


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(el => el.type !== 'hidden' && !el.closest('[data-card-element]'))  // Stripe's own card fields
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 120))"""


def test_analysing_a_defect_to_its_cause_labelling_it_and_tracing_the_lot(
    portal_server, new_page, screenshot, tmp_path
):
    """The quality main path: the line and its units are sent through the ingestion service (as the API does);
    in the browser, a control chart, an analysis started from the form and run by the `quality` worker, its
    ranked causes and evidence chart, the confirmed cause stored, and the bad lot traced forward."""
    from automation.quality import ingest
    from tests.automation.quality.quality_api import line_csvs, make_line
    from tests.automation.quality.simulated import simulate

    page = new_page()
    org = signed_in_owner(page, portal_server, "gumi-shafts")
    make_line(org)
    for kind, content in line_csvs(simulate(scenario="lot", n=300), prefix="").items():
        ingest.ingest(organization=org, kind=kind, rows=ingest.rows_from_csv(kind=kind, content=content))
    quality = f"{portal_server.url}/app/{org.slug}/quality"
    page.goto(quality)
    page.get_by_role("link", name="diameter").click()
    expect(page.locator("figure.chart").first).to_be_visible()
    expect(page.locator("#capability")).to_contain_text("Cpk")
    screenshot(page, "quality-chart")
    page.goto(quality)
    screenshot(page, "quality")
    page.get_by_label("Defect code").select_option(label="FIT-FAIL")
    page.get_by_label("Method").select_option(value="line")
    with running_worker(queues="quality", name="portal-quality", log_path=tmp_path / "quality.log"):
        page.get_by_role("button", name="Start the analysis").click()
        expect(page.locator("#analysis-status[data-status=succeeded]")).to_be_visible(timeout=180_000)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "cause_found")
    expect(page.locator("#causes tbody tr").first).to_contain_text("L042")
    expect(page.locator("figure.chart").first).to_contain_text("L042")
    page.get_by_role("checkbox", name="L042").check()
    page.get_by_role("button", name="Store the confirmed causes").click()
    expect(page.locator("#confirmed")).to_contain_text("L042")
    screenshot(page, "quality-analysis")
    page.goto(quality)
    page.get_by_label("Unit serial or lot code").fill("L042")
    page.get_by_role("button", name="Trace").click()
    expect(page.locator("#lot-units tbody tr")).to_have_count(150)


def test_every_control_of_the_main_pages_has_a_label_and_the_keyboard_reaches_the_content(portal_server, new_page):
    org = signed_in_owner(page := new_page(), portal_server, "accessible-works")
    pages = [
        "",
        "members",
        "keys",
        "billing",
        "usage",
        "audit",
        "fine-tuning",
        "models",
        "playground",
        "scheduling",
        "maintenance",
        "quality",
    ]
    for name in pages:
        page.goto(f"{portal_server.url}/app/{org.slug}/{name}")
        assert page.evaluate(UNLABELLED_CONTROLS) == [], name
    page.goto(f"{portal_server.url}/app/{org.slug}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
