"""The MQTT topic scheme, in one place so ingest, the ACL generator, the simulator and the docs agree.

Uplink (device → GridWatch), QoS 1::

    {prefix}/devices/{id}/telemetry   sensor readings (JSON by default, or the device's codec)
    {prefix}/devices/{id}/events      signed alarm presses and cancels
    {prefix}/devices/{id}/status      {"online": true|false}; retained; the device's last will says false

Downlink (GridWatch → device), QoS 1::

    {prefix}/devices/{id}/ack         {"press_id", "kind", "status", "case", ...} within a second of a press
    {prefix}/devices/{id}/notify      later news about the case (dispatched, closed, …)

``prefix`` is ``MqttConfig.topic_prefix`` (``gridwatch/v1``). Device ids never contain ``/``, ``+`` or
``#`` (the config's id pattern), so a topic names exactly one device.
"""
from __future__ import annotations

from typing import Literal

Channel = Literal["telemetry", "events", "status"]
UPLINK: tuple[Channel, ...] = ("telemetry", "events", "status")
DOWNLINK = ("ack", "notify")


def device_topic(prefix: str, device_id: str, channel: str) -> str:
    return f"{prefix}/devices/{device_id}/{channel}"


def parse_topic(prefix: str, topic: str) -> tuple[str, str] | None:
    """``(device_id, channel)`` of an uplink topic under ``prefix``; None for anything else."""
    head = prefix + "/devices/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head):]
    device_id, sep, channel = rest.partition("/")
    if not sep or not device_id or channel not in UPLINK:
        return None
    return device_id, channel


def subscription_filters(prefix: str, shared_group: str | None) -> list[str]:
    """The filters ingest subscribes to; with a group, ``$share/{group}/…`` so workers split the load."""
    filters = [f"{prefix}/devices/+/{channel}" for channel in UPLINK]
    if shared_group:
        filters = [f"$share/{shared_group}/{f}" for f in filters]
    return filters


def partition_of(device_id: str, count: int) -> int:
    """The devices partition (0 … count-1) that ingests this device: CRC-32 of its id, the same in every process."""
    import zlib

    return zlib.crc32(device_id.encode("utf-8")) % count


def partition_filters(prefix: str, device_ids: list[str], index: int, count: int) -> list[str]:
    """Topic filters of partition ``index`` of ``count``: each of its devices' uplink topics, named one by one.

    Disjoint plain subscriptions instead of ``$share``: each partition's persistent session keeps its
    own subscriptions and queued QoS 1 messages across a Mosquitto restart, which shared ones lose.
    """
    if not 0 <= index < count:
        raise ValueError(f"partition {index}/{count}: need 0 <= index < count")
    if count == 1:
        return subscription_filters(prefix, None)
    return [device_topic(prefix, d, channel) for d in sorted(device_ids) if partition_of(d, count) == index for channel in UPLINK]
