"""`python -m dynamic_dynamodb`."""
import sys

from .cli import main

sys.exit(main())
