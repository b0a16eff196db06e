"""Every `python -m alignui ...` command: main (parser, output protocol, serve), data (import, export),
train, stats. Library code never imports this package.
"""
