"""What every layer may use: user errors, atomic file writes, devices and processes, tables.

- `errors`: `UserError` (one line, no traceback, exit 2) and the value checks that raise it.
- `io`: `write_atomically` / `atomic_output`, files never left half written.
- `devices`: CPU or GPU, loader workers by default, the launching process.
- `console`: a progress bar for long steps, and the third-party messages filtered out.
- `markdown`: `markdown_table`, the lines of a Markdown table.
"""
