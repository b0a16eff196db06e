"""Every `python -m alignui ...` command: main (parser, output protocol, serve), flags (the web app's flags, which
app.py shares), data (import, export), train, stats. Library code never imports this package.
"""
