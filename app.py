"""alignui entry point: `python app.py [--storage DIR] [--model M] [--host H] [--port P]`.

Also the Hugging Face Spaces app_file. Everything lives in the alignui package.
"""

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from alignui.cli.flags import add_app_arguments  # noqa: E402
from alignui.config import ConfigError, config_from  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="alignui: the preference-alignment loop in one web app")
    add_app_arguments(parser)
    try:
        config = config_from(parser.parse_args())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from alignui.ui.app import launch

    launch(config, block=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
