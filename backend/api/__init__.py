"""The HTTP layer: one blueprint or helper per concern, assembled by backend.create_app().

validation -> admission (slots, queue) -> engine_runner (engine, metrics) -> generate_routes / openai_routes
shape the responses; errors, security, metrics, health, docs/openapi and frontend wrap them.
"""
