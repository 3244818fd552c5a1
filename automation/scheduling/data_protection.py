"""Scheduling's data for export and erasure (see `tenants.data_protection`): shop-floor master data, orders and
optimisation runs with their schedules."""

from tenants.data_protection import register_section

from .models import (
    BomLine,
    Downtime,
    Machine,
    Material,
    Operation,
    OperationMaterial,
    OperationOption,
    Order,
    Product,
    Run,
    SetupTime,
    Shift,
    Supplier,
    SupplierPrice,
    TariffRate,
)


def register() -> None:
    register_section(
        "scheduling",
        app_label="scheduling",
        models=[
            Run,
            Order,
            OperationOption,
            OperationMaterial,
            BomLine,
            Operation,
            Product,
            SetupTime,
            Downtime,
            Shift,
            Machine,
            TariffRate,
            SupplierPrice,
            Supplier,
            Material,
        ],
    )
