"""Election night (issue 16): county results as a stream of messages over NATS JetStream.

``replay`` builds a past election's county results as the ordered messages of an election night (pure code, no
NATS) and is the ``make replay`` CLI; ``stream`` publishes them to a JetStream stream. The message's one contract is
``county_result.schema.json``.
"""
