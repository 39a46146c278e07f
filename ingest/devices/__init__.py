"""Sensors and set-top boxes: the device registry, MQTT ingest, payload codecs, signed one-key alarms
and the broker's per-device ACL. See ``topics`` for the MQTT topic scheme and ``signing`` for the
alarm signature."""
from ingest.devices.acl import mosquitto_conf, mqtt_password, write_mosquitto_auth
from ingest.devices.alarms import AlarmBatcher, MemoryPressLedger, PressLedger, PressOutcome, handle_press, parse_press, process_press
from ingest.devices.codecs import CodecError, available_codecs, get_codec, register_codec, telemetry_readings
from ingest.devices.messages import AlarmPress, Reading
from ingest.devices.mqtt_ingest import MqttIngest, parse_mqtt_url
from ingest.devices.press_filer import PressFiler
from ingest.devices.press_queue import PressKeys, PressQueue
from ingest.devices.registry import Device, DeviceRegistry, Secret
from ingest.devices.signing import (
    MemoryNonceStore, NonceStore, RedisNonceStore, SignatureError, sign, signed_envelope, signed_headers, verify_signed,
)
from ingest.devices.topics import device_topic, parse_topic, subscription_filters

__all__ = [
    "AlarmBatcher", "AlarmPress", "CodecError", "Device", "DeviceRegistry", "MemoryNonceStore", "MemoryPressLedger", "MqttIngest",
    "NonceStore", "PressFiler", "PressKeys", "PressLedger", "PressOutcome", "PressQueue", "Reading", "RedisNonceStore", "Secret", "SignatureError",
    "available_codecs", "device_topic", "get_codec", "handle_press", "mosquitto_conf", "mqtt_password",
    "parse_mqtt_url", "parse_press", "parse_topic", "process_press", "register_codec", "sign", "signed_envelope",
    "signed_headers", "subscription_filters", "telemetry_readings", "verify_signed", "write_mosquitto_auth",
]
