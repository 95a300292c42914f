"""dynamic-dynamodb: autoscaling of provisioned DynamoDB tables and GSIs."""

__version__ = "3.0.0.dev0"
