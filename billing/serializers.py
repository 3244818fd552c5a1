"""Translation of billing's reads into JSON. Money is a decimal string; quantities are whole units."""

from rest_framework import serializers

from .models import Invoice, InvoiceLine


class MeterUsageSerializer(serializers.Serializer):
    meter = serializers.CharField()
    unit = serializers.CharField()
    used = serializers.IntegerField()
    included = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="Hard limit per month; null means none.")
    remaining = serializers.IntegerField(allow_null=True)


class UsageSummarySerializer(serializers.Serializer):
    plan = serializers.CharField(source="plan_name")
    status = serializers.CharField()
    period_start = serializers.DateTimeField(source="period.start")
    period_end = serializers.DateTimeField(source="period.end", help_text="When the quotas reset.")
    grace_period_ends_at = serializers.DateTimeField(allow_null=True)
    meters = MeterUsageSerializer(many=True)


class LineSerializer(serializers.Serializer):
    kind = serializers.CharField()
    meter = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=20, decimal_places=10)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)


class EstimateSerializer(serializers.Serializer):
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(source="period.start")
    period_end = serializers.DateTimeField(source="period.end")
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    lines = LineSerializer(many=True)


class InvoiceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["position", "kind", "meter", "description", "quantity", "unit_price", "amount"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "period_start",
            "period_end",
            "status",
            "currency",
            "total",
            "paid_at",
            "payment_failed_at",
            "created_at",
            "lines",
        ]
        read_only_fields = fields
