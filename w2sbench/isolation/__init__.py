"""Isolation: the method process and its sandbox. The bubblewrap policy (sandbox), the sealed process
and what it may send back (sealed, replies), a method known by its checked description (described),
the limits over it (quotas), the watchdog that ends every process the harness starts (processes), and
how one run wires them together (wiring)."""
