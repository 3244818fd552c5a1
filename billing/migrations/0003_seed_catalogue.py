from django.db import migrations


def seed(apps, schema_editor):
    from billing.catalogue import catalogue_seed

    catalogue_seed(apps.get_model("billing", "Plan"), apps.get_model("billing", "PlanMeterPrice"))


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_ledger_immutable")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
