"""Test infrastructure: fake AWS, DynamoDB rules proxy, breaker, CLI runner."""
