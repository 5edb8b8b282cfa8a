"""The web dashboard, served by the gateway itself under /ui.

Server-rendered Jinja2 pages over the control-plane services (called in-process, never over
HTTP), plain HTML forms that work without JavaScript, SVG charts drawn on the server, and a
little vanilla JavaScript for copy buttons and the playground's streaming display.
"""
