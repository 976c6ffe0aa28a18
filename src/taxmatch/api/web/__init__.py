"""The web dashboard served by `taxmatch serve` under /ui (server-rendered, no JavaScript, no CDN).

`pages.router` holds the routes; `sessions` the sign-in sessions and their CSRF tokens; the
templates and the style sheet ship in this package (``templates/``, ``static/``).
"""
