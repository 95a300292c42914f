"""Back-test: replay a demand trace through the daemon's real pass on simulated DynamoDB and CloudWatch."""
from .run import Report, simulate
from .trace import Trace, TraceError, load_trace

__all__ = ["Report", "Trace", "TraceError", "load_trace", "simulate"]
