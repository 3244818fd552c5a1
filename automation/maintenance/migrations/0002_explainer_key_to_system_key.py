# The explainer's encrypted gateway key moved to tenants.SystemKey (purpose `maintenance.explainer`), shared with
# the portal's playground. Rows are copied as they are: tenants.system_keys derives the same Fernet key for that
# purpose, so existing keys keep working.

from django.db import migrations

PURPOSE = "maintenance.explainer"


def forwards(apps, schema_editor):
    ExplainerKey = apps.get_model("maintenance", "ExplainerKey")
    SystemKey = apps.get_model("tenants", "SystemKey")
    for row in ExplainerKey.objects.all():
        SystemKey.objects.update_or_create(
            organization_id=row.organization_id, purpose=PURPOSE,
            defaults={"api_key_id": row.api_key_id, "secret_encrypted": row.secret_encrypted,
                      "created_at": row.created_at})


def backwards(apps, schema_editor):
    ExplainerKey = apps.get_model("maintenance", "ExplainerKey")
    SystemKey = apps.get_model("tenants", "SystemKey")
    for row in SystemKey.objects.filter(purpose=PURPOSE):
        ExplainerKey.objects.update_or_create(
            organization_id=row.organization_id,
            defaults={"api_key_id": row.api_key_id, "secret_encrypted": row.secret_encrypted,
                      "created_at": row.created_at})


class Migration(migrations.Migration):

    dependencies = [
        ("maintenance", "0001_initial"),
        ("tenants", "0004_systemkey"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="ExplainerKey"),
    ]
