"""Command-line subcommands, one module per concern.

Each module listed in :data:`COMMAND_MODULES` defines ``register(subparsers)``
(a top-level subcommand) and/or ``register_bench(bench_subparsers)`` (a
``companion bench NAME`` target). A registered parser sets ``func`` to a
callable ``(args, config) -> int``.
"""

COMMAND_MODULES: list[str] = [
    "companion.commands.bench_audio",
    "companion.commands.bench_listen",
    "companion.commands.cca",
    "companion.commands.data",
    "companion.commands.demo",
    "companion.commands.ensemble",
    "companion.commands.evaluate",
    "companion.commands.gui",
    "companion.commands.identify",
    "companion.commands.info",
    "companion.commands.library",
    "companion.commands.listen",
    "companion.commands.systems",
    "companion.commands.train",
]
