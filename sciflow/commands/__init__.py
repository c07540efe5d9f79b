"""CLI verbs, one module each, discovered by ``sciflow.cli``. A module defines ``register(subparsers)`` and
imports heavy packages only inside its handlers (``script``, helpers for stand-alone scripts, has none)."""
