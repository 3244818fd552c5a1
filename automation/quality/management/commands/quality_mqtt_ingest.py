"""`manage.py quality_mqtt_ingest`: the long-running MQTT step-record subscriber (see automation.quality.mqtt)."""

import signal

from django.core.management.base import BaseCommand

from automation.quality.mqtt import subscriber


class Command(BaseCommand):
    help = "Subscribe to every organisation's MQTT quality step topics and store verified step records."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Broker, mqtt://host:port (default MQTT_URL).")
        parser.add_argument("--client-id", help="MQTT client id (default QUALITY_MQTT_CLIENT_ID).")

    def handle(self, *args, **options):
        running = subscriber(url=options.get("url"), client_id=options.get("client_id"))
        signal.signal(signal.SIGTERM, lambda *_: running.client.disconnect())
        self.stdout.write(f"Subscribing to {running.topic} on {running.url.netloc}", ending="\n")
        self.stdout.flush()
        try:
            running.run_forever()
        except KeyboardInterrupt:
            running.client.disconnect()
