"""The ledger is append-only in the database itself: UPDATE and DELETE of a row raise, whoever issues them."""

from django.db import migrations

FORBID = """
CREATE FUNCTION billing_ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the usage ledger is append-only: record a correction (a negative event with a reason) instead';
END;
$$;
CREATE TRIGGER billing_ledger_append_only BEFORE UPDATE OR DELETE ON billing_usageevent
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_is_append_only();
"""

ALLOW = """
DROP TRIGGER billing_ledger_append_only ON billing_usageevent;
DROP FUNCTION billing_ledger_is_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
