"""The draw-a-digit page (demo.py): a small Starlette app and one self-contained HTML page."""
