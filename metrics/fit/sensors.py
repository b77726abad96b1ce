"""Which sensors recorded a file: the balance source decides which runs may be compared."""

from __future__ import annotations

from typing import Any

# Garmin product ids of accessories that measure running dynamics incl. GCT balance (names as in
# Garmin's FIT SDK profile 21.218; fitparse's older profile lacks the newer ones).
RUNNING_DYNAMICS_PRODUCTS = {
    8: "hrm_run",
    12: "hrm_tri",
    13: "hrm4_run",
    22: "hrm_fit",
    1743: "hrm_tri",
    1752: "hrm_run",
    2327: "hrm4_run",
    2593: "running_dynamics_pod",
    3300: "hrm_pro",
    4130: "hrm_pro_plus",
    4446: "hrm_fit",
    4606: "hrm_200",
}
RUNNING_DYNAMICS_NAMES = set(RUNNING_DYNAMICS_PRODUCTS.values())
FOOT_POD_PRODUCTS = {"sdm4"}


def _product(device: dict[str, Any]) -> str | None:
    product = device.get("garmin_product", device.get("product"))
    if isinstance(product, int):
        return RUNNING_DYNAMICS_PRODUCTS.get(product, str(product))
    return product


def classify(device: dict[str, Any]) -> str | None:
    """Role of a device_info entry: watch, running_dynamics, stryd, foot_pod, heart_rate, power."""
    manufacturer = device.get("manufacturer")
    product = _product(device)
    dtype = device.get("antplus_device_type", device.get("device_type"))
    if device.get("device_index") == "creator":
        return "watch"
    if manufacturer == "stryd":
        return "stryd"
    if (
        manufacturer in ("garmin", "dynastream", "dynastream_oem")
        and product in RUNNING_DYNAMICS_NAMES
    ):
        return "running_dynamics"
    if product in FOOT_POD_PRODUCTS or dtype == "stride_speed_distance":
        return "foot_pod"
    if dtype == "heart_rate":
        return "heart_rate"
    if dtype == "bike_power":
        return "power"
    return None


def sensors(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distinct classified devices: role, manufacturer, product, serial (unknown roles dropped)."""
    seen: dict[tuple, dict[str, Any]] = {}
    for device in devices:
        role = classify(device)
        if role is None:
            continue
        entry = {
            "role": role,
            "manufacturer": device.get("manufacturer"),
            "product": _product(device),
            "serial": device.get("serial_number"),
        }
        key = (role, entry["manufacturer"], entry["product"], entry["serial"])
        seen.setdefault(key, entry)
    return list(seen.values())


def balance_sensor(found: list[dict[str, Any]]) -> str | None:
    """A stable label of the device that measured GCT balance, e.g. 'garmin hrm_pro #1234'."""
    for role in ("running_dynamics", "stryd"):
        for s in found:
            if s["role"] == role:
                serial = f" #{s['serial']}" if s.get("serial") else ""
                return f"{s['manufacturer']} {s['product']}{serial}"
    return None


def device_name(devices: list[dict[str, Any]], file_id: dict[str, Any]) -> str | None:
    """The recording device, e.g. 'garmin fr935'."""
    for d in devices:
        if d.get("device_index") == "creator":
            return f"{d.get('manufacturer')} {_product(d)}"
    if file_id.get("manufacturer"):
        return f"{file_id.get('manufacturer')} {_product(file_id)}"
    return None
