"""One module per task; each registers itself with ``register_task`` when imported by name."""
