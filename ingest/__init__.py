"""Everything that brings data in: video sources, MQTT sensors, set-top-box alarms, the device registry."""
