"""`manage.py mqtt_ingest`: the long-running MQTT telemetry subscriber (see automation.maintenance.mqtt)."""

import signal

from django.core.management.base import BaseCommand

from automation.maintenance.mqtt import TelemetrySubscriber


class Command(BaseCommand):
    help = "Subscribe to every organisation's MQTT telemetry topics and store verified readings."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="Broker, mqtt://host:port (default MQTT_URL).")
        parser.add_argument(
            "--client-id",
            help="MQTT client id (default MAINTENANCE_MQTT_CLIENT_ID); the broker "
            "keeps this client's session across restarts.",
        )

    def handle(self, *args, **options):
        subscriber = TelemetrySubscriber(url=options.get("url"), client_id=options.get("client_id"))
        signal.signal(signal.SIGTERM, lambda *_: subscriber.client.disconnect())
        self.stdout.write(f"Subscribing to {subscriber.topic} on {subscriber.url.netloc}", ending="\n")
        self.stdout.flush()
        try:
            subscriber.run_forever()
        except KeyboardInterrupt:
            subscriber.client.disconnect()
