"""The ``beyond`` command line: one entry point over scaling/, train/ and eval/."""
