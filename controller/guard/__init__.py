"""The guard station: MQTT consumer, store, live model, dashboard and API."""
